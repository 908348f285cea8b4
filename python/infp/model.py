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
from ctypes import POINTER, byref, c_float, c_int, c_int32, c_int64, c_size_t, c_void_p
from typing import Dict, Tuple

import numpy as np

from . import _args
from ._lib import Calibration, FitParams, ScoreParams, ModelParams, NativeHandle, TrainCallback, TrainStats, Video, check, lib

_F32P = POINTER(c_float)

__all__ = ["Model"]


# infp_schedule, by index
_SCHEDULES = ("multistep", "cosine", "onecycle")
# infp_score_method, by index
_SCORE_METHODS = ("psnr", "patch", "memory")

# infp_tensor_kind
PARAMETER, BUFFER, COUNTER = 0, 1, 2


def _f32(a: np.ndarray):
    return a.ctypes.data_as(_F32P)


def _shape(shape) -> ctypes.Array:
    return (c_int64 * len(shape))(*shape)


def _path(path, name: str = "path") -> bytes:
    return _args.path(path, name)


def _sources(videos):
    """A path (video file, folder of frames, or folder of those) → its videos' sources; else as is."""
    if isinstance(videos, (str, os.PathLike)):
        from .video import video_sources
        return video_sources(videos)
    return videos


class Model(NativeHandle):
    """An INFP frame-prediction network (INFP-SPEC §1–2) held by libinfp.

    Args:
        preset: "small" (112×144, CPU training in minutes), "tiny" (32×48, tests) or
            "official" (224×288, the released 317.4 M-parameter model).
        seed: seed of the weight initialisation.
        threads: worker threads for this model's calls (0 = all cores).
        **overrides: config fields of INFP-SPEC §1, e.g. ``fusion=False``,
            ``filter_mode="spatial"``, ``width_div=16``, ``blocks=[1, 1, 2, 1, 1, 1]``.
    """

    _free_function = "infp_model_free"

    def __init__(self, preset: str = "small", *, seed: int = 0, threads: int = 0, **overrides):
        if not isinstance(preset, str):
            raise TypeError(f"preset must be a preset name (\"small\", \"tiny\" or \"official\"), got {preset!r}")
        if "\0" in preset:
            raise ValueError(f"preset {preset!r} contains a NUL character")
        params = lib.infp_model_default_params()
        params.preset = preset.encode()
        try:
            params.config_json = json.dumps(overrides, allow_nan=False).encode() if overrides else None
        except (TypeError, ValueError) as e:
            raise ValueError(f"config overrides {overrides!r} are not plain JSON values: {e}") from None
        params.seed = _args.integer(seed, "seed", *_args.UINT64)
        params.n_threads = _args.integer(threads, "threads")
        handle = c_void_p()
        check(lib.infp_model_create(byref(params), byref(handle)))
        self._handle = handle
        self._threads = threads

    @classmethod
    def load(cls, path, *, threads: int = 0) -> "Model":
        """Loads a checkpoint written by :meth:`save` (or by ``python -m infp.convert``)."""
        handle = c_void_p()
        check(lib.infp_model_load(_path(path), _args.integer(threads, "threads"), byref(handle)))
        model = cls.__new__(cls)
        model._handle = handle
        model._threads = threads
        return model


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
        check(lib.infp_model_set_threads(self._h, _args.integer(n, "threads")))
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
        if not np.issubdtype(np.asarray(clips).dtype, np.floating):
            raise ValueError(f"{name} must be floating point in [-1, 1] (got dtype {np.asarray(clips).dtype}); "
                             "convert uint8 frames with infp.data.to_model_input")
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

    def save(self, path, *, weights_only: bool = False) -> None:
        """Writes a safetensors checkpoint atomically (never a half-written file).

        The file holds the network under the released state_dict names, the memory of normal
        footage (``memory.*`` tensors, see :meth:`remember`) and, in its metadata, the config
        and the calibration. ``weights_only=True`` writes the network and its config alone:
        exactly the released state_dict, for code that loads it strictly (the authors'
        PyTorch ``load_state_dict``).
        """
        fn = lib.infp_model_save_weights if weights_only else lib.infp_model_save
        check(fn(self._h, _path(path)))

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

    # -- training and scoring -----------------------------------------------------------

    def _video(self, video, name="video") -> np.ndarray:
        """A video as contiguous uint8 (n, H, W, 3) at the model's frame size."""
        if isinstance(video, (str, os.PathLike)):  # a video file or folder of frames (infp/video.py)
            from .video import load_video
            video = load_video(video, *self.frame_shape[1:])
        v = np.asarray(video)
        if v.ndim != 4 or v.shape[-1] != 3:
            raise ValueError(f"{name} must be uint8 RGB frames of shape (n, H, W, 3), got {v.shape}")
        if v.dtype != np.uint8:
            raise ValueError(f"{name} must be uint8 RGB (0..255), got dtype {v.dtype}; "
                             "convert float frames with (x * 255).round().astype(np.uint8)")
        _, h, w = self.frame_shape
        if v.shape[1:3] != (h, w):
            from .data import resize_video  # Pillow bicubic, as the released loader
            v = resize_video(v, h, w)
        return np.ascontiguousarray(v)

    @staticmethod
    def _c_video(v: np.ndarray) -> Video:
        return Video(v.ctypes.data_as(POINTER(ctypes.c_uint8)), v.shape[0], v.shape[1], v.shape[2])

    def fit(self, videos, epochs: int = 150, batch_size: int = 8, lr: float = 2e-4, milestones=(100, 120),
            gamma: float = 0.5, seed: int = 0, callback=None, progress: bool = True, resume=None,
            checkpoint_every: int = 0, checkpoint_path=None, max_minutes: float = 0, schedule: str = "multistep",
            warmup: float = 0.05, final_lr_factor: float = 0.01, ema_decay: float = 0.0, bn_batches: int = 0,
            remember: bool = True):
        """Learns normal motion from normal videos (spec §4: 5-frame clips, Adam, multi-step
        learning rate). Each call is one run with a fresh optimizer; ``resume`` continues a
        run saved with ``checkpoint_path`` exactly where it stopped, up to ``epochs``.

        Args:
            videos: list of uint8 RGB videos (n, H, W, 3); other frame sizes are resized. Video
                files and folders of frames may stand in for arrays, and a folder of those for
                the list (see :mod:`infp.video`).
            callback: optional ``f(stats: dict) -> bool | None`` after every step (epoch,
                step, loss, epoch_mean_loss, clips_per_second, learning_rate); returning
                False stops training (raises InfpError with status "cancelled").
            progress: show a tqdm progress bar (if tqdm is installed).
            max_minutes: a time budget; training ends normally after the step that exceeds it
                (the last entry of the returned losses is then a partial epoch's mean).
            schedule: "multistep" (the released recipe: ``lr``, x ``gamma`` at each of
                ``milestones``), "cosine" (linear warm-up over the fraction ``warmup`` of the
                run, then half cosine down to ``lr * final_lr_factor``) or "onecycle"
                (PyTorch's OneCycleLR shape). Cosine and one-cycle span the run: ``epochs``,
                or the ``max_minutes`` budget when it ends the run first.
            ema_decay: keep an exponential moving average of the weights (e.g. 0.998) and
                leave it in the model at the end; 0 = off.
            bn_batches: at the end, re-estimate BatchNorm running statistics over this many
                batches of training clips (0 = off); advisable with ``ema_decay`` and short
                high-rate runs, whose running averages lag the weights.
            remember: build the memory of normal footage (:meth:`remember`) from ``videos``
                after training, for the default "memory" anomaly score.
            docs/quality.md measures these options on a training budget.
        Returns:
            list of the mean loss of each epoch run.
        """
        vids = [self._video(v, f"videos[{i}]") for i, v in enumerate(_sources(videos))]
        if not vids:
            raise ValueError("fit needs at least one video")
        params = lib.infp_fit_default_params()
        # Python has real defaults: the C sentinels (0 = default) are not passed on.
        params.epochs = _args.integer(epochs, "epochs", 1)
        params.batch_size = _args.integer(batch_size, "batch_size", 1)  # the library explains 1
        params.learning_rate = _args.number(lr, "lr", 0, 1e3)
        if params.learning_rate <= 0:
            raise ValueError(f"lr must be positive, got {lr!r}")
        ms = list(milestones or [])
        if len(ms) > 8:
            raise ValueError("at most 8 milestones")
        for i, m in enumerate(ms):
            params.milestones[i] = _args.integer(m, f"milestones[{i}]", 0, 1_000_000)
        params.n_milestones = len(ms)
        params.gamma = _args.number(gamma, "gamma", 0, 1e3)
        if params.gamma <= 0:
            raise ValueError(f"gamma must be positive, got {gamma!r}")
        params.seed = _args.integer(seed, "seed", *_args.UINT64)
        params.checkpoint_every = _args.integer(checkpoint_every, "checkpoint_every", 0, 1_000_000)
        params.checkpoint_path = _path(checkpoint_path, "checkpoint_path") if checkpoint_path else None
        params.resume_path = _path(resume, "resume") if resume else None
        params.max_minutes = _args.number(max_minutes, "max_minutes", 0, 1e7)
        if schedule not in _SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(_SCHEDULES)}, got {schedule!r}")
        params.schedule = _SCHEDULES.index(schedule)
        params.warmup = _args.number(warmup, "warmup", 0, 1)
        params.final_lr_factor = _args.number(final_lr_factor, "final_lr_factor", 0, 1)
        params.ema_decay = _args.number(ema_decay, "ema_decay", 0, 1)
        params.bn_batches = _args.integer(bn_batches, "bn_batches", 0, 1_000_000)

        bar = None
        if progress:
            try:
                from tqdm.auto import tqdm
                bar = tqdm(total=None, unit="step", desc="training")
            except ImportError:
                bar = None
        epoch_losses, error = [], []

        def on_step(stats_ptr, _user):
            st = stats_ptr.contents
            stats = {k: getattr(st, k) for k, _ in TrainStats._fields_ if k != "size"}
            if st.step == 1:
                epoch_losses.append(st.epoch_mean_loss)
            else:
                epoch_losses[-1] = st.epoch_mean_loss
            if bar is not None:
                if bar.total is None and not max_minutes:  # a time budget makes the step count moot
                    bar.total = st.epochs * st.steps_per_epoch
                bar.n = st.epoch * st.steps_per_epoch + st.step
                # Under a time budget the epoch count is only a cap: show the epoch alone.
                epoch = f"{st.epoch + 1}" if max_minutes else f"{st.epoch + 1}/{st.epochs}"
                bar.set_postfix(epoch=epoch, loss=f"{st.loss:.4f}",
                                clips_s=f"{st.clips_per_second:.1f}", refresh=False)
                bar.refresh()
            if callback is not None:
                try:
                    return callback(stats) is not False
                except BaseException as e:  # do not unwind through C: stop, then re-raise
                    error.append(e)
                    return False
            return True

        params.on_step = TrainCallback(on_step)
        arr = (Video * len(vids))(*[self._c_video(v) for v in vids])
        try:
            status = lib.infp_model_fit(self._h, arr, len(vids), byref(params))
        finally:
            if bar is not None:
                bar.close()
        if error:
            raise error[0]
        check(status)
        if remember:
            arr_ok = [v for v in vids if v.shape[0] >= 5]
            if arr_ok:
                self.remember(arr_ok)
        return epoch_losses

    def train_step(self, clips, targets, lr: float = 2e-4) -> float:
        """One Adam step on a batch (training mode); the optimizer state persists between calls."""
        x = self._clips(clips)
        g = np.ascontiguousarray(targets, dtype=np.float32)
        if g.shape != (x.shape[0],) + self.frame_shape:
            raise ValueError(f"targets must have shape {(x.shape[0],) + self.frame_shape}, got {g.shape}")
        loss = c_float()
        check(lib.infp_model_train_step(self._h, _f32(x), _shape(x.shape), _f32(g), _shape(g.shape), _args.number(lr, "lr", 0, 1e3), byref(loss)))
        return float(loss.value)

    def score(self, video) -> np.ndarray:
        """PSNR (dB) of the predicted frames 4..n-1 of a video (spec §5); higher = more normal.

        Args:
            video: uint8 RGB (n, H, W, 3), n >= 5; other frame sizes are resized.
        Returns:
            float32 array of n - 4 values.
        """
        v = self._video(video)
        if v.shape[0] < 5:
            raise ValueError(f"scoring needs at least 5 frames, got {v.shape[0]}")
        out = np.empty(v.shape[0] - 4, dtype=np.float32)
        check(lib.infp_model_score(self._h, byref(self._c_video(v)), _f32(out), out.size))
        return out

    def predict_video(self, video) -> np.ndarray:
        """Predicted frames 4..n-1 of a video (evaluation mode; every frame goes through the
        backbone once), e.g. for error maps: ``(model.predict_video(v) - to_model_input(v)[4:])``.

        Args:
            video: uint8 RGB (n, H, W, 3), n >= 5; other frame sizes are resized.
        Returns:
            float32 (n - 4, 3, H, W) in [-1, 1].
        """
        v = self._video(video)
        if v.shape[0] < 5:
            raise ValueError(f"predicting needs at least 5 frames, got {v.shape[0]}")
        out = np.empty((v.shape[0] - 4,) + self.frame_shape, dtype=np.float32)
        check(lib.infp_model_predict_video(self._h, byref(self._c_video(v)), _f32(out), out.shape[0]))
        return out

    def anomaly_scores(self, video, method: str = "memory", *, patch_size: int = 16, smoothing: int = 1) -> np.ndarray:
        """Per-frame anomaly scores of frames 4..n-1 of a video, higher = more anomalous.

        Args:
            video: uint8 RGB (n, H, W, 3), n >= 5; other frame sizes are resized. A video file
                or folder of frames is read whole (:func:`infp.video.anomaly_scores` reads a
                long one chunk by chunk).
            method: "memory" (default: distance of the frame's 5-frame clip, in the model's
                backbone features, to the nearest clip of normal footage; needs
                :meth:`remember`, which :meth:`fit` does), "patch" (largest mean squared
                prediction error over ``patch_size`` patches) or "psnr" (the paper: -PSNR).
                docs/quality.md has the measurements behind the default.
            patch_size: side of the patches of "patch", in pixels.
            smoothing: causal moving average over this many frames (1 = none).
        Returns:
            float32 array of n - 4 scores. For the field's frame AUC (spec §5), pass their
            negatives as the PSNR-like values: ``metrics.frame_auc([-s for s in scores], labels)``.
        """
        if method not in _SCORE_METHODS:
            raise ValueError(f"method must be one of {', '.join(_SCORE_METHODS)}, got {method!r}")
        v = self._video(video)
        if v.shape[0] < 5:
            raise ValueError(f"scoring needs at least 5 frames, got {v.shape[0]}")
        params = lib.infp_score_default_params()
        params.method = _SCORE_METHODS.index(method)
        params.patch_size = _args.integer(patch_size, "patch_size")
        params.smoothing = _args.integer(smoothing, "smoothing")
        out = np.empty(v.shape[0] - 4, dtype=np.float32)
        check(lib.infp_model_anomaly_scores(self._h, byref(self._c_video(v)), byref(params), _f32(out), out.size))
        return out

    def remember(self, normal_videos) -> int:
        """Builds the memory of normal footage that the "memory" anomaly score compares with,
        from normal videos (the model's backbone features of every frame; saved with the
        model). Build it again after training. Returns the number of frames remembered."""
        vids = [self._video(v, f"normal_videos[{i}]") for i, v in enumerate(_sources(normal_videos))]
        if not vids:
            raise ValueError("remember needs at least one normal video")
        arr = (Video * len(vids))(*[self._c_video(v) for v in vids])
        check(lib.infp_model_remember(self._h, arr, len(vids)))
        return self.memory_frames

    @property
    def memory_frames(self) -> int:
        """Frames in the memory of normal footage (0 = none)."""
        n = c_int64()
        check(lib.infp_model_memory_frames(self._h, byref(n)))
        return n.value

    # -- live streams and calibration ------------------------------------------------------

    def calibrate(self, normal_videos, false_alarm_rate: float = 0.01, method: str = None) -> dict:
        """Fixes the live-alert threshold on normal footage and stores it in the model (saved
        with :meth:`save`, read back by :meth:`load`); streams created afterwards use it.

        The anomaly score of a frame is a z-score of its raw score against normal footage (0 is
        a typical normal frame, higher is more anomalous): ``(memory_score - mean) / std`` for
        the "memory" score, ``(mean - psnr) / std`` for "psnr", with the mean and sample
        standard deviation of the raw scores of every scored frame (frames 4..n-1) of
        ``normal_videos``. The threshold is the ``1 - false_alarm_rate`` quantile of their
        anomaly scores (linear interpolation), so about that fraction of normal frames score
        above it; requiring ``min_event_frames`` such frames in a row (:meth:`stream`) lowers
        the rate of alerts further. Use normal videos that were neither trained on nor
        remembered (the memory holds its own footage exactly), from the same camera.

        Args:
            normal_videos: list of uint8 RGB videos (n, H, W, 3), n >= 5; other frame sizes
                are resized (Pillow bicubic).
            false_alarm_rate: the per-frame rate in (0, 1).
            method: "memory" or "psnr"; None means "memory" when the model has a memory of
                normal footage (:meth:`remember`, done by :meth:`fit`), else "psnr".
        Returns:
            the calibration as a dict (see :attr:`calibration`).
        """
        vids = [self._video(v, f"normal_videos[{i}]") for i, v in enumerate(_sources(normal_videos))]
        if not vids:
            raise ValueError("calibrate needs at least one normal video")
        for i, v in enumerate(vids):
            if v.shape[0] < 5:
                raise ValueError(f"normal_videos[{i}] has {v.shape[0]} frames; calibration needs at least 5 per video")
        false_alarm_rate = _args.number(false_alarm_rate, "false_alarm_rate")
        if not 0 < false_alarm_rate < 1:
            raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}")
        if method not in (None, "psnr", "memory"):
            raise ValueError(f"method must be 'memory', 'psnr' or None, got {method!r}")
        arr = (Video * len(vids))(*[self._c_video(v) for v in vids])
        out = Calibration()
        out.size = ctypes.sizeof(Calibration)
        code = -1 if method is None else _SCORE_METHODS.index(method)
        check(lib.infp_model_calibrate_score(self._h, arr, len(vids), false_alarm_rate, code, byref(out)))
        return self._calibration_dict(out)

    @staticmethod
    def _calibration_dict(c: Calibration) -> dict:
        return {"method": _SCORE_METHODS[c.method], "false_alarm_rate": float(c.false_alarm_rate),
                "psnr_mean": float(c.psnr_mean), "psnr_std": float(c.psnr_std), "threshold": float(c.threshold),
                "n_frames": int(c.n_frames), "n_videos": int(c.n_videos)}

    @property
    def calibration(self):
        """The live-alert calibration as a dict (method "memory" or "psnr"; false_alarm_rate;
        psnr_mean and psnr_std, the mean and spread of the raw score — dB for "psnr", the
        name is historical; threshold on the anomaly score; n_frames, n_videos), or None if not
        calibrated. Assign a dict with those keys (e.g. to change the threshold) or None to
        remove it."""
        out = Calibration()
        out.size = ctypes.sizeof(Calibration)
        check(lib.infp_model_calibration(self._h, byref(out)))
        return self._calibration_dict(out) if out.n_frames > 0 else None

    @calibration.setter
    def calibration(self, value) -> None:
        if value is None:
            check(lib.infp_model_set_calibration(self._h, None))
            return
        missing = {"psnr_mean", "psnr_std", "threshold"} - set(value)
        if missing:
            raise KeyError(f"a calibration needs {sorted(missing)}")
        method = value.get("method", "psnr")
        if method not in ("psnr", "memory"):
            raise ValueError(f"a calibration's method is 'memory' or 'psnr', got {method!r}")
        c = Calibration()
        c.size = ctypes.sizeof(Calibration)
        c.psnr_mean = _args.number(value["psnr_mean"], "psnr_mean")
        c.psnr_std = _args.number(value["psnr_std"], "psnr_std")
        c.threshold = _args.number(value["threshold"], "threshold")
        c.false_alarm_rate = _args.number(value.get("false_alarm_rate", 0.0), "false_alarm_rate", 0, 1)
        c.n_frames = _args.integer(value.get("n_frames", 1), "n_frames", 1, _args.INT64[1])
        c.n_videos = _args.integer(value.get("n_videos", 1), "n_videos", 1, _args.INT64[1])
        c.method = _SCORE_METHODS.index(method)
        check(lib.infp_model_set_calibration(self._h, byref(c)))

    def stream(self, **params) -> "Stream":
        """A live stream through this model (:class:`infp.stream.Stream`): ``push(frame)``
        one frame at a time and get its PSNR, anomaly score and alert state.

            >>> with model.stream(min_event_frames=2, hysteresis=0.5) as s:
            ...     r = s.push(frame)

        Keyword args: threads, min_event_frames (2), release_frames (3), hysteresis (0.5),
        threshold (None = the calibration's); see :class:`infp.stream.Stream`.
        """
        from .stream import Stream
        return Stream(self, **params)
