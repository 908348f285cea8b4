"""Deterministic test footage shared by the test files (and the fuzz tests' child processes)."""

import numpy as np


def moving_video(n=14, h=32, w=48, seed=0):
    """Smooth moving stripes plus noise, uint8 (n, h, w, 3): structure a model can predict a
    little. Default size: the tiny preset."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    frames = []
    for f in range(n):
        base = 128 + 70 * np.sin((x * (48 / w) + 2 * f + seed) / 5.0)[..., None] * np.cos((y * (32 / h) - f) / 7.0)[..., None]
        base = base + np.array([0, 25, -25]) + rng.normal(0, 6, (h, w, 3))
        frames.append(np.clip(np.round(base), 0, 255).astype(np.uint8))
    return np.stack(frames)
