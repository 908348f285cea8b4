#!/usr/bin/env python3
"""Live-stream benchmark: frames per second and latency percentiles of ``Stream.push`` per
stream, beside PyTorch running the same model naively (the full 4-frame window recomputed for
every new frame, tools/torch_peer_bench.py ``stream_naive_ms_per_frame``) in the same run.

    python3 bench/stream/stream_bench.py                 # small (the line software preset)
    python3 bench/stream/stream_bench.py --official      # also official (slow: seconds per frame)

Prints one JSON line per figure:
  push            one stream using all --threads: p50/p99/mean ms per frame and frames/s, on a
                  synthetic conveyor video at the model's size (scored frames only; the first 4
                  only fill the window)
  push_camera     the same with 480x640 camera frames (includes the bicubic resize)
  encode_only     the first 4 frames (backbone only): what the cached backbone costs per frame
  concurrent      --streams streams on one model, one thread each, on their own threads:
                  per-stream frames/s and the aggregate
  peer            PyTorch's naive per-frame time, and our p50 / PyTorch (target <= 0.6 for
                  `small`; the frames/s target is >= 25 per stream on 2 cores)
The model is freshly initialised (timing does not depend on the weights) and given a fixed
calibration, so anomaly scores and alert logic run as in production.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402

import infp  # noqa: E402
from infp import data  # noqa: E402

TORCH_PYTHON = "/opt/torchenv/bin/python"
SIZES = {"tiny": (32, 48), "small": (112, 144), "official": (224, 288)}


def emit(**fields):
    print(json.dumps(fields), flush=True)


def percentile(xs, q):
    return float(np.percentile(np.asarray(xs), q))


def time_pushes(stream, frames):
    """Wall-clock ms of every push (ctypes call included)."""
    out = []
    for f in frames:
        t0 = time.perf_counter()
        stream.push(f)
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def stats(ms):
    return dict(p50_ms=round(percentile(ms, 50), 3), p99_ms=round(percentile(ms, 99), 3),
                mean_ms=round(statistics.fmean(ms), 3), fps=round(1e3 / statistics.fmean(ms), 2), frames=len(ms))


def peer(preset, threads, frames, repeat):
    script = os.path.join(ROOT, "tools", "torch_peer_bench.py")
    if not os.path.exists(TORCH_PYTHON):
        return None, f"{TORCH_PYTHON} not found"
    cmd = [TORCH_PYTHON, script, preset, "--threads", str(threads), "--only", "stream",
           "--stream-frames", str(frames), "--repeat", str(repeat)]
    try:
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, str(e)
    for line in run.stdout.splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("figure") == "stream_naive_ms_per_frame":
            return rec, None
    return None, (run.stderr.strip().splitlines() or ["no output"])[-1]


def bench_preset(preset, a):
    h, w = SIZES[preset]
    n = a.frames if preset != "official" else a.official_frames
    video = data.synthetic_line("conveyor", n_train_videos=1, n_test_videos=0, frames_per_video=n + 4,
                                height=h, width=w, seed=1).train[0]
    common = dict(bench="stream", preset=preset, threads=a.threads)
    model = infp.Model(preset, seed=0, threads=a.threads)
    model.calibration = {"psnr_mean": 25.0, "psnr_std": 1.0, "threshold": 3.0, "false_alarm_rate": 0.01}

    with model.stream(threads=a.threads) as s:
        ms = time_pushes(s, video)
    emit(**common, figure="encode_only", streams=1, input=f"{h}x{w}", p50_ms=round(statistics.median(ms[1:4]), 3))
    ours = stats(ms[4:])
    emit(**common, figure="push", streams=1, input=f"{h}x{w}", **ours)

    if preset != "official":
        camera = infp.data.resize_video(video[:min(len(video), 24)], 480, 640)
        with model.stream(threads=a.threads) as s:
            cms = time_pushes(s, camera)
        emit(**common, figure="push_camera", streams=1, input="480x640", **stats(cms[4:]))

        if a.streams > 1:
            per = [None] * a.streams

            def run(i):
                with model.stream(threads=1) as s:
                    per[i] = time_pushes(s, video)[4:]

            t0 = time.perf_counter()
            ts = [threading.Thread(target=run, args=(i,)) for i in range(a.streams)]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            wall = time.perf_counter() - t0
            each = [stats(p) for p in per]
            emit(bench="stream", preset=preset, figure="concurrent", streams=a.streams, threads_per_stream=1,
                 input=f"{h}x{w}", per_stream_fps=[e["fps"] for e in each],
                 per_stream_p50_ms=[e["p50_ms"] for e in each], per_stream_p99_ms=[e["p99_ms"] for e in each],
                 aggregate_fps=round(a.streams * (n + 4) / wall, 2))
    model.close()

    if a.no_peer:
        return
    pf = a.peer_frames if preset != "official" else 2
    rec, err = peer(preset, a.threads, pf, a.peer_repeat if preset != "official" else 1)
    if rec is None:
        emit(**common, figure="peer", peer="pytorch", status="missing", reason=err)
        return
    naive = rec["value"]
    fields = dict(**common, figure="peer", peer="pytorch", torch=rec.get("torch"),
                  peer_stream_naive_ms_per_frame=naive, ours_p50_ms=ours["p50_ms"], ours_mean_ms=ours["mean_ms"],
                  ratio_p50=round(ours["p50_ms"] / naive, 3), ratio_mean=round(ours["mean_ms"] / naive, 3),
                  ours_fps=ours["fps"])
    if preset == "small":
        fields.update(target_fps=25, meets_fps=ours["fps"] >= 25, target_ratio=0.6,
                      meets_ratio=ours["p50_ms"] / naive <= 0.6)
    emit(**fields)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["small"], choices=sorted(SIZES))
    ap.add_argument("--official", action="store_true", help="also the official preset (slow)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=60, help="scored frames per preset (after 4 to fill the window)")
    ap.add_argument("--official-frames", type=int, default=4)
    ap.add_argument("--streams", type=int, default=2, help="concurrent streams for the `concurrent` figure")
    ap.add_argument("--peer-frames", type=int, default=16)
    ap.add_argument("--peer-repeat", type=int, default=4)
    ap.add_argument("--no-peer", action="store_true")
    a = ap.parse_args()
    presets = list(a.presets) + (["official"] if a.official and "official" not in a.presets else [])
    for p in presets:
        bench_preset(p, a)


if __name__ == "__main__":
    main()
