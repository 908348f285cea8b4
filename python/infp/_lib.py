"""Loading libinfp.so and declaring its C functions (include/infp.h) for ctypes.

The library is looked for, in order:

1. the path in the ``INFP_LIBRARY`` environment variable (an error if it does not exist);
2. ``libinfp.so`` inside this package (put there by ``make lib`` or ``pip install ./python``);
3. the repository's release build, ``.build-release/release/libinfp.so``.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_bool, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t, c_uint64, c_uint8, c_void_p)
from pathlib import Path

__all__ = [
    "InfpError", "LibraryError", "Conv2dParams", "ModelParams", "Video", "TrainStats", "TrainCallback", "FitParams",
    "Calibration", "StreamParams", "StreamResult", "LogFn", "ProgressFn", "lib", "library_path",
    "check", "last_error", "NativeHandle", "status_name", "check_version",
    "OK", "ERR_INVALID_ARGUMENT", "ERR_SHAPE_MISMATCH", "ERR_IO", "ERR_FORMAT",
    "ERR_OUT_OF_MEMORY", "ERR_INTERNAL", "ERR_CANCELLED", "FFT_BACKWARD", "FFT_ORTHO",
]

# infp_status
OK = 0
ERR_INVALID_ARGUMENT = -1
ERR_SHAPE_MISMATCH = -2
ERR_IO = -3
ERR_FORMAT = -4
ERR_OUT_OF_MEMORY = -5
ERR_INTERNAL = -6
ERR_CANCELLED = -7

_STATUS_NAMES = {
    OK: "ok",
    ERR_INVALID_ARGUMENT: "invalid argument",
    ERR_SHAPE_MISMATCH: "shape mismatch",
    ERR_IO: "io error",
    ERR_FORMAT: "format error",
    ERR_OUT_OF_MEMORY: "out of memory",
    ERR_INTERNAL: "internal error",
    ERR_CANCELLED: "cancelled",
}

# infp_fft_norm
FFT_BACKWARD = 0
FFT_ORTHO = 1

# infp_log_level
LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERROR = 0, 1, 2, 3

_PACKAGE_DIR = Path(__file__).resolve().parent
_REPO_BUILD = _PACKAGE_DIR.parent.parent / ".build-release" / "release" / "libinfp.so"
_HOW_TO_GET_IT = ("build it with `make lib` in the infp repository, install the package with "
                  "`pip install ./python`, or set INFP_LIBRARY to the path of a libinfp.so")


class InfpError(RuntimeError):
    """A libinfp call failed. ``status`` is the infp_status code (negative), ``status_name``
    its short name and ``message`` the library's explanation (infp_last_error)."""

    def __init__(self, status: int, message: str):
        self.status = int(status)
        self.status_name = _STATUS_NAMES.get(self.status, "unknown status")
        self.message = message
        super().__init__(f"{message} [{self.status_name}]")


class LibraryError(ImportError):
    """libinfp.so could not be found or loaded, or its version does not match this package."""


class Conv2dParams(Structure):
    """infp_conv2d_params."""
    _fields_ = [
        ("size", c_size_t),
        ("stride", c_int32),
        ("padding", c_int32),
        ("dilation", c_int32),
        ("n_threads", c_int32),
    ]


class ModelParams(Structure):
    """infp_model_params."""
    _fields_ = [
        ("size", c_size_t),
        ("preset", c_char_p),
        ("config_json", c_char_p),
        ("seed", c_uint64),
        ("n_threads", c_int32),
    ]


LogFn = CFUNCTYPE(None, c_int, c_char_p, c_void_p)
ProgressFn = CFUNCTYPE(c_bool, c_float, c_void_p)


class Video(Structure):
    """infp_video: uint8 RGB frames (n, H, W, 3)."""
    _fields_ = [("pixels", POINTER(c_uint8)), ("frames", c_int64), ("height", c_int64), ("width", c_int64)]


class TrainStats(Structure):
    """infp_train_stats."""
    _fields_ = [("size", c_size_t), ("epoch", c_int32), ("epochs", c_int32), ("step", c_int32),
                ("steps_per_epoch", c_int32), ("loss", c_float), ("epoch_mean_loss", c_float),
                ("clips_per_second", c_float), ("learning_rate", c_float)]


TrainCallback = CFUNCTYPE(c_bool, POINTER(TrainStats), c_void_p)


class FitParams(Structure):
    """infp_fit_params."""
    _fields_ = [("size", c_size_t), ("epochs", c_int32), ("batch_size", c_int32), ("learning_rate", c_float),
                ("milestones", c_int32 * 8), ("n_milestones", c_int32), ("gamma", c_float), ("seed", c_uint64),
                ("checkpoint_every", c_int32), ("checkpoint_path", c_char_p), ("resume_path", c_char_p),
                ("progress", ProgressFn), ("on_step", TrainCallback), ("user", c_void_p), ("max_minutes", c_float),
                ("schedule", c_int32), ("warmup", c_float), ("final_lr_factor", c_float), ("ema_decay", c_float),
                ("bn_batches", c_int32)]

