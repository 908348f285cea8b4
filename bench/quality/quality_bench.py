#!/usr/bin/env python3
"""Detection quality on the synthetic production line: frame AUC (spec §5 protocol) per
scene after fixed wall-clock training budgets, for the paper's recipe and ours, per anomaly
score method, beside two trivial baselines.

    python3 bench/quality/quality_bench.py                       # budgets 0 and 3 min, all scenes
    python3 bench/quality/quality_bench.py --budgets 0,5,15,45 --seeds 0,1,2
    python3 bench/quality/quality_bench.py --report-only          # rebuild docs/quality.md

Every result is one JSON line on stdout and in --results (appended as it comes, so an
interrupted run keeps what it measured); docs/quality.md is rebuilt from the results file.

Per scene (infp.data.synthetic_line, data seed 0: 8 normal training videos of 200 frames and
8 test videos of 120 frames at 112x144, all 8 anomaly kinds, lighting drift and flicker everywhere):
  baseline prev_frame  whole-frame mean squared difference to the previous frame
  baseline template    difference to the nearest normal training frame (a phase-aligned
                       template; nearest by 4x-downsampled distance, scored by the largest
                       16x16 patch error)
  model runs           `small` preset, initialised with each --seeds value, trained for each
                       --budgets value (minutes of wall clock on this machine; 0 = untrained)
                       with each recipe, then `remember`ed on the training videos and scored
                       by every method of Model.anomaly_scores (psnr, patch, memory).
Recipes:
  paper   the released recipe (spec §4): Adam 2e-4, batch 8, multistep schedule (flat here)
  budget  ours: cosine schedule with 5 % warm-up from 1e-3, batch 8, weight average (EMA
          0.998), BatchNorm statistics re-estimated on 16 training batches at the end
"""

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
from infp import data, metrics  # noqa: E402

RECIPES = {
    "paper": dict(lr=2e-4, batch_size=8, schedule="multistep", milestones=(100, 120)),
    "budget": dict(lr=1e-3, batch_size=8, schedule="cosine", warmup=0.05, ema_decay=0.998, bn_batches=16),
}
METHODS = ("psnr", "patch", "memory")


def emit(out, **fields):
    line = json.dumps(fields)
    print(line, flush=True)
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def frame_auc(scores, labels):
    """Spec §5 protocol on anomaly scores (higher = more anomalous)."""
    return float(metrics.frame_auc([-np.asarray(s, dtype=np.float64) for s in scores], labels))


