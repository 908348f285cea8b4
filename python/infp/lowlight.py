"""Low-light robustness: darken test footage step by step and measure detection at each level
(in the spirit of the INFP paper's Fig. 7: a model trained on normally lit footage, tested on
darker footage of the same line).

    >>> from infp import lowlight
    >>> table = lowlight.sweep(model, ds.test, ds.labels)        # the default five levels
    >>> print(table)                                             # markdown: AUC per level and score
    >>> table.column("auc_memory")                               # one column as a list

A :class:`Level` darkens a uint8 frame x (taken as intensities x/255 in [0, 1]) to

    y = gain · (x/255) ** gamma + n,   n ~ Normal(0, σ²),   σ = noise · sqrt(1 + 4·y)

then rounds 255·y to 8 bits (clipped to 0..255): ``gain`` is the light that reaches the sensor,
``gamma`` > 1 crushes the shadows as a camera's response does near its noise floor, and the noise
is read noise (``noise``) plus photon noise growing with the signal. Noise is drawn from a
generator seeded by (seed, video index, level), so a sweep is deterministic and a level's
footage does not depend on which other levels run. :meth:`Level.at` derives gamma and noise from
the light alone (each halving of the light — one photographic stop — adds 0.2 to gamma and
0.006 to the noise); :data:`DEFAULT_LEVELS` are the original footage and 1 to 4 stops darker.
"""

from __future__ import annotations

import json
import math
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence

import numpy as np

__all__ = ["Level", "DEFAULT_LEVELS", "darken", "sweep", "SweepTable", "parse_levels"]


class Level(NamedTuple):
    """A lighting level (see the module's doc for the formula)."""
    name: str
    gain: float
    gamma: float = 1.0
    noise: float = 0.0

    @classmethod
    def at(cls, light: float, name: Optional[str] = None) -> "Level":
        """The level for a fraction ``light`` in (0, 1] of the normal light: gain = light,
        gamma = 1 + 0.2·stops, noise = 0.006·stops, with stops = log2(1 / light)."""
        light = float(light)
        if not 0 < light <= 1:
            raise ValueError(f"light must be in (0, 1], got {light}")
        stops = math.log2(1.0 / light)
        if name is None:
            name = "original" if light == 1 else f"{light:g} light ({stops:.2g} stop{'' if stops == 1 else 's'})"
        return cls(name, light, 1.0 + 0.2 * stops, 0.006 * stops)

    @property
    def identity(self) -> bool:
        return self.gain == 1 and self.gamma == 1 and self.noise == 0

    def _key(self) -> List[int]:
        return [int(round(v * 1e6)) for v in (self.gain, self.gamma, self.noise)]


#: The original footage and 1, 2, 3 and 4 stops darker (light 1, 1/2, 1/4, 1/8, 1/16).
DEFAULT_LEVELS = tuple(Level.at(1.0 / 2 ** k) for k in range(5))


def _level(level) -> Level:
    if isinstance(level, Level):
        lv = level
    elif isinstance(level, (int, float, np.floating, np.integer)):
        lv = Level.at(float(level))
    elif isinstance(level, (tuple, list)) and len(level) in (3, 4):
        lv = Level(*level) if isinstance(level[0], str) else Level("custom", *level)
    else:
        raise TypeError(f"a level is an infp.lowlight.Level, a light fraction in (0, 1] or (name, gain, gamma, noise); "
                        f"got {level!r}")
    if not (lv.gain > 0 and lv.gamma > 0 and lv.noise >= 0):
        raise ValueError(f"level {lv.name!r}: gain and gamma must be > 0 and noise >= 0, got {lv}")
    return lv


def parse_levels(text: str) -> List[Level]:
    """Levels from a command-line string: comma-separated light fractions ("1,0.5,0.25") or
    ``gain:gamma:noise`` triples ("1:1:0,0.3:1.5:0.02")."""
    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        try:
            parts = [float(x) for x in item.split(":")]
        except ValueError:
            raise ValueError(f"low-light level {item!r}: expected a light fraction or gain:gamma:noise") from None
        if len(parts) == 1:
            out.append(Level.at(parts[0]))
        elif len(parts) == 3:
            out.append(_level((f"gain {parts[0]:g}, gamma {parts[1]:g}, noise {parts[2]:g}", *parts)))
        else:
            raise ValueError(f"low-light level {item!r}: expected a light fraction or gain:gamma:noise")
    if not out:
        raise ValueError(f"no low-light levels in {text!r}")
    return out