class ScoreParams(Structure):
    """infp_score_params."""
    _fields_ = [("size", c_size_t), ("method", c_int32), ("patch_size", c_int32), ("smoothing", c_int32)]


class Calibration(Structure):
    """infp_calibration."""
    _fields_ = [("size", c_size_t), ("false_alarm_rate", c_float), ("psnr_mean", c_float), ("psnr_std", c_float),
                ("threshold", c_float), ("n_frames", c_int64), ("n_videos", c_int64), ("method", c_int32)]


class StreamParams(Structure):
    """infp_stream_params."""
    _fields_ = [("size", c_size_t), ("n_threads", c_int32), ("min_event_frames", c_int32), ("release_frames", c_int32),
                ("hysteresis", c_float), ("threshold_override", c_float)]


class StreamResult(Structure):
    """infp_stream_result."""
    _fields_ = [("size", c_size_t), ("frame_index", c_int64), ("has_score", c_bool), ("psnr", c_float),
                ("anomaly_score", c_float), ("threshold", c_float), ("alert", c_bool), ("event_started", c_bool),
                ("event_ended", c_bool), ("event_id", c_int64)]


_F32P = POINTER(c_float)
_I64P = POINTER(c_int64)
_I32P = POINTER(c_int32)
_F64P = POINTER(c_double)
_U8P = POINTER(c_uint8)
_MODEL = c_void_p  # infp_model *
_STREAM = c_void_p  # infp_stream *

# name: (restype, argtypes), exactly as in include/infp.h.
_SIGNATURES = {
    "infp_last_error": (c_char_p, []),
    "infp_version": (c_char_p, []),
    "infp_status_name": (c_char_p, [c_int]),
    "infp_set_log_callback": (None, [LogFn, c_void_p]),
    "infp_conv2d_default_params": (Conv2dParams, []),
    "infp_conv2d": (c_int, [_F32P, _I64P, _F32P, _I64P, _F32P, POINTER(Conv2dParams), _F32P, _I64P]),
    "infp_conv2d_backward": (c_int, [_F32P, _I64P, _F32P, _I64P, POINTER(Conv2dParams),
                                     _F32P, _I64P, _F32P, _F32P, _F32P]),
    "infp_rfft2": (c_int, [_F32P, c_int32, _I64P, c_int32, c_int32, c_int, _F32P, c_int64]),
    "infp_rfft2_backward": (c_int, [c_int32, _I64P, c_int32, c_int32, c_int, _F32P, c_int64, _F32P]),
    "infp_irfft2": (c_int, [_F32P, c_int32, _I64P, c_int32, c_int32, c_int64, c_int, _F32P, c_int64]),
    "infp_irfft2_backward": (c_int, [c_int32, _I64P, c_int32, c_int32, c_int64, c_int,
                                     _F32P, c_int64, _F32P]),
    # models
    "infp_model_default_params": (ModelParams, []),
    "infp_model_create": (c_int, [POINTER(ModelParams), POINTER(_MODEL)]),
    "infp_model_load": (c_int, [c_char_p, c_int32, POINTER(_MODEL)]),
    "infp_model_save": (c_int, [_MODEL, c_char_p]),
    "infp_model_save_weights": (c_int, [_MODEL, c_char_p]),
    "infp_model_free": (None, [_MODEL]),
    "infp_model_set_threads": (c_int, [_MODEL, c_int32]),
    "infp_model_num_parameters": (c_int, [_MODEL, _I64P]),
    "infp_model_config_json": (c_int, [_MODEL, c_char_p, c_size_t, POINTER(c_size_t)]),
    "infp_model_predict": (c_int, [_MODEL, _F32P, _I64P, _F32P, _I64P]),
    "infp_model_tensor_count": (c_int, [_MODEL, _I64P]),
    "infp_model_tensor_info": (c_int, [_MODEL, c_int64, c_char_p, c_size_t, POINTER(c_int32),
                                       _I64P, POINTER(c_int)]),
    "infp_model_tensor_get": (c_int, [_MODEL, c_char_p, _F32P, c_int64]),
    "infp_model_tensor_set": (c_int, [_MODEL, c_char_p, _F32P, c_int64]),
    "infp_model_loss_and_grads": (c_int, [_MODEL, _F32P, _I64P, _F32P, _I64P, POINTER(c_float)]),
    "infp_model_grad_get": (c_int, [_MODEL, c_char_p, _F32P, c_int64]),
    # training and scoring
    "infp_fit_default_params": (FitParams, []),
    "infp_model_fit": (c_int, [_MODEL, POINTER(Video), c_int64, POINTER(FitParams)]),
    "infp_model_train_step": (c_int, [_MODEL, _F32P, _I64P, _F32P, _I64P, c_float, _F32P]),
    "infp_model_score": (c_int, [_MODEL, POINTER(Video), _F32P, c_int64]),
    "infp_model_predict_video": (c_int, [_MODEL, POINTER(Video), _F32P, c_int64]),
    "infp_score_default_params": (ScoreParams, []),
    "infp_model_anomaly_scores": (c_int, [_MODEL, POINTER(Video), POINTER(ScoreParams), _F32P, c_int64]),
    "infp_model_remember": (c_int, [_MODEL, POINTER(Video), c_int64]),
    "infp_model_memory_frames": (c_int, [_MODEL, _I64P]),
    "infp_model_calibrate_score": (c_int, [_MODEL, POINTER(Video), c_int64, c_float, c_int32, POINTER(Calibration)]),
    # live streams
    "infp_resize_rgb8": (c_int, [_U8P, c_int64, c_int64, c_int64, c_int64, _U8P, c_int64, c_int64, c_int64]),
    "infp_model_calibrate": (c_int, [_MODEL, POINTER(Video), c_int64, c_float, POINTER(Calibration)]),
    "infp_model_calibration": (c_int, [_MODEL, POINTER(Calibration)]),
    "infp_model_set_calibration": (c_int, [_MODEL, POINTER(Calibration)]),
    "infp_stream_default_params": (StreamParams, []),
    "infp_stream_create": (c_int, [_MODEL, POINTER(StreamParams), POINTER(_STREAM)]),
    "infp_stream_push": (c_int, [_STREAM, _U8P, c_int64, c_int64, c_int64, c_int64, POINTER(StreamResult),
                                 _F32P, c_int64]),
    "infp_stream_reset": (c_int, [_STREAM]),
    "infp_stream_free": (None, [_STREAM]),
    # metrics
    "infp_roc_auc": (c_int, [_I32P, _F64P, c_int64, _F64P]),
    "infp_roc_curve": (c_int, [_I32P, _F64P, c_int64, _F64P, _F64P, _F64P, c_int64, _I64P]),
    "infp_frame_auc": (c_int, [POINTER(_F64P), _I64P, POINTER(_I32P), _I64P, c_int64, _F64P]),
    "infp_macro_auc": (c_int, [POINTER(_F64P), _I64P, POINTER(_I32P), _I64P, c_int64, _F64P]),
}


