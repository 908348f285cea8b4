#!/usr/bin/env python3
"""Stream soak (issue 11): push many frames (100,000 by default) through one live stream and
check that the process's memory stays flat.

    python3 bench/soak/stream_soak.py                          # tiny model, 100k frames
    python3 bench/soak/stream_soak.py --frames 5000 --strict   # quick check, exit 1 if it grows

The model is the `tiny` preset (32x48) with a memory of normal footage and a calibration, so
every push runs the backbone, the memory score, the calibrated z-score and the alert logic.
Frames come from a small pool of synthetic camera frames (another size than the model's, so the
resize runs too), varied per push; anomalous stretches trigger events, every 10th frame asks for
the error map, and the stream is reset every --reset-every frames.

Prints one JSON line per sample (every --sample-every frames): frame, RSS (VmRSS of
/proc/self/status) in MB, frames/s since the last sample; then a verdict line: RSS growth from
the sample at --warmup of the run (default 10 %) to the last sample, in MB, and "flat" when it
is below --threshold-mb (default 8 MB), with a least-squares slope in kB per 1,000 frames.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "python"))

import numpy as np  # noqa: E402

import infp  # noqa: E402


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def emit(**fields):
    print(json.dumps(fields), flush=True)


def synthetic_frames(n, h, w, seed):
    """n frames (h, w, 3) of moving stripes with noise: a camera's view of a periodic line."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    out = np.empty((n, h, w, 3), np.uint8)
    for f in range(n):
        base = 128 + 70 * np.sin((x * 48 / w + 2 * f) / 5.0)[..., None] * np.cos((y * 32 / h - f) / 7.0)[..., None]
        out[f] = np.clip(np.round(base + np.array([0, 25, -25]) + rng.normal(0, 6, (h, w, 3))), 0, 255)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=100_000)
    ap.add_argument("--preset", default="tiny", help="model preset (tiny, small, official)")
    ap.add_argument("--height", type=int, default=0, help="model frame height (0: the preset's)")
    ap.add_argument("--width", type=int, default=0, help="model frame width (0: the preset's)")
    ap.add_argument("--camera", default="48x72", help="pushed frame size HxW (resized inside)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--sample-every", type=int, default=0, help="frames between RSS samples (0: frames / 50)")
    ap.add_argument("--reset-every", type=int, default=10_000)
    ap.add_argument("--warmup", type=float, default=0.1, help="fraction of the run before the baseline sample")
    ap.add_argument("--threshold-mb", type=float, default=8.0)
    ap.add_argument("--strict", action="store_true", help="exit 1 when the memory is not flat")
    args = ap.parse_args(argv)

    overrides = {}
    if args.height:
        overrides["height"] = args.height
    if args.width:
        overrides["width"] = args.width
    model = infp.Model(args.preset, seed=0, threads=args.threads, **overrides)
    _, h, w = model.frame_shape
    ch, cw = (int(v) for v in args.camera.lower().split("x"))
    pool = synthetic_frames(48, ch, cw, 4)
    # Normal footage from the same camera (resized to the model's size by the package).
    model.remember([synthetic_frames(48, ch, cw, s) for s in (1, 2)])
    model.calibrate([synthetic_frames(48, ch, cw, 3)], false_alarm_rate=0.01)
    anomalous = pool.copy()
    anomalous[:, ch // 4: ch // 2, cw // 4: cw // 2] = 255  # a foreign object
    wide = np.zeros((ch, cw + 16, 3), np.uint8)
    sample_every = args.sample_every or max(1, args.frames // 50)
    emit(bench="stream_soak", preset=args.preset, model=f"{h}x{w}", camera=f"{ch}x{cw}", frames=args.frames,
         threads=args.threads, sample_every=sample_every, library=infp.library_version)

    samples = []  # (frame, rss MB)
    events = alerts = 0
    t_last, f_last = time.perf_counter(), 0
    t_start = t_last
    with model.stream(threads=args.threads) as stream:
        for i in range(args.frames):
            in_event = (i // 500) % 20 == 7  # 500 anomalous frames every 10,000
            frame = (anomalous if in_event else pool)[i % len(pool)]
            if i % 7 == 3:  # the same pixels as a crop of a wider buffer: strided rows, no copy
                wide[:, :cw] = frame
                frame = wide[:, :cw]
            r = stream.push(frame, error_map=(i % 10 == 0))
            events += r.event_started
            alerts += r.alert
            if args.reset_every and (i + 1) % args.reset_every == 0:
                stream.reset()
            if (i + 1) % sample_every == 0 or i + 1 == args.frames:
                now = time.perf_counter()
                rss = rss_mb()
                samples.append((i + 1, rss))
                emit(frame=i + 1, rss_mb=round(rss, 2), fps=round((i + 1 - f_last) / (now - t_last), 1),
                     events=events, alert_frames=alerts)
                t_last, f_last = now, i + 1
    elapsed = time.perf_counter() - t_start

    base_frame = args.warmup * args.frames
    base = next((s for s in samples if s[0] >= base_frame), samples[0])
    last = samples[-1]
    growth = last[1] - base[1]
    after = [s for s in samples if s[0] >= base[0]]
    slope = 0.0
    if len(after) >= 2:
        xs = np.array([s[0] for s in after], float)
        ys = np.array([s[1] for s in after], float)
        slope = float(np.polyfit(xs, ys, 1)[0]) * 1000 * 1024  # kB per 1,000 frames
    flat = growth < args.threshold_mb
    emit(verdict="flat" if flat else "growing", rss_growth_mb=round(growth, 2), baseline_frame=base[0],
         baseline_rss_mb=round(base[1], 2), final_rss_mb=round(last[1], 2), peak_rss_mb=round(max(s[1] for s in samples), 2),
         slope_kb_per_1000_frames=round(slope, 2), threshold_mb=args.threshold_mb, frames=args.frames,
         seconds=round(elapsed, 1), fps=round(args.frames / elapsed, 1), events=events)
    return 1 if args.strict and not flat else 0


if __name__ == "__main__":
    sys.exit(main())
