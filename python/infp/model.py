"""The INFP model: create, load, save, predict, and inspect its state.

    >>> import infp
    >>> model = infp.Model(preset="small")            # or infp.Model.load("line3.safetensors")
    >>> frames = model.predict(clips)                  # (B, 4, 3, H, W) -> (B, 3, H, W)
"""

from __future__ import annotations

import ctypes
import json
import os
from collections import OrderedDict
from ctypes import POINTER, Structure, byref, c_char_p, c_float, c_int, c_int32, c_int64, c_size_t, c_uint64, c_void_p
from typing import Dict, Tuple

import numpy as np

from ._lib import check, lib

__all__ = ["Model", "ModelParams"]


class ModelParams(Structure):
    """infp_model_params."""
    _fields_ = [
        ("size", c_size_t),
        ("preset", c_char_p),
        ("config_json", c_char_p),
        ("seed", c_uint64),
        ("n_threads", c_int32),
    ]


_F32P = POINTER(c_float)
_I64P = POINTER(c_int64)
_SIGNATURES = {
    "infp_model_default_params": (ModelParams, []),
    "infp_model_create": (c_int, [POINTER(ModelParams), POINTER(c_void_p)]),
    "infp_model_load": (c_int, [c_char_p, c_int32, POINTER(c_void_p)]),
    "infp_model_save": (c_int, [c_void_p, c_char_p]),
    "infp_model_free": (None, [c_void_p]),
    "infp_model_set_threads": (c_int, [c_void_p, c_int32]),
    "infp_model_num_parameters": (c_int, [c_void_p, _I64P]),
    "infp_model_config_json": (c_int, [c_void_p, c_char_p, c_size_t, POINTER(c_size_t)]),
    "infp_model_predict": (c_int, [c_void_p, _F32P, _I64P, _F32P, _I64P]),
    "infp_model_tensor_count": (c_int, [c_void_p, _I64P]),
    "infp_model_tensor_info": (c_int, [c_void_p, c_int64, c_char_p, c_size_t, POINTER(c_int32), _I64P, POINTER(c_int)]),
    "infp_model_tensor_get": (c_int, [c_void_p, c_char_p, _F32P, c_int64]),
    "infp_model_tensor_set": (c_int, [c_void_p, c_char_p, _F32P, c_int64]),
    "infp_model_loss_and_grads": (c_int, [c_void_p, _F32P, _I64P, _F32P, _I64P, _F32P]),
    "infp_model_grad_get": (c_int, [c_void_p, c_char_p, _F32P, c_int64]),
}
for _name, (_restype, _argtypes) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype, _fn.argtypes = _restype, _argtypes

# infp_tensor_kind
PARAMETER, BUFFER, COUNTER = 0, 1, 2


def _f32(a: np.ndarray):
    return a.ctypes.data_as(_F32P)


def _shape(shape) -> ctypes.Array:
    return (c_int64 * len(shape))(*shape)


def _path(path) -> bytes:
    return os.fsencode(os.fspath(path))


