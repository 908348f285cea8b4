"""Command line: ``python -m infp train | evaluate | demo | fleet-train | selftest``.

    python -m infp demo                                   # synthetic line, the paper's ablations
    python -m infp train line.safetensors --synthetic conveyor --epochs 10
    python -m infp train s01.safetensors --ipad /data/IPAD --category S01 --preset official
    python -m infp train line3.safetensors --videos /footage/line3/train   # mp4/avi/mkv, frame folders
    python -m infp evaluate line.safetensors --synthetic conveyor
    python -m infp evaluate line3.safetensors --videos /footage/line3/test --low-light
    python -m infp fleet-train --root /footage --out /shared/models    # every line, as Ray tasks
    python -m infp selftest                               # native library against NumPy
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from ._lib import InfpError


def _add_data_args(p, split_help: str) -> None:
    g = p.add_argument_group("data (choose one)")
    g.add_argument("--synthetic", metavar="SCENE", help=f"a synthetic production line ({split_help})")
    g.add_argument("--ipad", metavar="ROOT", help="an IPAD-layout folder (with --category)")
    g.add_argument("--category", help="IPAD category, e.g. S01 or R01")
    g.add_argument("--raw", nargs="+", metavar="FILE", help="raw videos written by infp.data.write_raw_video")
    g.add_argument("--videos", nargs="+", metavar="PATH",
                   help="video files (mp4, avi, mkv, ...), folders of frame images, or folders of those; "
                        "with --synthetic: how many videos to generate (default 6)")
    g.add_argument("--labels", nargs="+", metavar="FILE",
                   help="test labels: one .npy (per frame 0/1) or .csv (start,end inclusive frame ranges) per "
                        "video, a folder of <video name>.npy/.csv, or one IPAD .mat; default for --videos: "
                        "<video name>.npy/.csv beside each video")
    p.add_argument("--stride", type=int, default=1, help="--videos: read every N-th frame (default 1)")
    p.add_argument("--frames", type=int, default=160, help="frames per synthetic video (default 160)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the synthetic line (default 0)")


def _load_data(args, split: str, height: int, width: int):
    """(videos, labels or None) for 'training' or 'testing'."""
    from . import data
    paths = args.videos if args.videos and not args.synthetic else None
    chosen = [x for x in (args.synthetic, args.ipad, args.raw, paths) if x]
    if len(chosen) != 1:
        raise SystemExit("give exactly one of --synthetic SCENE, --ipad ROOT, --raw FILE..., --videos PATH...")
    if paths:
        from . import video
        try:
            videos, sources = video.load_videos(paths, height, width, stride=args.stride)
            labels = (video.find_labels(sources, [len(v) for v in videos], args.labels, stride=args.stride)
                      if split == "testing" else None)
        except (OSError, ValueError, ImportError) as e:
            raise SystemExit(f"error: {e}") from None
        print(f"read {len(videos)} videos ({sum(len(v) for v in videos)} frames at {height}x{width}) from "
              f"{', '.join(paths)}", file=sys.stderr)
        return videos, labels
    if args.synthetic:
        try:
            count = int(args.videos[0]) if args.videos else 6
        except ValueError:
            raise SystemExit(f"with --synthetic, --videos is how many videos to generate, got {args.videos[0]!r}") from None
        ds = data.synthetic_line(args.synthetic, n_train_videos=count, n_test_videos=count,
                                 frames_per_video=args.frames, height=height, width=width, seed=args.data_seed)
        return (ds.train, None) if split == "training" else (ds.test, ds.labels)
    if args.ipad:
        if not args.category:
            raise SystemExit("--ipad needs --category (e.g. S01)")
        out = data.load_ipad(args.ipad, args.category, split, height=height, width=width)
        return (out, None) if split == "training" else out
    videos = [data.read_raw_video(f) for f in args.raw]
    if args.labels:
        from .video import find_labels  # .npy, .csv (start,end ranges) or one .mat
        labels = find_labels(args.raw, [len(v) for v in videos], args.labels)
    else:
        labels = None
    if split == "testing" and labels is None:
        raise SystemExit("evaluating --raw videos needs --labels (one .npy per video)")
    return videos, labels


def train(args) -> int:
    import infp
    overrides = json.loads(args.config) if args.config else {}
    if args.resume:
        model = infp.Model.load(args.resume, threads=args.threads)
    else:
        model = infp.Model(preset=args.preset, seed=args.seed, threads=args.threads, **overrides)
    _, h, w = model.frame_shape
    videos, _ = _load_data(args, "training", h, w)
    print(f"{model!r}\ntraining on {len(videos)} videos, {sum(len(v) for v in videos)} frames")
    t0 = time.perf_counter()
    losses = model.fit(videos, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       milestones=[int(m) for m in args.milestones.split(",") if m] if args.milestones else [],
                       seed=args.seed, resume=args.resume, checkpoint_every=args.checkpoint_every,
                       checkpoint_path=args.output if args.checkpoint_every else None,
                       max_minutes=args.max_minutes, schedule=args.schedule, ema_decay=args.ema_decay,
                       bn_batches=args.bn_batches)
    model.save(args.output)
    print(f"trained {len(losses)} epochs in {time.perf_counter() - t0:.0f} s, final loss "
          f"{losses[-1]:.4f}; saved {args.output}")
    return 0


def evaluate(args) -> int:
    import infp
    model = infp.Model.load(args.model, threads=args.threads)
    _, h, w = model.frame_shape
    videos, labels = _load_data(args, "testing", h, w)
    if args.low_light is not None:
        return _low_light(args, model, videos, labels)
    t0 = time.perf_counter()
    psnr = [model.score(v) for v in videos]
    elapsed = time.perf_counter() - t0
    result = {
        "frame_auc": infp.metrics.frame_auc(psnr, labels),
        "macro_auc": infp.metrics.macro_auc(psnr, labels),
        "mean_psnr": float(np.mean(np.concatenate(psnr))),
        "videos": len(videos),
        "frames_per_second": sum(len(p) for p in psnr) / elapsed,
    }
    # The anomaly score chosen in docs/quality.md, unless it needs a memory the model lacks.
    method = args.method
    if method == "memory" and not model.memory_frames:
        print("note: the checkpoint holds no memory of normal footage (Model.remember); "
              "scoring with 'patch' instead of 'memory'", file=sys.stderr)
        method = "patch"
    if method != "psnr":
        scores = [model.anomaly_scores(v, method) for v in videos]
        result["method"] = method
        result["method_frame_auc"] = infp.metrics.frame_auc([-s for s in scores], labels)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"frame AUC {result['frame_auc']:.4f} (paper: PSNR)   macro AUC {result['macro_auc']:.4f}   "
              f"mean PSNR {result['mean_psnr']:.2f} dB   ({len(videos)} videos, "
              f"{result['frames_per_second']:.1f} frames/s)")
        if "method" in result:
            print(f"frame AUC {result['method_frame_auc']:.4f} ('{method}' anomaly score)")
    return 0


def _low_light(args, model, videos, labels) -> int:
    """evaluate --low-light: frame AUC per darkening level, PSNR and the chosen anomaly score."""
    from . import lowlight
    try:
        levels = lowlight.parse_levels(args.low_light) if args.low_light else lowlight.DEFAULT_LEVELS
    except ValueError as e:
        raise SystemExit(f"error: --low-light: {e}") from None
    method = args.method
    if method == "memory" and not model.memory_frames:
        print("note: the checkpoint holds no memory of normal footage (Model.remember); "
              "scoring with 'patch' instead of 'memory'", file=sys.stderr)
        method = "patch"
    methods = ["psnr"] + ([method] if method != "psnr" else [])
    table = lowlight.sweep(model, videos, labels, levels, methods=methods, seed=args.low_light_seed,
                           progress=not args.json)
    if args.json:
        print(table.to_json())
    else:
        print(f"\nFrame-level AUC on {len(videos)} test videos darkened to each level (gain x^gamma + sensor "
              f"noise, seed {args.low_light_seed}); 'psnr' is the paper's score\n")
        print(table)
    return 0


def fleet_train(args) -> int:
    """Trains (and evaluates) every line under --root as Ray tasks, writes checkpoints to --out."""
    from . import distributed
    if bool(args.root) == bool(args.synthetic):
        raise SystemExit("give one of --root DIR (one sub-folder per line) or --synthetic SCENE[,SCENE...]")
    try:
        if args.root:
            lines = distributed.discover(args.root)
            for ln in lines:
                ln.stride = args.stride
        else:
            scenes = [s.strip() for s in args.synthetic.split(",") if s.strip()]
            lines = [distributed.Line.synthetic(f"{scene}-{i}" if scenes.count(scene) > 1 else scene, scene,
                                                n_train_videos=args.videos, n_test_videos=args.videos,
                                                frames_per_video=args.frames, seed=args.seed + i)
                     for i, scene in enumerate(scenes)]
    except (OSError, ValueError, ImportError) as e:
        raise SystemExit(f"error: {e}") from None
    fit = dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, schedule=args.schedule,
               max_minutes=args.max_minutes,
               milestones=[int(m) for m in args.milestones.split(",") if m] if args.milestones else [])
    levels = None
    if args.low_light is not None:
        from . import lowlight
        levels = lowlight.parse_levels(args.low_light) if args.low_light else lowlight.DEFAULT_LEVELS
    print(f"{len(lines)} lines: {', '.join(ln.name for ln in lines)} -> {args.out}", file=sys.stderr)
    try:
        result = distributed.run(lines, args.out, preset=args.preset, config=json.loads(args.config or "{}"),
                                 seed=args.seed, fit=fit, cpus_per_task=args.cpus_per_task,
                                 evaluate=not args.no_evaluate, methods=["psnr", args.method] if args.method != "psnr" else ["psnr"],
                                 low_light=levels, address=args.address, num_cpus=args.num_cpus,
                                 progress=not args.json)
    except (ImportError, ConnectionError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    print(result.to_json() if args.json else result)
    return 1 if result.failed else 0


# The paper's Table 2 ablation: the AstNet baseline, + multi-feature fusion, + trajectory
# filter, both (the full INFP).
ABLATIONS = [
    ("baseline", {"fusion": False, "trajectory_filter": False}),
    ("+fusion", {"fusion": True, "trajectory_filter": False}),
    ("+filter", {"fusion": False, "trajectory_filter": True}),
    ("INFP (both)", {"fusion": True, "trajectory_filter": True}),
]


def demo(args) -> int:
    """Synthetic line → train each ablation variant on a time budget → frame AUC table."""
    import infp
    from . import data
    started = time.perf_counter()
    cfg = infp.Model(preset=args.preset, **json.loads(args.config or "{}")).config
    h, w = cfg["height"], cfg["width"]
    print(f"infp {infp.__version__}: generating a synthetic '{args.scene}' line at {h}x{w} ...")
    ds = data.synthetic_line(args.scene, n_train_videos=args.videos, n_test_videos=args.videos,
                             frames_per_video=args.frames, height=h, width=w, seed=args.seed)
    n_events = sum(len(e) for e in ds.events)
    kinds = sorted({e.kind for ev in ds.events for e in ev})
    print(f"  {len(ds.train)} normal training videos, {len(ds.test)} test videos with {n_events} "
          f"anomaly events ({', '.join(kinds)}), {args.frames} frames each")
    rows = []
    for name, variant in ABLATIONS:
        overrides = dict(json.loads(args.config or "{}"), **variant)
        model = infp.Model(preset=args.preset, seed=args.seed, threads=args.threads, **overrides)
        print(f"\n[{name}] {model!r}\n  training for up to {args.minutes:g} min "
              f"(lr {args.lr:g}, batch {args.batch_size}) ...")
        t0 = time.perf_counter()
        losses = model.fit(ds.train, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           milestones=[], seed=args.seed, max_minutes=args.minutes, progress=not args.quiet)
        t_train = time.perf_counter() - t0
        psnr = [model.score(v) for v in ds.test]
        auc = infp.metrics.frame_auc(psnr, ds.labels)
        memory = [model.anomaly_scores(v, "memory") for v in ds.test]  # fit remembered ds.train
        auc_memory = infp.metrics.frame_auc([-s for s in memory], ds.labels)
        rows.append((name, model.num_parameters, len(losses), t_train, losses[-1], auc, auc_memory))
        print(f"  {len(losses)} epochs in {t_train:.0f} s, loss {losses[0]:.3f} -> {losses[-1]:.3f}, "
              f"frame AUC {auc:.3f} (PSNR), {auc_memory:.3f} (memory score)")
    print("\nFrame-level AUC on the synthetic line (spec §5 protocol). 'PSNR' is the paper's score "
          "(Table 2 on IPAD: baseline 61.3, +fusion 68.5, +filter 67.2, both 71.8); 'memory' is infp's "
          "default anomaly score (docs/quality.md)\n")
    print(f"| {'variant':<12} | {'params':>8} | {'epochs':>6} | {'train s':>7} | {'loss':>6} | {'AUC PSNR':>8} | {'AUC memory':>10} |")
    print(f"|{'-' * 14}|{'-' * 10}|{'-' * 8}|{'-' * 9}|{'-' * 8}|{'-' * 10}|{'-' * 12}|")
    for name, params, epochs, t, loss, auc, auc_memory in rows:
        print(f"| {name:<12} | {params / 1e6:>7.2f}M | {epochs:>6} | {t:>7.0f} | {loss:>6.3f} | {auc:>8.3f} | {auc_memory:>10.3f} |")
    print(f"\ndemo done in {(time.perf_counter() - started) / 60:.1f} min")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infp", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n")[1])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model on normal videos and save it")
    p.add_argument("output", help="checkpoint to write (.safetensors)")
    p.add_argument("--preset", default="small", choices=["tiny", "small", "official"])
    p.add_argument("--config", help='config overrides as JSON, e.g. \'{"fusion": false}\'')
    _add_data_args(p, "its normal training videos")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--milestones", default="100,120", help="epochs where the rate halves (comma list)")
    p.add_argument("--max-minutes", type=float, default=0, help="time budget (0 = none)")
    p.add_argument("--schedule", default="multistep", choices=["multistep", "cosine", "onecycle"])
    p.add_argument("--ema-decay", type=float, default=0.0, help="weight average decay per step (0 = off)")
    p.add_argument("--bn-batches", type=int, default=0, help="re-estimate BatchNorm statistics at the end (0 = off)")
    p.add_argument("--checkpoint-every", type=int, default=0, help="save the run every N epochs (resumable)")
    p.add_argument("--resume", help="continue the run saved in this checkpoint")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)

    p = sub.add_parser("evaluate", help="frame-level AUC of a model on labelled test videos")
    p.add_argument("model", help="checkpoint (.safetensors)")
    _add_data_args(p, "its test videos with labelled anomaly events")
    p.add_argument("--method", default="memory", choices=["psnr", "patch", "memory"],
                   help="anomaly score reported beside the paper's PSNR AUC (default memory)")
    p.add_argument("--low-light", nargs="?", const="", metavar="LEVELS",
                   help="darken the test videos to each level and report the frame AUC per level: light "
                        "fractions ('1,0.5,0.25') or gain:gamma:noise triples; default 1 to 1/16 in stops")
    p.add_argument("--low-light-seed", type=int, default=0, help="seed of the simulated sensor noise")
    p.add_argument("--json", action="store_true", help="print one JSON line")
    p.add_argument("--threads", type=int, default=0)

    p = sub.add_parser("fleet-train", help="train and evaluate many lines as Ray tasks (local cores or a cluster)")
    p.add_argument("--root", help="one sub-folder per line: <line>/train, <line>/test (labels beside the "
                                  "videos), <line>/normal (optional, to calibrate alerts); or IPAD categories")
    p.add_argument("--synthetic", metavar="SCENES", help="comma-separated synthetic scenes instead of --root")
    p.add_argument("--out", required=True, help="checkpoints and reports (a folder every node sees)")
    p.add_argument("--address", help="Ray cluster address (ray://head:10001 or head:6379); default: "
                                     "RAY_ADDRESS, a `ray start` cluster on this machine, or a new local one")
    p.add_argument("--num-cpus", type=int, help="CPUs of a new local Ray instance (default: all cores)")
    p.add_argument("--cpus-per-task", type=int, default=1, help="CPUs (and model threads) per line (default 1)")
    p.add_argument("--preset", default="small", choices=["tiny", "small", "official"])
    p.add_argument("--config", help="config overrides as JSON")
    p.add_argument("--epochs", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--milestones", default="100,120", help="epochs where the rate halves (comma list)")
    p.add_argument("--schedule", default="multistep", choices=["multistep", "cosine", "onecycle"])
    p.add_argument("--max-minutes", type=float, default=0, help="time budget per line (0 = none)")
    p.add_argument("--stride", type=int, default=1, help="read every N-th frame of the videos")
    p.add_argument("--videos", type=int, default=4, help="--synthetic: videos per split (default 4)")
    p.add_argument("--frames", type=int, default=100, help="--synthetic: frames per video (default 100)")
    p.add_argument("--method", default="memory", choices=["psnr", "patch", "memory"],
                   help="anomaly score evaluated beside PSNR (default memory)")
    p.add_argument("--low-light", nargs="?", const="", metavar="LEVELS", help="also a low-light sweep per line")
    p.add_argument("--no-evaluate", action="store_true", help="train only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print one JSON line")

    p = sub.add_parser("demo", help="train the paper's ablation variants on a synthetic line, print AUCs")
    p.add_argument("--scene", default="conveyor")
    p.add_argument("--preset", default="small", choices=["tiny", "small", "official"])
    p.add_argument("--config", help="config overrides as JSON")
    p.add_argument("--minutes", type=float, default=2.0, help="training budget per variant (default 2)")
    p.add_argument("--epochs", type=int, default=1000, help="epoch cap (the time budget usually ends first)")
    p.add_argument("--videos", type=int, default=6)
    p.add_argument("--frames", type=int, default=160)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")

    p = sub.add_parser("selftest", help="check conv2d and FFTs of the native library against NumPy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0)

    args = parser.parse_args(argv)
    if args.command == "selftest":
        from . import selftest
        return selftest.run(args.seed, args.threads)
    try:
        return {"train": train, "evaluate": evaluate, "demo": demo, "fleet-train": fleet_train}[args.command](args)
    except (InfpError, OSError, ValueError) as e:
        # A missing or damaged file, a bad option value: the message, not a traceback.
        print(f"python -m infp {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
