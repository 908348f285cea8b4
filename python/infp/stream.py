"""Live streams: one camera through a model, one frame at a time, with calibrated alerts.

    >>> model = infp.Model.load("line3.safetensors")        # calibrated with model.calibrate(...)
    >>> with model.stream(min_event_frames=2) as s:
    ...     for frame in camera:                              # uint8 (H, W, 3), any size
    ...         r = s.push(frame)
    ...         if r.event_started:
    ...             print(f"alert at frame {r.frame_index}: {r.anomaly_score:.1f} > {r.threshold:.1f}")

Each frame goes through the backbone once (the features of the last four frames are kept),
so a frame costs one backbone pass plus fusion and decoder, and the PSNRs equal those of
:meth:`infp.Model.score` on the same frames. Frames of another size are resized inside the
library exactly as :func:`infp.data.resize_video` (Pillow bicubic) would.

The anomaly score is a z-score against normal footage, with the statistics of the model's
calibration (:meth:`infp.Model.calibrate`): ``(memory_score - psnr_mean) / psnr_std`` for a
"memory" calibration (the default when the model remembers normal footage; each frame is
matched once against the memory), ``(psnr_mean - psnr) / psnr_std`` for "psnr". 0 is a typical
normal frame, higher is more anomalous. Alerts are causal: an event starts on the ``min_event_frames``-th frame in a row
whose score exceeds the threshold, and ends on the ``release_frames``-th frame in a row whose
score is below ``threshold - hysteresis``.
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_float, c_uint8, c_void_p
from typing import NamedTuple, Optional

import numpy as np

from . import _args
from ._lib import StreamResult as _CResult
from ._lib import NativeHandle, check, lib

__all__ = ["Stream", "StreamResult", "resize_rgb8"]

_U8P = POINTER(c_uint8)
_F32P = POINTER(c_float)


class StreamResult(NamedTuple):
    """The scores of one pushed frame.

    Attributes:
        frame_index: 0-based index since the stream's creation or last reset.
        has_score: False for the first 4 frames (nothing to predict them from).
        psnr: PSNR (dB) of the frame's prediction, higher = more normal; NaN without a score.
        anomaly_score: the calibration's z-score (see the module's doc); NaN without a score
            or calibration.
        threshold: the threshold in use; NaN without calibration.
        alert: the frame is part of an event.
        event_started: an event starts on this frame.
        event_ended: the event ended on this frame (which is no longer alerted).
        event_id: 1-based number of the event this frame starts, is in or ends; else 0.
        error_map: with ``push(..., error_map=True)``, float32 (H, W) at the model's size: per
            pixel the mean over RGB of the squared prediction error on [0, 1] images (zeros
            while has_score is False); else None.
    """
    frame_index: int
    has_score: bool
    psnr: float
    anomaly_score: float
    threshold: float
    alert: bool
    event_started: bool
    event_ended: bool
    event_id: int
    error_map: Optional[np.ndarray] = None


def _frame(frame, name="frame"):
    """(array, height, width, channels, row stride in bytes) of a uint8 frame, without a copy
    when its pixels are packed within rows (rows may be strided, e.g. a crop)."""
    a = np.asarray(frame)
    if a.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 (0..255), got dtype {a.dtype}; "
                         "convert float frames with (x * 255).round().astype(np.uint8)")
    if a.ndim == 2:
        channels = 1
    elif a.ndim == 3 and a.shape[2] in (1, 3, 4):
        channels = a.shape[2]
    else:
        raise ValueError(f"{name} must have shape (H, W, 3) RGB, (H, W, 4) RGBA or (H, W) grey, got {a.shape}")
    h, w = a.shape[0], a.shape[1]
    if h < 1 or w < 1:
        raise ValueError(f"{name} is empty: {a.shape}")
    packed = (a.strides[1] == channels and (a.ndim == 2 or a.strides[2] == 1 or channels == 1)
              and a.strides[0] >= w * channels)
    if not packed:
        a = np.ascontiguousarray(a)
    return a, h, w, channels, int(a.strides[0])


def resize_rgb8(frame, height: int, width: int) -> np.ndarray:
    """Resizes a uint8 frame ((H, W, 3) RGB, (H, W, 4) RGBA — alpha ignored — or (H, W) grey)
    to RGB (height, width, 3) with libinfp's Pillow-compatible bicubic filter, the one
    streams use (bit-identical to ``PIL.Image.resize(size, BICUBIC)`` on RGB)."""
    a, h, w, c, stride = _frame(frame)
    out = np.empty((int(height), int(width), 3), np.uint8)
    check(lib.infp_resize_rgb8(a.ctypes.data_as(_U8P), h, w, c, stride, out.ctypes.data_as(_U8P),
                               out.shape[0], out.shape[1], out.size))
    return out


class Stream(NativeHandle):
    """A live stream of one camera through a model (create it with :meth:`infp.Model.stream`).

    Args:
        model: an :class:`infp.Model`; calibrate it first (:meth:`infp.Model.calibrate`) for
            anomaly scores and alerts; the stream uses the calibration the model has now.
        threads: worker threads for this stream's frames (0 = the model's setting). With
            several cameras on few cores, 1 per stream is usually best.
        min_event_frames: frames in a row above the threshold that start an event (>= 1).
        release_frames: frames in a row below ``threshold - hysteresis`` that end it (>= 1).
        hysteresis: in anomaly-score units (>= 0).
        threshold: a threshold on the anomaly score instead of the calibration's (needs a
            calibration, which defines the score).

    One stream is meant for one thread at a time (calls are serialised); several streams may
    share one model on different threads. Close it with :meth:`close` or a ``with`` block.
    """

    _free_function = "infp_stream_free"

    def __init__(self, model, *, threads: int = 0, min_event_frames: int = 2, release_frames: int = 3,
                 hysteresis: float = 0.5, threshold: Optional[float] = None):
        params = lib.infp_stream_default_params()
        params.n_threads = _args.integer(threads, "threads")
        params.min_event_frames = _args.integer(min_event_frames, "min_event_frames", 1)
        params.release_frames = _args.integer(release_frames, "release_frames", 1)
        hysteresis = _args.number(hysteresis, "hysteresis", 0)
        params.hysteresis = hysteresis if hysteresis > 0 else -1.0  # C: 0 = default, < 0 = none
        if threshold is None:
            params.threshold_override = 0.0  # C: 0 = the calibration's threshold
        else:
            t = _args.number(threshold, "threshold")
            # 0 is the C API's "use the calibration"; the smallest positive float32 stands in for it.
            params.threshold_override = t if t != 0 else float(np.nextafter(np.float32(0), np.float32(1)))
        handle = c_void_p()
        check(lib.infp_stream_create(model._h, byref(params), byref(handle)))
        self._handle = handle
        self._model = model  # keeps the Python object alive too (the C stream holds the C model)
        c = model.config
        self.height, self.width = c["height"], c["width"]


    def __repr__(self) -> str:
        state = "closed" if getattr(self, "_handle", None) is None else f"{self.height}x{self.width}"
        return f"Stream({state})"

    # -- frames -----------------------------------------------------------------------

    def push(self, frame, *, error_map: bool = False) -> StreamResult:
        """Scores one frame.

        Args:
            frame: uint8 (H, W, 3) RGB, (H, W, 4) RGBA (alpha ignored) or (H, W) grey, any
                size (resized to the model's size with Pillow's bicubic filter). Rows may be
                strided (e.g. a crop of a larger image); no copy is made then.
            error_map: also return the per-pixel error map (see :class:`StreamResult`).
        Returns:
            a :class:`StreamResult`.
        """
        handle = self._h
        a, h, w, c, stride = _frame(frame)
        res = _CResult()
        res.size = ctypes.sizeof(_CResult)
        emap = np.empty((self.height, self.width), np.float32) if error_map else None
        check(lib.infp_stream_push(handle, a.ctypes.data_as(_U8P), h, w, c, stride, byref(res),
                                   emap.ctypes.data_as(_F32P) if emap is not None else None,
                                   emap.size if emap is not None else 0))
        return StreamResult(int(res.frame_index), bool(res.has_score), float(res.psnr), float(res.anomaly_score),
                            float(res.threshold), bool(res.alert), bool(res.event_started), bool(res.event_ended),
                            int(res.event_id), emap)

    def reset(self) -> None:
        """Forgets past frames and events: the next frame is frame 0 again."""
        check(lib.infp_stream_reset(self._h))
