"""The model beside PyTorch on this machine, in one run: evaluation forward (batch 1) and a
training step (batch 8, official loss, Adam), per preset, as JSON lines with ratios
(ours / PyTorch for times: below 1 means infp is faster).

    python3 bench/model_vs_torch.py small [official]

PyTorch runs tools/infp_torch.py (an independent implementation of the same spec) through
tools/torch_peer_bench.py in the /opt/torchenv virtualenv (override with INFP_TORCH_PYTHON).
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
import infp  # noqa: E402

TORCH_PYTHON = os.environ.get("INFP_TORCH_PYTHON", "/opt/torchenv/bin/python")


def median_seconds(fn, runs):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def ours(preset):
    m = infp.Model(preset=preset, seed=0, threads=2, dropout=False)
    c, h, w = m.frame_shape
    rng = np.random.default_rng(0)
    one = rng.uniform(-1, 1, (1, 4, c, h, w)).astype(np.float32)
    out = {"eval_forward_b1_ms": 1e3 * median_seconds(lambda: m.predict(one), 2 if preset == "official" else 5)}
    if preset != "official":
        x = rng.uniform(-1, 1, (8, 4, c, h, w)).astype(np.float32)
        y = rng.uniform(-1, 1, (8, c, h, w)).astype(np.float32)
        out["train_step_b8_s"] = median_seconds(lambda: m.train_step(x, y, lr=1e-4), 3)
    return out


def peer(preset):
    if not Path(TORCH_PYTHON).exists():
        return {}
    only = ["--only", "eval"] + ([] if preset == "official" else ["--only", "train"])
    r = subprocess.run([TORCH_PYTHON, str(ROOT / "tools" / "torch_peer_bench.py"), preset, *only],
                       capture_output=True, text=True)
    figures = {}
    for line in r.stdout.splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            figures[d["figure"]] = d["value"]
    return figures


for preset in sys.argv[1:] or ["small"]:
    mine, theirs = ours(preset), peer(preset)
    for figure, value in mine.items():
        row = {"bench": "model", "preset": preset, "figure": figure, "infp": value,
               "pytorch": theirs.get(figure), "ratio": value / theirs[figure] if theirs.get(figure) else None}
        if figure == "train_step_b8_s":
            row["infp_clips_per_s"] = 8 / value
            row["pytorch_clips_per_s"] = 8 / theirs[figure] if theirs.get(figure) else None
        print(json.dumps(row), flush=True)
