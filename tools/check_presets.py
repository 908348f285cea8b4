"""Slow faithfulness check, run by hand: our library against the PyTorch reference
(tools/infp_torch.py) on the same weights, for presets larger than the unit-test goldens.

    PYTHONPATH=python /opt/torchenv/bin/python tools/check_presets.py small official

For each preset: a model is created by infp (seeded), its state_dict is loaded into the
PyTorch model, and the eval-mode outputs are compared on random clips; for non-official
presets also the training-mode loss and the parameter gradients (dropout off). Prints one JSON
line per preset with max relative errors (max |a - b| / max |b|) and timings.
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import infp  # noqa: E402
import infp_torch as T  # noqa: E402


def rel(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-12))


def check(preset: str) -> dict:
    torch.set_num_threads(2)
    ours = infp.Model(preset=preset, seed=7, dropout=False)
    cfg = T.Config(**ours.config)
    ref = T.INFP(cfg)
    state = ours.state_dict()
    ref.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
    rng = np.random.default_rng(0)
    c, h, w = ours.frame_shape
    clips = rng.uniform(-1, 1, (1, 4, c, h, w)).astype(np.float32)
    result = {"preset": preset, "parameters": ours.num_parameters}

    t = time.perf_counter(); got = ours.predict(clips); result["infp_eval_s"] = time.perf_counter() - t
    ref.eval()
    with torch.no_grad():
        t = time.perf_counter(); want = ref(torch.from_numpy(clips)).numpy(); result["torch_eval_s"] = time.perf_counter() - t
    result["eval_output_rel_err"] = rel(got, want)

    if preset != "official":
        clips2 = rng.uniform(-1, 1, (2, 4, c, h, w)).astype(np.float32)
        target = rng.uniform(-1, 1, (2, c, h, w)).astype(np.float32)
        loss, grads = ours.loss_and_grads(clips2, target)
        ref.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        ref.train()
        out = ref(torch.from_numpy(clips2))
        ref_loss = T.official_loss(out, torch.from_numpy(target))
        ref_loss.backward()
        result["loss_rel_err"] = abs(loss - ref_loss.item()) / abs(ref_loss.item())
        errs = {n: rel(grads[n], p.grad.numpy()) for n, p in ref.named_parameters()}
        worst = max(errs, key=errs.get)
        result["grad_rel_err_median"] = float(np.median(list(errs.values())))
        result["grad_rel_err_max"] = errs[worst]
        result["grad_worst"] = worst
    return result


if __name__ == "__main__":
    for preset in sys.argv[1:] or ["small"]:
        print(json.dumps(check(preset)), flush=True)