def darken(video: np.ndarray, level, *, seed: int = 0, index: int = 0) -> np.ndarray:
    """Darkens uint8 RGB frames (n, H, W, 3) (or one frame (H, W, 3)) to a lighting level.

    Args:
        video: uint8 frames; level: a :class:`Level`, a light fraction in (0, 1] or
            (name, gain, gamma, noise).
        seed, index: the noise generator's seed and the video's index (different videos get
            different noise, the same arguments the same).
    Returns:
        uint8 frames of the same shape (a copy; the original level returns the frames unchanged).
    """
    lv = _level(level)
    v = np.asarray(video)
    if v.dtype != np.uint8 or v.ndim not in (3, 4) or v.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB frames (n, H, W, 3) or (H, W, 3), got {v.dtype} {v.shape}")
    if lv.identity:
        return v.copy()
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(index), *lv._key()])
    lut = (np.float32(lv.gain) * (np.arange(256, dtype=np.float32) / np.float32(255)) ** np.float32(lv.gamma))
    frames = v.reshape((-1,) + v.shape[-3:])
    out = np.empty_like(frames)
    for i in range(0, frames.shape[0], 32):  # bounded temporary memory on long videos
        y = lut[frames[i:i + 32]]
        if lv.noise > 0:
            sigma = np.float32(lv.noise) * np.sqrt(np.float32(1) + np.float32(4) * y)
            y = y + sigma * rng.standard_normal(y.shape, dtype=np.float32)
        out[i:i + 32] = np.clip(np.rint(y * np.float32(255)), 0, 255).astype(np.uint8)
    return out.reshape(v.shape)


class SweepTable:
    """The result of :func:`sweep`: one row (a dict) per level, with ``level``, ``gain``,
    ``gamma``, ``noise``, ``brightness`` (mean pixel value of the darkened footage / 255) and
    ``auc_<method>`` (frame-level AUC, spec §5) per scoring method. ``str(table)`` is a
    markdown table; :meth:`column` gives one column; :meth:`to_json` one JSON line."""

    def __init__(self, rows: List[Dict], methods: Sequence[str]):
        self.rows = rows
        self.methods = list(methods)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, i):
        return self.rows[i]

    def column(self, key: str) -> list:
        return [r[key] for r in self.rows]

    def to_json(self) -> str:
        return json.dumps({"low_light": self.rows})

    def __str__(self) -> str:
        head = ["level", "gain", "gamma", "noise", "brightness"] + [f"AUC {m}" for m in self.methods]
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(head))) + "|"]
        for r in self.rows:
            cells = [r["level"], f"{r['gain']:.3g}", f"{r['gamma']:.2f}", f"{r['noise']:.3f}", f"{r['brightness']:.3f}"]
            cells += [f"{r['auc_' + m]:.3f}" for m in self.methods]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"SweepTable({len(self.rows)} levels, methods {self.methods})\n{self}"


def sweep(model, videos, labels, levels: Iterable = DEFAULT_LEVELS, *, methods: Sequence[str] = ("psnr", "memory"),
          seed: int = 0, progress: bool = False) -> SweepTable:
    """Frame-level AUC of a model on test footage darkened to each level.

    Args:
        model: an :class:`infp.Model` (for "memory", one that remembers normal footage, as
            :meth:`~infp.Model.fit` leaves it).
        videos: test videos, uint8 (n, H, W, 3) arrays or video files/folders (read at the
            model's size); darkened at the size given, before the model's resize.
        labels: per video, int (n,) per-frame labels (1 = anomalous).
        levels: :class:`Level` objects, light fractions in (0, 1], or (name, gain, gamma, noise).
        methods: scores of :meth:`infp.Model.anomaly_scores` ("psnr" is the paper's).
        seed: seed of the sensor noise.
        progress: print one line per level as it is done.
    Returns:
        a :class:`SweepTable`.
    """
    from .metrics import frame_auc
    lvls = [_level(x) for x in levels]
    if not lvls:
        raise ValueError("no levels to sweep")
    methods = list(methods)
    for m in methods:
        if m not in ("psnr", "patch", "memory"):
            raise ValueError(f"methods are 'psnr', 'patch' or 'memory', got {m!r}")
    if "memory" in methods and not model.memory_frames:
        raise ValueError("the 'memory' score needs the model's memory of normal footage (Model.remember, "
                         "which fit does); sweep with methods=('psnr', 'patch') or remember normal videos first")
    vids = [model._video(v, f"videos[{i}]") if isinstance(v, (str, bytes)) or hasattr(v, "__fspath__") else np.asarray(v)
            for i, v in enumerate(videos)]
    labs = [np.asarray(lab) for lab in labels]
    if len(vids) != len(labs) or not vids:
        raise ValueError(f"need one label array per video, got {len(vids)} videos and {len(labs)} label arrays")
    rows = []
    for lv in lvls:
        dark = [darken(v, lv, seed=seed, index=i) for i, v in enumerate(vids)]
        row = {"level": lv.name, "gain": lv.gain, "gamma": lv.gamma, "noise": lv.noise,
               "brightness": float(np.mean([d.mean() for d in dark]) / 255.0)}
        for m in methods:
            scores = [model.anomaly_scores(d, m) for d in dark]
            row["auc_" + m] = float(frame_auc([-s for s in scores], labs))
        rows.append(row)
        if progress:
            print(f"low light: {lv.name}: " + ", ".join(f"AUC {m} {row['auc_' + m]:.3f}" for m in methods), flush=True)
    return SweepTable(rows, methods)
