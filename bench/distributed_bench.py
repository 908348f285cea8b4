#!/usr/bin/env python3
"""Categories (lines) per hour through infp.distributed on local Ray workers.

    python3 bench/distributed_bench.py                       # 4 tiny lines, 1 and 2 workers (~2 min on 2 cores)
    python3 bench/distributed_bench.py --preset small --epochs 1 --frames 40

Trains and evaluates the same lines (synthetic scenes generated inside each task; a fixed epoch
budget, so every configuration does the same work) on a fresh local Ray instance per
configuration:

* 1 worker, 1 thread per line   (one line after another on one core)
* 1 worker, 2 threads per line  (one line after another, the model using both cores)
* 2 workers, 1 thread per line  (two lines at once, one core each)

and prints one JSON line per configuration: wall time of ``infp.distributed.run`` (Ray's start
excluded, printed apart), categories per hour, and the ratio to the first configuration (the
peer). Needs Ray (pip install ray). Run it on an otherwise quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

# Keep the local Ray instances on the loopback interface (by default Ray binds the machine's address).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from infp import distributed  # noqa: E402

SCENES = ("conveyor", "turntable", "press", "bottling", "pick_and_place", "cutter")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=4, help="categories to train (default 4)")
    ap.add_argument("--preset", default="tiny", choices=["tiny", "small"])
    ap.add_argument("--epochs", type=int, default=12, help="epochs per line (default 12)")
    ap.add_argument("--videos", type=int, default=4, help="training videos per line (default 4)")
    ap.add_argument("--frames", type=int, default=80, help="frames per video (default 80)")
    ap.add_argument("--configs", default="1x1,1x2,2x1", help="WORKERSxTHREADS list (default 1x1,1x2,2x1)")
    args = ap.parse_args(argv)
    import ray

    lines = [distributed.Line.synthetic(f"{SCENES[i % len(SCENES)]}-{i}", SCENES[i % len(SCENES)],
                                        n_train_videos=args.videos, n_test_videos=2, frames_per_video=args.frames,
                                        seed=i) for i in range(args.lines)]
    fit = {"epochs": args.epochs, "batch_size": 8, "lr": 1e-3, "milestones": ()}
    peer = None
    for cfg in args.configs.split(","):
        workers, threads = (int(x) for x in cfg.lower().split("x"))
        out = tempfile.mkdtemp(prefix="infp-bench-dist-")
        t0 = time.perf_counter()
        distributed.init("local", num_cpus=workers * threads, include_dashboard=False, log_to_driver=False)
        ray_start = time.perf_counter() - t0
        try:
            result = distributed.run(lines, out, preset=args.preset, fit=fit, cpus_per_task=threads, progress=False)
        finally:
            ray.shutdown()
            shutil.rmtree(out, ignore_errors=True)
        if result.failed:
            print(result, file=sys.stderr)
            return 1
        per_hour = 3600.0 * len(lines) / result.seconds
        peer = peer or per_hour
        train_s = [r["training"]["seconds"] for r in result]
        print(json.dumps({"bench": "distributed", "preset": args.preset, "lines": len(lines), "epochs": args.epochs,
                          "workers": workers, "threads_per_line": threads, "seconds": round(result.seconds, 2),
                          "ray_start_seconds": round(ray_start, 2),
                          "mean_train_seconds_per_line": round(sum(train_s) / len(train_s), 2),
                          "categories_per_hour": round(per_hour), "peer": "1 worker, 1 thread",
                          "peer_categories_per_hour": round(peer), "ratio": round(per_hour / peer, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
