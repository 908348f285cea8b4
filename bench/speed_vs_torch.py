"""infp beside PyTorch on the same weights, in alternating rounds, fastest time of each side.

    python3 bench/speed_vs_torch.py [small] [--official] [--rounds 3] [--threads 2]

Figures (JSON lines, ratio = infp / PyTorch: below 1 means infp is faster):
  small    eval_forward_b1_ms  model.eval() forward of one clip (torch under no_grad)
           train_step_b8_s     training-mode forward + official loss + backward + Adam step, batch 8
  official eval_forward_b1_ms  (only with --official: about 10 s per forward on 2 cores)

Both sides run in their own worker process (so neither's thread pool spins while the other
works): infp through its Python package (INFP_LIBRARY picks the library), PyTorch through
tools/infp_torch.py in /opt/torchenv (override with INFP_TORCH_PYTHON). The infp model is
created with a seed and dropout off; its weights are saved and loaded into the PyTorch model,
so both run the same network on the same inputs. After one warm-up call on each side, rounds
alternate infp, PyTorch, infp, PyTorch, ...; each round of the eval forward takes the fastest of
`--eval-reps` calls, each round of the train step times one step; the figure is the fastest round.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORCH_PYTHON = os.environ.get("INFP_TORCH_PYTHON", "/opt/torchenv/bin/python")


# ----------------------------------------------------------------------------- workers

def _worker(side, preset, threads, weights, seed):
    """Runs in a child process: reads one JSON command per line, answers one JSON line."""
    import numpy as np
    rng = np.random.default_rng(seed)
    if side == "infp":
        sys.path.insert(0, str(ROOT / "python"))
        import infp
        m = infp.Model(preset=preset, seed=0, threads=threads, dropout=False)
        m.save(weights, weights_only=True)
        c, h, w = m.frame_shape
        hello = {"config": m.config, "library": str(getattr(infp, "__file__", ""))}

        def run_eval(x):
            m.predict(x)

        def run_train(x, y):
            m.train_step(x, y, lr=2e-4)
    else:
        import torch
        from safetensors.torch import load_file
        sys.path.insert(0, str(ROOT / "tools"))
        import infp_torch as T
        torch.set_num_threads(threads)
        cfg = None
        hello = {"torch": torch.__version__}
        state = None
        model = None
        opt = None

    def make_inputs(c, h, w):
        one = rng.uniform(-1, 1, (1, 4, c, h, w)).astype(np.float32)
        x = rng.uniform(-1, 1, (8, 4, c, h, w)).astype(np.float32)
        y = rng.uniform(-1, 1, (8, c, h, w)).astype(np.float32)
        return one, x, y

    if side == "infp":
        inputs = make_inputs(c, h, w)
    print(json.dumps(hello), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        if cmd["op"] == "setup":  # torch only: build the model from the config, load the weights
            cfg = T.Config(**cmd["config"])
            model = T.INFP(cfg)
            state = load_file(weights)
            model.load_state_dict(state, strict=True)
            opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8)
            inputs = make_inputs(cfg.image_channels, cfg.height, cfg.width)
            t_one, t_x, t_y = (torch.from_numpy(a) for a in inputs)

            def run_eval(_):
                model.eval()
                with torch.no_grad():
                    model(t_one)

            def run_train(_x, _y):
                model.train()
                opt.zero_grad(set_to_none=True)
                T.official_loss(model(t_x), t_y).backward()
                opt.step()
            print(json.dumps({"ok": True}), flush=True)
            continue
        reps = int(cmd.get("reps", 1))
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            if cmd["op"] == "eval":
                run_eval(inputs[0])
            else:
                run_train(inputs[1], inputs[2])
            best = min(best, time.perf_counter() - t)
        print(json.dumps({"seconds": best}), flush=True)


class Worker:
    def __init__(self, python, side, preset, threads, weights, seed):
        env = dict(os.environ)
        env["OMP_NUM_THREADS"] = str(threads)
        self.p = subprocess.Popen([python, __file__, "--worker", side, "--preset", preset, "--threads", str(threads),
                                   "--weights", weights, "--seed", str(seed)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        self.hello = self._read()

    def _read(self):
        line = self.p.stdout.readline()
        if not line:
            raise RuntimeError("benchmark worker died (see its stderr above)")
        return json.loads(line)

    def ask(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        return self._read()

    def close(self):
        try:
            self.ask(op="quit")
        except Exception:
            pass
        self.p.wait(timeout=60)


# ----------------------------------------------------------------------------- driver

def alternate(a, b, op, rounds, reps):
    ta, tb = [], []
    for _ in range(rounds):
        ta.append(a.ask(op=op, reps=reps)["seconds"])
        tb.append(b.ask(op=op, reps=reps)["seconds"])
    return min(ta), min(tb), ta, tb


def bench(preset, args):
    with tempfile.TemporaryDirectory() as d:
        weights = os.path.join(d, "weights.safetensors")
        ours = Worker(sys.executable, "infp", preset, args.threads, weights, 1)
        theirs = Worker(TORCH_PYTHON, "torch", preset, args.threads, weights, 1)
        theirs.ask(op="setup", config=ours.hello["config"])
        figures = [("eval_forward_b1_ms", "eval", 1e3, args.eval_reps if preset != "official" else 1)]
        if preset != "official":
            figures.append(("train_step_b8_s", "train", 1.0, 1))
        try:
            for name, op, scale, reps in figures:
                ours.ask(op=op, reps=1)      # warm-up (plans, pools, first-touch)
                theirs.ask(op=op, reps=1)
                a, b, ta, tb = alternate(ours, theirs, op, args.rounds, reps)
                row = {"bench": "speed_vs_torch", "preset": preset, "figure": name, "threads": args.threads,
                       "infp": round(a * scale, 4), "pytorch": round(b * scale, 4), "ratio": round(a / b, 4),
                       "rounds": args.rounds, "infp_rounds": [round(t * scale, 4) for t in ta],
                       "pytorch_rounds": [round(t * scale, 4) for t in tb], "torch": theirs.hello["torch"]}
                print(json.dumps(row), flush=True)
        finally:
            ours.close()
            theirs.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("presets", nargs="*", default=None, help="presets (default: small)")
    ap.add_argument("--official", action="store_true", help="also the official eval forward (slow)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--eval-reps", type=int, default=3, help="eval forwards per round (fastest kept)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", choices=["infp", "torch"], help=argparse.SUPPRESS)
    ap.add_argument("--preset", help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        _worker(a.worker, a.preset, a.threads, a.weights, a.seed)
        return
    presets = a.presets or ["small"]
    if a.official and "official" not in presets:
        presets.append("official")
    for p in presets:
        bench(p, a)


if __name__ == "__main__":
    main()