class Model:
    """An INFP frame-prediction network (INFP-SPEC §1–2) held by libinfp.

    Args:
        preset: "small" (112×144, CPU training in minutes), "tiny" (32×48, tests) or
            "official" (224×288, the released 317.4 M-parameter model).
        seed: seed of the weight initialisation.
        threads: worker threads for this model's calls (0 = all cores).
        **overrides: config fields of INFP-SPEC §1, e.g. ``fusion=False``,
            ``filter_mode="spatial"``, ``width_div=16``, ``blocks=[1, 1, 2, 1, 1, 1]``.
    """

    def __init__(self, preset: str = "small", *, seed: int = 0, threads: int = 0, **overrides):
        params = lib.infp_model_default_params()
        params.preset = preset.encode()
        params.config_json = json.dumps(overrides).encode() if overrides else None
        params.seed = seed
        params.n_threads = threads
        handle = c_void_p()
        check(lib.infp_model_create(byref(params), byref(handle)))
        self._handle = handle
        self._threads = threads

    @classmethod
    def load(cls, path, *, threads: int = 0) -> "Model":
        """Loads a checkpoint written by :meth:`save` (or by ``python -m infp.convert``)."""
        handle = c_void_p()
        check(lib.infp_model_load(_path(path), threads, byref(handle)))
        model = cls.__new__(cls)
        model._handle = handle
        model._threads = threads
        return model

    # -- lifetime ---------------------------------------------------------------------

    def close(self) -> None:
        """Frees the native model. The object is unusable afterwards."""
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            lib.infp_model_free(handle)
        self._handle = None

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def _h(self) -> c_void_p:
        if getattr(self, "_handle", None) is None:
            raise ValueError("this Model was closed")
        return self._handle

    # -- properties -------------------------------------------------------------------

    @property
    def config(self) -> dict:
        """The config as a dict with the spec's field names (a copy)."""
        needed = c_size_t()
        check(lib.infp_model_config_json(self._h, None, 0, byref(needed)))
        buf = ctypes.create_string_buffer(needed.value)
        check(lib.infp_model_config_json(self._h, buf, needed.value, None))
        return json.loads(buf.value.decode())

    @property
    def num_parameters(self) -> int:
        out = c_int64()
        check(lib.infp_model_num_parameters(self._h, byref(out)))
        return out.value

    @property
    def threads(self) -> int:
        return self._threads

    @threads.setter
    def threads(self, n: int) -> None:
        check(lib.infp_model_set_threads(self._h, n))
        self._threads = n

    @property
    def frame_shape(self) -> Tuple[int, int, int]:
        """(3, H, W) of the frames this model reads and predicts."""
        c = self.config
        return (c["image_channels"], c["height"], c["width"])

    def __repr__(self) -> str:
        if getattr(self, "_handle", None) is None:
            return "Model(closed)"
        c = self.config
        return (f"Model({c['height']}x{c['width']}, width_div={c['width_div']}, blocks={c['blocks']}, "
                f"fusion={c['fusion']}, trajectory_filter={c['trajectory_filter']}, "
                f"{self.num_parameters / 1e6:.2f} M parameters)")

    # -- inference --------------------------------------------------------------------

    def _clips(self, clips, name="clips") -> np.ndarray:
        x = np.ascontiguousarray(clips, dtype=np.float32)
        c, h, w = self.frame_shape
        if x.ndim != 5 or x.shape[1:] != (4, c, h, w):
            raise ValueError(f"{name} must have shape (B, 4, {c}, {h}, {w}) (float32 in [-1, 1]), got {x.shape}")
        return x

    def predict(self, clips) -> np.ndarray:
        """Predicted next frames, evaluation mode.

        Args:
            clips: (B, 4, 3, H, W) float32 in [-1, 1], or one clip (4, 3, H, W).
        Returns:
            (B, 3, H, W) float32 (or (3, H, W) for one clip).
        """
        single = np.ndim(clips) == 4
        x = self._clips(np.expand_dims(clips, 0) if single else clips)
        out = np.empty((x.shape[0],) + self.frame_shape, dtype=np.float32)
        check(lib.infp_model_predict(self._h, _f32(x), _shape(x.shape), _f32(out), _shape(out.shape)))
        return out[0] if single else out

    # -- state ------------------------------------------------------------------------

    def _entries(self):
        count = c_int64()
        check(lib.infp_model_tensor_count(self._h, byref(count)))
        name = ctypes.create_string_buffer(512)
        rank, shape, kind = c_int32(), (c_int64 * 8)(), c_int()
        for i in range(count.value):
            check(lib.infp_model_tensor_info(self._h, i, name, 512, byref(rank), shape, byref(kind)))
            yield name.value.decode(), tuple(shape[: rank.value]), kind.value

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Every tensor by its released state_dict name, as NumPy copies (float32; BatchNorm
        ``num_batches_tracked`` counters as int64 scalars)."""
        out = OrderedDict()
        for name, shape, kind in self._entries():
            buf = np.empty(shape if kind != COUNTER else (1,), dtype=np.float32)
            check(lib.infp_model_tensor_get(self._h, name.encode(), _f32(buf), buf.size))
            out[name] = np.array(int(buf[0]), dtype=np.int64) if kind == COUNTER else buf
        return out

    def load_state_dict(self, state: Dict[str, np.ndarray], strict: bool = True) -> None:
        """Copies tensors into the model by name; with ``strict``, every tensor of the model
        must be given and no others. Shapes must match exactly."""
        entries = {name: (shape, kind) for name, shape, kind in self._entries()}
        if strict:
            missing = sorted(set(entries) - set(state))
            unexpected = sorted(set(state) - set(entries))
            if missing or unexpected:
                raise KeyError(f"state does not fit the model: missing {missing[:10]}{' …' if len(missing) > 10 else ''}, "
                               f"unexpected {unexpected[:10]}{' …' if len(unexpected) > 10 else ''}")
        for name, value in state.items():
            if name not in entries:
                continue
            shape, kind = entries[name]
            v = np.ascontiguousarray(value, dtype=np.float32)
            if (kind == COUNTER and v.size != 1) or (kind != COUNTER and v.shape != shape):
                raise ValueError(f"'{name}' has shape {v.shape}, the model needs {shape or 'a scalar'}")
            check(lib.infp_model_tensor_set(self._h, name.encode(), _f32(v), v.size))

    def save(self, path) -> None:
        """Writes a safetensors checkpoint atomically (never a half-written file)."""
        check(lib.infp_model_save(self._h, _path(path)))

    # -- research ---------------------------------------------------------------------

    def loss_and_grads(self, clips, targets) -> Tuple[float, Dict[str, np.ndarray]]:
        """One training-mode forward and backward pass (BatchNorm batch statistics; running
        statistics are updated, as in training), without changing any weight.

        Args:
            clips: (B, 4, 3, H, W) float32 in [-1, 1]; targets: (B, 3, H, W).
        Returns:
            (loss, {parameter name: gradient}) with the config's loss.
        """
        x = self._clips(clips)
        g = np.ascontiguousarray(targets, dtype=np.float32)
        if g.shape != (x.shape[0],) + self.frame_shape:
            raise ValueError(f"targets must have shape {(x.shape[0],) + self.frame_shape}, got {g.shape}")
        loss = c_float()
        check(lib.infp_model_loss_and_grads(self._h, _f32(x), _shape(x.shape), _f32(g), _shape(g.shape), byref(loss)))
        grads = OrderedDict()
        for name, shape, kind in self._entries():
            if kind != PARAMETER:
                continue
            buf = np.empty(shape, dtype=np.float32)
            check(lib.infp_model_grad_get(self._h, name.encode(), _f32(buf), buf.size))
            grads[name] = buf
        return float(loss.value), grads
