#!/usr/bin/env python3
"""PyTorch CPU peer figures for bench/ (reference implementation tools/infp_torch.py).

    /opt/torchenv/bin/python tools/torch_peer_bench.py PRESET [--threads 2] [--repeat 5] [--force-train]

Prints one JSON line per figure, float32, random inputs in [-1, 1]:
  eval_forward_b1_ms     model.eval() forward of one clip (batch 1), median over repeats
  train_step_b8_s        model.train() forward + official loss + backward + Adam(2e-4) step, batch 8
                         (skipped for `official` unless --force-train: far too slow on CPU)
  stream_naive_ms_per_frame  per new frame, recompute the full 4-frame window (batch 1)
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from infp_torch import INFP, Config, official_loss  # noqa: E402


def timed(fn, repeat, warmup=3):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def emit(preset, figure, value, unit, threads, **extra):
    print(json.dumps(dict(peer="pytorch", torch=torch.__version__, preset=preset, figure=figure,
                          value=round(value, 6), unit=unit, threads=threads, **extra)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("preset", choices=sorted(Config.PRESETS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--stream-frames", type=int, default=16)
    ap.add_argument("--force-train", action="store_true")
    ap.add_argument("--only", choices=["eval", "train", "stream"], action="append")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    cfg = Config.preset(a.preset)
    model = INFP(cfg)
    T, H, W = cfg.frames, cfg.height, cfg.width
    rand = lambda *s: torch.rand(*s) * 2 - 1
    want = set(a.only or ["eval", "train", "stream"])

    if "eval" in want:
        model.eval()
        x = rand(1, T, 3, H, W)
        with torch.no_grad():
            t = timed(lambda: model(x), a.repeat)
        emit(a.preset, "eval_forward_b1_ms", t * 1e3, "ms", a.threads)

    if "train" in want and (a.preset != "official" or a.force_train):
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8)
        clips, target = rand(8, T, 3, H, W), rand(8, 3, H, W)

        def step():
            opt.zero_grad(set_to_none=True)
            official_loss(model(clips), target).backward()
            opt.step()
        t = timed(step, max(1, a.repeat // 2))
        emit(a.preset, "train_step_b8_s", t, "s", a.threads, loss="official", optimizer="adam")

    if "stream" in want:
        model.eval()
        frames = rand(a.stream_frames + T - 1, 3, H, W)

        def stream():
            with torch.no_grad():
                for i in range(T - 1, frames.shape[0]):
                    model(frames[i - T + 1:i + 1].unsqueeze(0))
        t = timed(stream, max(1, a.repeat // 2))
        emit(a.preset, "stream_naive_ms_per_frame", t * 1e3 / a.stream_frames, "ms", a.threads)


if __name__ == "__main__":
    main()
