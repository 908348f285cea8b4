"""Convert a checkpoint of the authors' PyTorch code (github.com/YuQianzi/INFP) to infp.

    python -m infp.convert model.pth out.safetensors [--height 224 --width 288] [--config JSON]

Needs torch only while it runs. Handles checkpoints saved from ``nn.DataParallel`` (a
``module.`` prefix) and checkpoints that wrap the state dict in a dict (``state_dict``,
``model``, ``net``...). The config (width_div, blocks, fusion, filter...) is inferred from the
tensors; what cannot be inferred (frame size in spatial filter mode, loss) comes from the
options. The result is loaded back through libinfp, which checks every name and shape.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import OrderedDict

import numpy as np

from . import safetensors

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights")


def unwrap(obj):
    """The tensor mapping inside a loaded checkpoint object."""
    for _ in range(3):
        if isinstance(obj, dict) and obj and all(hasattr(v, "shape") for v in obj.values()):
            return obj
        if isinstance(obj, dict):
            inner = next((obj[k] for k in _WRAPPER_KEYS if k in obj and isinstance(obj[k], dict)), None)
            if inner is None:
                break
            obj = inner
    if isinstance(obj, dict):
        tensors = {k: v for k, v in obj.items() if hasattr(v, "shape")}
        if tensors:
            return tensors
    raise ValueError("no state dict found in the checkpoint (expected a dict of tensors, possibly under "
                     f"one of the keys {', '.join(_WRAPPER_KEYS)})")


def strip_prefix(state):
    """Removes a DataParallel / DistributedDataParallel ``module.`` prefix."""
    if state and all(k.startswith("module.") for k in state):
        return OrderedDict((k[len("module."):], v) for k, v in state.items())
    return OrderedDict(state)


def infer_config(state, height=None, width=None, overrides=None) -> dict:
    """The infp config these tensors were trained with (spec §1 field names)."""
    def shape(name):
        if name not in state:
            raise ValueError(f"the checkpoint has no tensor {name}: it is not an INFP model")
        return tuple(state[name].shape)

    config = {}
    config["width_div"] = 64 // shape("wrn38.mod1.conv1.weight")[0]
    blocks = []
    for m in range(2, 8):
        ids = {int(g) for k in state for g in re.findall(rf"^wrn38\.mod{m}\.block(\d+)\.", k)}
        blocks.append(max(ids) if ids else 0)
    config["blocks"] = blocks
    config["fusion"] = any(k.startswith("fusion.") for k in state)
    config["trajectory_filter"] = "filter.complex_weights" in state
    c256 = 256 // config["width_div"]
    if config["trajectory_filter"]:
        p, qh, n, _ = shape("filter.complex_weights")
        d = shape("filter.pwconv1.weight")[1]
        config["filter_bases"] = n
        official = p == c256 and d != c256
        if p == c256 and d == c256:  # both readings fit: follow the options, default official
            official = (overrides or {}).get("filter_mode", "official") == "official"
        config["filter_mode"] = "official" if official else "spatial"
        if official:
            config["height"], config["width"] = 2 * (qh - 1), d
        else:
            config["height"] = p
            config["width"] = width or 2 * (qh - 1)
    if height:
        config["height"] = height
    if width:
        config["width"] = width
    config.update(overrides or {})
    return config


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m infp.convert", description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="a .pth/.pt file saved by the authors' PyTorch code")
    ap.add_argument("output", help="the .safetensors file to write")
    ap.add_argument("--height", type=int, help="frame height, when it cannot be inferred (default 224)")
    ap.add_argument("--width", type=int, help="frame width, when it cannot be inferred (default 288)")
    ap.add_argument("--config", default="{}", help='extra config fields as JSON, e.g. \'{"freq_mode": "cartesian"}\'')
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("infp.convert needs PyTorch to read .pth files: pip install torch", file=sys.stderr)
        return 2
    obj = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
    state = strip_prefix(unwrap(obj))
    overrides = json.loads(args.config)
    config = {"height": 224, "width": 288}
    config.update(infer_config(state, args.height, args.width, overrides))
    tensors = OrderedDict()
    for name, value in state.items():
        a = value.detach().cpu().numpy()
        tensors[name] = a.astype(np.int64) if name.endswith("num_batches_tracked") else a.astype(np.float32)
    safetensors.save(args.output, tensors, {"format": "infp", "infp_config": json.dumps(config)})

    from .model import Model  # checks every name, shape and dtype against the config
    try:
        with Model.load(args.output) as m:
            print(f"wrote {args.output}: {m!r}")
    except Exception as e:
        print(f"wrote {args.output}, but libinfp cannot load it: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