def _find() -> Path:
    env = os.environ.get("INFP_LIBRARY")
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise LibraryError(f"INFP_LIBRARY is set to {env}, but there is no such file; "
                               f"unset it or {_HOW_TO_GET_IT}")
        return path
    for path in (_PACKAGE_DIR / "libinfp.so", _REPO_BUILD):
        if path.is_file():
            return path
    raise LibraryError(f"libinfp.so not found (looked in {_PACKAGE_DIR} and {_REPO_BUILD.parent}): "
                       f"{_HOW_TO_GET_IT}")


def _load(path: Path) -> ctypes.CDLL:
    try:
        handle = ctypes.CDLL(str(path))
    except OSError as e:
        raise LibraryError(f"cannot load {path}: {e}; {_HOW_TO_GET_IT}") from e
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(handle, name)
        except AttributeError as e:
            raise LibraryError(f"{path} has no function {name}: it is older than this package; "
                               f"{_HOW_TO_GET_IT}") from e
        fn.restype = restype
        fn.argtypes = argtypes
    return handle


library_path: Path = _find()
lib: ctypes.CDLL = _load(library_path)


def check_version(library_version: str, package_version: str, path) -> None:
    """Raises LibraryError when the library's version differs from the package's."""
    if library_version != package_version:
        raise LibraryError(
            f"libinfp at {path} is version {library_version}, but the infp Python package is "
            f"{package_version}: {_HOW_TO_GET_IT} (of the same version)")


def last_error() -> str:
    """infp_last_error() of the calling thread."""
    return lib.infp_last_error().decode("utf-8", "replace")


def status_name(status: int) -> str:
    return lib.infp_status_name(status).decode()


def check(status: int) -> None:
    """Raises InfpError with infp_last_error() when ``status`` is not INFP_OK."""
    if status != OK:
        raise InfpError(status, last_error())


class NativeHandle:
    """Owns one libinfp handle (``self._handle``): freed by ``close()``, by leaving a ``with``
    block, or by the finaliser. Subclasses name their C free function in ``_free_function``."""

    _free_function = ""

    def close(self) -> None:
        """Frees the native object. This Python object is unusable afterwards."""
        handle = getattr(self, "_handle", None)
        if handle is not None and handle.value:
            getattr(lib, self._free_function)(handle)
        self._handle = None

    def __enter__(self):
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
            raise ValueError(f"this {type(self).__name__} was closed")
        return self._handle

