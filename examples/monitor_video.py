#!/usr/bin/env python3
"""monitor_video: live anomaly alerts on camera footage, in Python (the C/C++ line_monitor's
twin for real recordings).

    python3 examples/monitor_video.py CHECKPOINT SOURCE [SOURCE ...] [--stride N] [--fps F]

Loads a calibrated checkpoint (infp.Model.calibrate(...) then save(...)), reads each SOURCE frame
by frame as a camera would deliver it — a video file (mp4, avi, mkv, ... through PyAV), a folder
of frame images, a folder of those, a raw video of infp.data.write_raw_video, or an rtsp:// URL —
pushes each frame into a live stream (frames of any size are resized inside the library) and
prints one line per alert start and end, then a summary per source. Exit code 0 on success, 1 on
an error (unreadable file, uncalibrated model), 2 on bad usage.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import infp  # noqa: E402
from infp import data, video  # noqa: E402


def frames_of(source: str, stride: int, max_frames):
    if source.endswith(".infpraw"):
        raw = data.read_raw_video(source, mmap=True)[::stride][:max_frames]
        return iter(raw)
    return video.iter_video(source, stride=stride, max_frames=max_frames)


def monitor(stream, source: str, stride: int, max_frames, fps) -> None:
    stream.reset()
    t0 = time.perf_counter()
    n = events = alerted = 0
    worst, worst_at, open_event = float("-inf"), -1, 0
    for i, frame in enumerate(frames_of(source, stride, max_frames)):
        if fps:
            delay = t0 + i / fps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        r = stream.push(frame)
        n += 1
        alerted += r.alert
        if r.has_score and r.anomaly_score > worst:
            worst, worst_at = r.anomaly_score, i * stride
        if r.event_started:
            events += 1
            open_event = r.event_id
            print(f"{source}: frame {i * stride}: ALERT event {r.event_id} starts (anomaly score "
                  f"{r.anomaly_score:.2f} > threshold {r.threshold:.2f}, PSNR {r.psnr:.2f} dB)")
        if r.event_ended:
            open_event = 0
            print(f"{source}: frame {i * stride}: event {r.event_id} ends (anomaly score {r.anomaly_score:.2f})")
    if open_event:
        print(f"{source}: event {open_event} still on at the end of the video")
    print(f"summary: {source}: {n} frames, {events} events, {alerted} alerted frames, highest anomaly score "
          f"{worst:.2f} at frame {worst_at}, {n / max(time.perf_counter() - t0, 1e-9):.1f} frames/s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint")
    ap.add_argument("sources", nargs="+", help="video files, frame folders, folders of those, .infpraw, rtsp:// URLs")
    ap.add_argument("--stride", type=int, default=1, help="push every N-th frame")
    ap.add_argument("--max-frames", type=int, default=None, help="stop each source after this many frames")
    ap.add_argument("--fps", type=float, default=None, help="pace files to this frame rate (default: as fast as possible)")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        model = infp.Model.load(args.checkpoint, threads=args.threads)
        cal = model.calibration
        if cal is None:
            print(f"monitor_video: {args.checkpoint} is not calibrated (Model.calibrate, then save): no alerts",
                  file=sys.stderr)
            return 1
        print(f"libinfp {infp.library_version}; calibration: {cal['method']} score, threshold {cal['threshold']:.2f} "
              f"over {cal['n_frames']} normal frames")
        sources = []
        for s in args.sources:
            sources.extend([s] if s.endswith(".infpraw") else video.video_sources(s))
        with model.stream() as stream:
            for s in sources:
                monitor(stream, s, args.stride, args.max_frames, args.fps)
    except (OSError, ValueError, ImportError, infp.InfpError) as e:
        print(f"monitor_video: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
