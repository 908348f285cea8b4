#!/usr/bin/env python3
"""Writes the data of the line monitor examples (examples/c/line_monitor.c and
examples/cpp/line_monitor.cpp) into a folder:

    OUT/line_model.safetensors  a `tiny` model trained briefly on normal footage of a synthetic
                                conveyor and calibrated on other normal footage (false-alarm
                                rate 1% per frame)
    OUT/line_video.infpraw      a held-out normal video of the same line at the camera's size
                                (64x96, twice the model's: the stream resizes it) in which a
                                foreign object rides the belt through frames 30..41

    python3 examples/make_example_data.py OUT

Takes about ten seconds on two cores. Uses the infp package of this repository (python/).
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import numpy as np  # noqa: E402

import infp  # noqa: E402
from infp import data  # noqa: E402


def main(out: str) -> None:
    started = time.perf_counter()
    os.makedirs(out, exist_ok=True)
    # One line at the camera's size; the model works at 32x48 (fit, calibrate and the stream
    # all resize with the same Pillow-compatible bicubic filter).
    ds = data.synthetic_line("conveyor", n_train_videos=18, n_test_videos=0, frames_per_video=60,
                             height=64, width=96, seed=3)
    train, normal, test = ds.train[:6], ds.train[6:17], ds.train[17]
    with infp.Model("tiny", seed=0) as model:
        model.fit(train, epochs=2, batch_size=8, lr=2e-3, milestones=(), progress=False, seed=0)
        cal = model.calibrate(normal, false_alarm_rate=0.01)
        model.save(os.path.join(out, "line_model.safetensors"))
    video = test.copy()
    for k, f in enumerate(range(30, 42)):  # a yellow block, moving right by 6 pixels per frame
        video[f, 20:40, 4 + 6 * k:24 + 6 * k] = (250, 250, 40)
    data.write_raw_video(os.path.join(out, "line_video.infpraw"), video)
    print(f"make_example_data: {out}/line_model.safetensors (threshold {cal['threshold']:.2f} over "
          f"{cal['n_frames']} normal frames), {out}/line_video.infpraw ({video.shape[0]} frames of "
          f"{video.shape[1]}x{video.shape[2]}, anomaly in frames 30..41), {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUT_FOLDER")
    main(sys.argv[1])