def largest_patch_mean(err, p=16):
    n, h, w = err.shape
    c = np.cumsum(np.cumsum(np.pad(err, ((0, 0), (1, 0), (1, 0))), 1), 2)
    ys = np.arange(0, h - p + 1, p // 2)
    xs = np.arange(0, w - p + 1, p // 2)
    tot = (c[:, ys[:, None] + p, xs[None, :] + p] - c[:, ys[:, None], xs[None, :] + p]
           - c[:, ys[:, None] + p, xs[None, :]] + c[:, ys[:, None], xs[None, :]])
    return tot.reshape(n, -1).max(1) / (p * p)


def baselines(ds):
    f = [data.to_model_input(v).transpose(0, 2, 3, 1) for v in ds.test]
    prev = [((x[4:] - x[3:-1]) ** 2).mean((1, 2, 3)) for x in f]
    train = np.concatenate([data.to_model_input(v).transpose(0, 2, 3, 1) for v in ds.train])
    small = train[:, ::4, ::4].reshape(len(train), -1)
    norms = (small ** 2).sum(1)
    tmpl = []
    for x in f:
        q = x[4:, ::4, ::4].reshape(len(x) - 4, -1)
        nearest = ((q ** 2).sum(1)[:, None] - 2 * q @ small.T + norms[None]).argmin(1)
        tmpl.append(largest_patch_mean(((x[4:] - train[nearest]) ** 2).mean(-1)))
    return {"prev_frame": frame_auc(prev, ds.labels), "template": frame_auc(tmpl, ds.labels)}


def model_run(ds, scene, recipe, budget, seed, methods, threads, out):
    model = infp.Model("small", seed=seed, threads=threads)
    t0 = time.perf_counter()
    steps, losses = [0], []
    if budget > 0:
        def count(stats):
            steps[0] += 1
        losses = model.fit(ds.train, epochs=1000, seed=seed, max_minutes=budget, progress=False, callback=count,
                           **RECIPES[recipe])
    trained = time.perf_counter() - t0
    model.remember(ds.train)
    predicted = {}
    if "psnr" in methods or "patch" in methods:
        # One prediction pass gives both prediction-error scores (the same formulas as
        # Model.anomaly_scores, which the unit tests check against these).
        t1 = time.perf_counter()
        errors = [((model.predict_video(v) - data.to_model_input(v)[4:]) / 2) ** 2 for v in ds.test]
        predicted["psnr"] = [10 * np.log10(e.reshape(len(e), -1).mean(1)) for e in errors]  # = -PSNR
        predicted["patch"] = [largest_patch_mean(e.mean(1).astype(np.float64)) for e in errors]
        shared = (time.perf_counter() - t1) / 2
    for method in methods:
        t1 = time.perf_counter()
        scores = predicted[method] if method in predicted else [model.anomaly_scores(v, method) for v in ds.test]
        emit(out, scene=scene, recipe=recipe if budget > 0 else "untrained", budget_min=budget, seed=seed, method=method,
             frame_auc=round(frame_auc(scores, ds.labels), 4), train_s=round(trained, 1), steps=steps[0],
             epochs=len(losses), final_loss=round(float(losses[-1]), 4) if losses else None,
             score_s=round(time.perf_counter() - t1 + (shared if method in predicted else 0), 1))


def run(args):
    scenes = data.SCENES if args.scenes == "all" else args.scenes.split(",")
    budgets = [float(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    for scene in scenes:
        # One line (data seed 0): 200-frame normal videos to learn from, shorter test videos.
        ds = data.synthetic_line(scene, n_test_videos=0, frames_per_video=200, seed=0)
        test = data.synthetic_line(scene, n_train_videos=0, frames_per_video=args.test_frames, seed=0)
        ds.test, ds.labels, ds.events = test.test, test.labels, test.events
        for name, auc in baselines(ds).items():
            emit(args.results, scene=scene, recipe="baseline", budget_min=0, seed=0, method=name, frame_auc=round(auc, 4))
        for seed in seeds:
            for budget in budgets:
                for recipe in (["untrained"] if budget == 0 else args.recipes.split(",")):
                    # Untrained models are only meaningful for the memory score beyond seed 0.
                    methods = METHODS if (budget > 0 or seed == seeds[0]) else ("memory",)
                    if budget > 0 and seed != seeds[0] and recipe not in args.all_seed_recipes.split(","):
                        continue
                    model_run(ds, scene, recipe, budget, seed, methods, args.threads, args.results)


def report(results_path, doc_path):
    # A later run of the same (scene, recipe, budget, seed, method) replaces the earlier one.
    latest = {}
    for line in open(results_path):
        if line.strip():
            r = json.loads(line)
            latest[(r["scene"], r["recipe"], r["budget_min"], r["seed"], r["method"])] = r
    rows = list(latest.values())
    scenes = [s for s in data.SCENES if any(r["scene"] == s for r in rows)]
    groups = {}
    for r in rows:
        key = (r["recipe"], r["budget_min"], r["method"])
        groups.setdefault(key, {}).setdefault(r["scene"], []).append(r["frame_auc"])
    order = {"baseline": 0, "untrained": 1, "paper": 2, "budget": 3}
    lines = ["| recipe | budget (min) | score | " + " | ".join(scenes) + " | mean | seeds |",
             "|---|---:|---|" + "---:|" * (len(scenes) + 2)]
    for key in sorted(groups, key=lambda k: (order.get(k[0], 9), k[1], METHODS.index(k[2]) if k[2] in METHODS else -1)):
        per = groups[key]
        cells = []
        for s in scenes:
            v = per.get(s, [])
            cells.append("" if not v else (f"{np.mean(v):.3f}" if len(v) == 1 else f"{np.mean(v):.3f} ({min(v):.3f}–{max(v):.3f})"))
        full = [s for s in scenes if s in per]
        nseeds = min(len(per[s]) for s in full)
        means = [np.mean([per[s][i] for s in full]) for i in range(nseeds)]
        mean = f"{np.mean(means):.3f}" + (f" ({min(means):.3f}–{max(means):.3f})" if nseeds > 1 else "")
        lines.append(f"| {key[0]} | {key[1]:g} | {key[2]} | " + " | ".join(cells) + f" | {mean} | {nseeds} |")
    table = "\n".join(lines)
    text = open(doc_path).read() if os.path.exists(doc_path) else ""
    begin, end = "<!-- quality table begin -->", "<!-- quality table end -->"
    if begin in text and end in text:
        text = text[: text.index(begin) + len(begin)] + "\n" + table + "\n" + text[text.index(end):]
    else:
        text += f"\n{begin}\n{table}\n{end}\n"
    with open(doc_path, "w") as f:
        f.write(text)
    print(table)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenes", default="all", help="comma-separated scenes or 'all'")
    ap.add_argument("--budgets", default="0,3", help="training minutes, comma-separated (0 = untrained)")
    ap.add_argument("--seeds", default="0,1,2", help="model seeds; trained runs use the first one only, "
                    "except recipes in --all-seed-recipes")
    ap.add_argument("--all-seed-recipes", default="", help="recipes trained with every seed (e.g. 'budget')")
    ap.add_argument("--recipes", default="paper,budget")
    ap.add_argument("--test-frames", type=int, default=120, help="frames per test video (default 120)")
    ap.add_argument("--threads", type=int, default=0, help="threads per model (0 = all cores)")
    ap.add_argument("--results", default=os.path.join(HERE, "results.jsonl"), help="JSON lines file (appended)")
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "quality.md"))
    ap.add_argument("--report-only", action="store_true", help="only rebuild the table from --results")
    args = ap.parse_args()
    if not args.report_only:
        run(args)
    if os.path.exists(args.results):
        report(args.results, args.doc)


if __name__ == "__main__":
    main()
