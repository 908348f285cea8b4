"""A bad-argument sweep over every function of include/infp.h (issue 11: no call may crash or
hang the host process).

Every function declared in the header has a table of calls (the header is parsed; a function
without an entry fails test_every_header_function_is_swept): NULL pointers, NULL, freed,
foreign and wrong-kind handles, shapes of the wrong rank or with zero, negative or huge
dimensions, inconsistent counts, absurd batches (with honest buffers: huge inputs are mapped
address space that reads as zeros, see fuzz_support.VirtualBuffer), a params struct of every
`size` from 0 to sizeof + 16 (and huge) built from *_default_params() with its pointer fields
set, NaN and infinite floats. Calls run in child processes with a 4 GiB data limit
(fuzz_support.run_cases).

A call fails the sweep when its process dies or hangs; when it fails with a status that is not
a known negative code, is "internal error", or leaves infp_last_error() empty or stale (still
the message of the failure before it); when it accepts what the header forbids (expect="fail":
a NULL required pointer, a dead handle, a size that ends inside a pointer field, ...); or when
it writes past the `size` the caller declared in an output struct.

The last tests call the Python wrapper with arguments that it must refuse rather than
truncate or misread (seed=2**64, epochs=0, Model(None), ...).

Environment: INFP_FUZZ_WORKERS (2), INFP_FUZZ_TIMEOUT (10 s), INFP_FUZZ_OUT (failure folder).
"""

from __future__ import annotations

import ctypes
import math
import os
import re
from ctypes import POINTER, byref, c_char_p, c_double, c_float, c_int, c_int32, c_int64, c_size_t, c_uint8, c_void_p
from pathlib import Path

import numpy as np
import pytest

import fuzz_support as fs

EXECUTOR = "test_fuzz_c_api:Executor"
HEADER = fs.REPO / "include" / "infp.h"
H, W = 32, 48  # tiny preset

NAN, INF = float("nan"), float("inf")
I64_MIN, I64_MAX = -(2 ** 63), 2 ** 63 - 1
I32_MIN, I32_MAX = -(2 ** 31), 2 ** 31 - 1

OK, INVALID, SHAPE, IO, FORMAT, OOM, INTERNAL, CANCELLED = 0, -1, -2, -3, -4, -5, -6, -7


def header_functions():
    """Names of the functions declared in include/infp.h."""
    text = re.sub(r"/\*.*?\*/", " ", HEADER.read_text(), flags=re.S)
    text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
    names = []
    for stmt in text.split(";"):
        s = " ".join(stmt.split())
        if "(" not in s or s.startswith("typedef") or "typedef" in s.split("(")[0]:
            continue
        # drop struct/enum bodies that end just before a declaration
        s = s.split("}")[-1].strip()
        m = re.match(r"^(?:extern\s+\"C\"\s*\{\s*)?[\w\s\*]*?\b(infp_\w+)\s*\(", s)
        if m:
            names.append(m.group(1))
    return names


# ---- the table ---------------------------------------------------------------------------------

CASES = {}  # function -> {variant: (thunk(ctx) -> status | (status, problems) | None, expect, timeout)}


def add(fn, name, thunk, expect=None, timeout=None, headroom=None, timeout_ok=False):
    """A call of `fn`. expect: "fail", "ok" or None (either). headroom: run it with only this
    many MB of memory to spare (fuzz_support.memory_headroom). timeout_ok: the call may
    legitimately run longer than `timeout` (long work in bounded pieces): still running then,
    without a crash, passes."""
    table = CASES.setdefault(fn, {})
    assert name not in table, (fn, name)
    if headroom and fs.UNDER_SANITIZER:
        return  # memory-pressure cases need RLIMIT_DATA, which the sanitizer cannot run under
    if headroom:
        inner = thunk

        def thunk(c, inner=inner, mb=headroom):
            with fs.memory_headroom(mb):
                return inner(c)
    table[name] = (thunk, expect, timeout, timeout_ok)


NULL = object()  # an argument to replace by a NULL pointer
F32P = POINTER(c_float)
U8P = POINTER(c_uint8)


def i64s(values):
    return (c_int64 * max(1, len(values)))(*values)


class Buf:
    """A float32 (or other) buffer of `count` elements for the library: NumPy memory when
    small, a VirtualBuffer when large (reads as zeros, costs nothing), a small stand-in when
    the count is not positive or exceeds any address space (the library must refuse then)."""

    def __init__(self, count, ctype=c_float, out=False, fill=None):
        self.count = count
        self.ctype = ctype
        size = ctypes.sizeof(ctype)
        if not isinstance(count, int) or count <= 0 or count * size > (1 << 45):
            self.array = np.zeros(64, dtype=np.uint8)
            self.address = self.array.ctypes.data
            self.honest = False
        elif count * size <= (64 << 20):
            self.array = np.zeros(count * size, dtype=np.uint8)
            if fill is not None:
                view = self.array.view({c_float: np.float32, c_double: np.float64, c_int32: np.int32,
                                        c_uint8: np.uint8, c_int64: np.int64}[ctype])
                view[:] = fill
            self.address = self.array.ctypes.data
            self.honest = True
        else:
            self.vb = fs.VirtualBuffer(count * size, writable=out)
            self.address = self.vb.address
            self.honest = True

    @property
    def ptr(self):
        return ctypes.cast(c_void_p(self.address), POINTER(self.ctype))


def arg(value, default):
    return default if value is None else (None if value is NULL else value)


def prod(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def positive(shape):
    return all(isinstance(d, int) and d > 0 for d in shape)


# ---- params structs of every size ------------------------------------------------------------------

def struct_bytes(struct, size, extra=16, fill=0xA5, output=False):
    """The struct's bytes in a buffer of sizeof + extra bytes (the tail filled with `fill`), with
    its `size` field set to `size`. For an output struct, every byte past `size` is `fill`
    (see canary_problems)."""
    n = ctypes.sizeof(struct)
    buf = (c_uint8 * (n + extra))()
    ctypes.memmove(buf, ctypes.addressof(struct), n)
    start = max(8, min(size, n)) if output else n
    for i in range(start, n + extra):
        buf[i] = fill
    ctypes.c_uint64.from_buffer(buf, 0).value = size % (1 << 64)
    return buf


def pointer_ranges(struct_type):
    """Byte ranges of the pointer fields of a ctypes Structure."""
    out = []
    for name, ctype in struct_type._fields_:
        field = getattr(struct_type, name)
        if ctype in (c_char_p, c_void_p) or issubclass(ctype, (ctypes._Pointer, ctypes._CFuncPtr)):
            out.append((field.offset, field.offset + field.size, name))
    return out


def sizes_for(struct_type):
    n = ctypes.sizeof(struct_type)
    return list(range(0, n + 17)) + [2 ** 31, 2 ** 63, 2 ** 64 - 1]


def size_expect(struct_type, size, input_struct=True):
    """'fail' where the header's rules forbid a size: below the size field, above the struct, or
    ending inside a pointer field; else None (the library may take a prefix)."""
    n = ctypes.sizeof(struct_type)
    if size < 8 or size > n:
        return "fail"
    for b, e, _ in pointer_ranges(struct_type):
        if b < size < e:
            return "fail"
    return None


def canary_problems(buf, size, struct_type):
    """An output struct must not be written past the size its caller declared."""
    n = ctypes.sizeof(struct_type)
    start = max(8, min(size, n))
    bad = [i for i in range(start, n + 16) if buf[i] != 0xA5]
    if bad:
        return [f"wrote bytes {bad[0]}..{bad[-1]} of a struct whose caller declared size {size}"]
    return []


# ---- the child's context ---------------------------------------------------------------------------

class Ctx:
    """Objects the calls need, built once per child: a calibrated tiny model with a memory, a
    stream on it, dead handles, a foreign pointer, short videos, a checkpoint."""

    def __init__(self, scratch: Path):
        import infp
        from infp import _lib
        self.infp = infp
        self.lib = _lib.lib
        self._lib = _lib
        self.scratch = scratch
        scratch.mkdir(parents=True, exist_ok=True)
        self.model_obj = self.new_model(memory=True, calibrated=True)
        self.model = self.model_obj._h
        self.stream = self.new_stream(self.model)
        dead = self.new_model()
        self.freed_model = c_void_p(dead._h.value)
        dead.close()
        s = self.new_stream(self.model)
        self.freed_stream = c_void_p(s.value)
        self.lib.infp_stream_free(s)
        self.foreign = np.zeros(256, np.uint8)
        self.garbage = c_void_p(self.foreign.ctypes.data)
        self.video_arr = video(8, 1)
        self.short_arr = video(4, 2)
        self.const_arr = np.full((10, H, W, 3), 128, np.uint8)
        self.checkpoint = str(scratch / "model.safetensors")
        self.model_obj.save(self.checkpoint)
        self.weights_file = str(scratch / "weights.safetensors")
        self.model_obj.save(self.weights_file, weights_only=True)
        self.resume_file = str(scratch / "train.safetensors")
        t = self.new_model()
        t.fit([video(6, 3), video(6, 4)], epochs=1, batch_size=2, progress=False, checkpoint_every=1,
              checkpoint_path=self.resume_file, remember=False)
        t.close()
        self.keep = []
        self.sentinel = self.make_sentinel()

    def new_model(self, memory=False, calibrated=False, preset="tiny"):
        m = self.infp.Model(preset, seed=0, threads=1)
        if memory:
            m.remember([video(8, 5), video(8, 6)])
        if calibrated:
            m.calibrate([video(10, 7)], false_alarm_rate=0.05)
        return m

    def new_stream(self, model_handle):
        p = self.lib.infp_stream_default_params()
        p.n_threads = 1
        out = c_void_p()
        self.infp._lib.check(self.lib.infp_stream_create(model_handle, byref(p), byref(out)))
        return out

    def make_sentinel(self):
        """A failure whose message no case produces, to tell a fresh message from a stale one."""
        self._sentinel_n = getattr(self, "_sentinel_n", 0) + 1
        path = f"/nonexistent-sentinel-{os.getpid()}-{self._sentinel_n}/x.safetensors".encode()
        self.lib.infp_model_load(path, 1, byref(c_void_p()))
        return self.last_error()

    def last_error(self):
        p = self.lib.infp_last_error()
        return None if p is None else p.decode("utf-8", "replace")

    def c_video(self, arr=None, frames=None, height=None, width=None, pixels=None):
        a = self.video_arr if arr is None else arr
        v = self._lib.Video(a.ctypes.data_as(U8P) if pixels is None else (None if pixels is NULL else pixels),
                            a.shape[0] if frames is None else frames, a.shape[1] if height is None else height,
                            a.shape[2] if width is None else width)
        self.keep.append(a)
        return v

    def videos(self, *arrays, **kw):
        arr = (self._lib.Video * max(1, len(arrays)))(*[self.c_video(a, **kw) for a in arrays])
        return arr


def video(n, seed, h=H, w=W):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    frames = []
    for f in range(n):
        base = 128 + 70 * np.sin((x + 2 * f + seed) / 5.0)[..., None] * np.cos((y - f) / 7.0)[..., None]
        frames.append(np.clip(np.round(base + np.array([0, 25, -25]) + rng.normal(0, 6, (h, w, 3))), 0, 255).astype(np.uint8))
    return np.stack(frames)


def handle_variants(fn, call, kind, valid_ok=True, extra_expect_valid=None):
    """NULL, freed, foreign, wrong-kind and valid handles for `call(ctx, handle)`."""
    add(fn, "handle NULL", lambda c: call(c, c_void_p()), "fail")  # c_void_p(): NULL, but not None (= the default)
    add(fn, "handle freed", lambda c: call(c, c.freed_model if kind == "model" else c.freed_stream), "fail")
    add(fn, "handle foreign pointer", lambda c: call(c, c.garbage), "fail")
    add(fn, "handle of the other kind", lambda c: call(c, c.stream if kind == "model" else c.model), "fail")
    if valid_ok:
        add(fn, "valid", lambda c: call(c, c.model if kind == "model" else c.stream), extra_expect_valid or "ok")


# ---- status, version, logging, default params ----------------------------------------------------

def _string_result(p, what):
    if p is None:
        return None, [f"{what} returned NULL"]
    return None, []


add("infp_last_error", "call", lambda c: _string_result(c.lib.infp_last_error(), "infp_last_error"))
add("infp_version", "call", lambda c: (None, [] if re.fullmatch(rb"\d+\.\d+\.\d+", c.lib.infp_version() or b"")
                                             else [f"version {c.lib.infp_version()!r}"]))
for _v in [-100, -8, -7, -6, -1, 0, 1, 2, 7, I32_MAX, I32_MIN]:
    add("infp_status_name", f"status {_v}", lambda c, v=_v: _string_result(c.lib.infp_status_name(v), "infp_status_name"))


def _log_callback_cases():
    def with_callback(c, fn, trigger=True):
        calls = []

        def cb(level, message, user):
            calls.append((level, message))
            fn(c)
        c_cb = c._lib.LogFn(cb)
        c.lib.infp_set_log_callback(c_cb, c.garbage)
        if trigger:  # an uncalibrated model's stream logs a warning
            m = c.new_model()
            s = c.new_stream(m._h)
            c.lib.infp_stream_free(s)
            m.close()
            c.lib.infp_conv2d(None, None, None, None, None, None, None, None)  # a debug-level failure
        c.lib.infp_set_log_callback(c._lib.LogFn(), None)
        c.keep.append(c_cb)
        return None, [] if calls or not trigger else ["no log message reached the callback"]

    add("infp_set_log_callback", "NULL restores the default", lambda c: c.lib.infp_set_log_callback(c._lib.LogFn(), None))
    add("infp_set_log_callback", "callback receives messages", lambda c: with_callback(c, lambda c: None))
    add("infp_set_log_callback", "callback resets the callback inside", lambda c: with_callback(
        c, lambda c: c.lib.infp_set_log_callback(c._lib.LogFn(), None)))

    def raising(c):
        raise RuntimeError("callback raises")
    add("infp_set_log_callback", "callback raises a Python exception", lambda c: with_callback(c, raising))
    add("infp_set_log_callback", "callback calls the library", lambda c: with_callback(
        c, lambda c: c.lib.infp_rfft2(None, 2, i64s([2, 2]), 0, 1, 0, None, 0)))


_log_callback_cases()


def _default_params_case(fn, struct_name):
    def run(c):
        p = getattr(c.lib, fn)()
        st = getattr(c._lib, struct_name)
        return None, [] if p.size == ctypes.sizeof(st) else [f"{fn}().size is {p.size}, sizeof is {ctypes.sizeof(st)}"]
    add(fn, "call", run)


for _fn, _st in [("infp_conv2d_default_params", "Conv2dParams"), ("infp_model_default_params", "ModelParams"),
                 ("infp_fit_default_params", "FitParams"), ("infp_score_default_params", "ScoreParams"),
                 ("infp_stream_default_params", "StreamParams")]:
    _default_params_case(_fn, _st)


# ---- single operations ------------------------------------------------------------------------------

def conv_out(x_shape, w_shape, stride=1, padding=0, dilation=1):
    n, _, h, w = x_shape
    k, _, r, s = w_shape
    ho = (h + 2 * padding - dilation * (r - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (s - 1) - 1) // stride + 1
    return [n, k, ho, wo]


def conv_params(c, size=None, **fields):
    p = c.lib.infp_conv2d_default_params()
    for k, v in fields.items():
        setattr(p, k, v)
    raw = struct_bytes(p, ctypes.sizeof(p) if size is None else size)
    c.keep.append(raw)
    return ctypes.cast(raw, POINTER(c._lib.Conv2dParams))


def call_conv(c, x_shape=(1, 2, 5, 5), w_shape=(3, 2, 3, 3), y_shape=None, x=None, w=None, bias=None, y=None,
              params=None, backward=False, dy=None, dx=None, dw=None, dbias=None, shapes_null=(), **fields):
    pk = {k: fields[k] for k in ("stride", "padding", "dilation") if k in fields}
    if y_shape is None:
        try:
            y_shape = conv_out(x_shape, w_shape, **pk)
        except (TypeError, ValueError, ZeroDivisionError):
            y_shape = [1, 1, 1, 1]
    xs, ws, ys = i64s(x_shape), i64s(w_shape), i64s(y_shape)
    bx = Buf(prod(x_shape) if positive(x_shape) else 0, fill=0.5)
    bw = Buf(prod(w_shape) if positive(w_shape) else 0, fill=0.25)
    by = Buf(prod(y_shape) if positive(y_shape) else 0, out=not backward, fill=1.0)
    bb = Buf(w_shape[0] if positive(w_shape[:1]) else 0, out=backward)
    if params is None:
        params = conv_params(c, **fields)
    params = None if params is NULL else params
    shape_args = {"x": None if "x" in shapes_null else xs, "w": None if "w" in shapes_null else ws,
                  "y": None if "y" in shapes_null else ys}
    if not backward:
        return c.lib.infp_conv2d(arg(x, bx.ptr), shape_args["x"], arg(w, bw.ptr), shape_args["w"], arg(bias, bb.ptr),
                                 params, arg(y, by.ptr), shape_args["y"])
    bdx = Buf(prod(x_shape) if positive(x_shape) else 0, out=True)
    bdw = Buf(prod(w_shape) if positive(w_shape) else 0, out=True)
    return c.lib.infp_conv2d_backward(arg(x, bx.ptr), shape_args["x"], arg(w, bw.ptr), shape_args["w"], params,
                                      arg(dy, by.ptr), shape_args["y"], arg(dx, bdx.ptr), arg(dw, bdw.ptr), arg(dbias, bb.ptr))


def _conv_cases():
    for fn, bw in (("infp_conv2d", False), ("infp_conv2d_backward", True)):
        def V(name, expect=None, timeout=None, headroom=None, fn=fn, bw=bw, **kw):
            add(fn, name, lambda c, kw=kw, bw=bw: call_conv(c, backward=bw, **kw), expect, timeout, headroom)
        V("valid", "ok")
        ptrs = ["x", "w", "dy" if bw else "y"] if bw else ["x", "w", "y"]
        for p in ptrs:
            V(f"{p} NULL", "fail", **{p: NULL})
        for p in ("x", "w", "y"):
            V(f"{p}_shape NULL", "fail", shapes_null=(p,))
        if bw:
            V("dx, dw, dbias NULL", "ok", dx=NULL, dw=NULL, dbias=NULL)
        else:
            V("bias NULL", "ok", bias=NULL)
        V("params NULL", None, params=NULL)
        for i in range(4):
            for d in (0, -1, I64_MIN, 2 ** 40, 2 ** 62, I64_MAX):
                xs = [1, 2, 5, 5]
                xs[i] = d
                V(f"x_shape[{i}] = {d}", "fail", x_shape=xs, y_shape=[1, 3, 3, 3])
                ws = [3, 2, 3, 3]
                ws[i] = d
                V(f"w_shape[{i}] = {d}", "fail", w_shape=ws, y_shape=[1, 3, 3, 3])
                ys = [1, 3, 3, 3]
                ys[i] = d
                V(f"y_shape[{i}] = {d}", "fail", y_shape=ys)
        V("channels differ", "fail", w_shape=[3, 4, 3, 3], y_shape=[1, 3, 3, 3])
        V("y_shape one too large", "fail", y_shape=[1, 3, 4, 3])
        V("y_shape batch differs", "fail", y_shape=[2, 3, 3, 3])
        V("kernel larger than the input", "fail", w_shape=[3, 2, 7, 7], y_shape=[1, 3, 1, 1])
        for field, values in (("stride", [0, -1, I32_MIN, I32_MAX]), ("padding", [-1, I32_MIN, I32_MAX]),
                              ("dilation", [0, -1, I32_MIN, I32_MAX]), ("n_threads", [-1, I32_MIN, I32_MAX, 1024, 1025])):
            for v in values:
                V(f"params.{field} = {v}", "fail" if v < 0 else None, **{field: v})
        # im2col of 2^40 floats and more, with honest buffers
        V("im2col 2^40: 1x1 input, padding 2^19 (4 TiB output)", "fail", 30, headroom=1024,
          x_shape=[1, 1, 1, 1], w_shape=[1, 1, 1, 1], padding=2 ** 19)
        V("im2col 2^41: 2^15 channels, 32x32 kernel, 256x256", "fail", 30, headroom=1024,
          x_shape=[1, 2 ** 15, 256, 256], w_shape=[1, 2 ** 15, 32, 32], padding=16)
        V("im2col 2^38: 4096 channels, 64x64 kernel", "fail", 30, headroom=1024,
          x_shape=[1, 4096, 64, 64], w_shape=[2, 4096, 64, 64], padding=32)
        for size in sizes_for(_lib_struct("Conv2dParams")):
            add(fn, f"params.size = {size}", lambda c, s=size, bw=bw: call_conv(c, backward=bw, params=conv_params(c, size=s)),
                size_expect(_lib_struct("Conv2dParams"), size))


def _lib_struct(name):
    from infp import _lib
    return getattr(_lib, name)


def call_fft(c, fn, ndim=3, shape=(2, 4, 6), axis0=1, axis1=2, norm=0, count=None, x=None, y=None, shape_ptr=None, n1=None):
    """rfft2 / rfft2_backward (shape = real shape) and irfft2 / irfft2_backward (shape = complex
    shape without the trailing 2, n1 the real length)."""
    shape = list(shape)
    if shape_ptr is None:
        if len(shape) >= ndim or ndim < 0:
            shape_ptr = i64s(shape)
        elif ndim > 64:  # an honest array of ndim dimensions: the first ones given, zeros after
            vb = fs.VirtualBuffer(8 * ndim, writable=True)
            c.keep.append(vb)
            shape_ptr = vb.ptr(c_int64)
            for i, d in enumerate(shape):
                shape_ptr[i] = d
        else:  # an honest array of ndim dimensions
            shape_ptr = i64s(shape + [1] * (ndim - len(shape)))
    shape_ptr = None if shape_ptr is NULL else shape_ptr
    ok_axes = 0 <= axis0 < axis1 < len(shape)
    if fn in ("infp_rfft2", "infp_rfft2_backward"):
        real = shape
        cplx = list(shape)
        if ok_axes:
            cplx[axis1] = shape[axis1] // 2 + 1
        cplx = cplx + [2]
    else:
        cplx = shape + [2]
        real = list(shape)
        if ok_axes:
            real[axis1] = n1 if n1 is not None else 2 * (shape[axis1] - 1)
    n_real = prod(real) if positive(real) else 0
    n_cplx = prod(cplx) if positive(cplx) else 0
    if n1 is None:
        n1 = real[axis1] if ok_axes else 1
    if fn == "infp_rfft2":
        bx, by = Buf(n_real, fill=1.0), Buf(n_cplx, out=True)
        return c.lib.infp_rfft2(arg(x, bx.ptr), ndim, shape_ptr, axis0, axis1, norm, arg(y, by.ptr),
                                n_cplx if count is None else count)
    if fn == "infp_rfft2_backward":
        bdy, bdx = Buf(n_cplx, fill=1.0), Buf(n_real, out=True)
        return c.lib.infp_rfft2_backward(ndim, shape_ptr, axis0, axis1, norm, arg(x, bdy.ptr),
                                         n_cplx if count is None else count, arg(y, bdx.ptr))
    if fn == "infp_irfft2":
        bz, by = Buf(n_cplx, fill=1.0), Buf(n_real, out=True)
        return c.lib.infp_irfft2(arg(x, bz.ptr), ndim, shape_ptr, axis0, axis1, n1, norm, arg(y, by.ptr),
                                 n_real if count is None else count)
    bdy, bdz = Buf(n_real, fill=1.0), Buf(n_cplx, out=True)
    return c.lib.infp_irfft2_backward(ndim, shape_ptr, axis0, axis1, n1, norm, arg(x, bdy.ptr),
                                      n_real if count is None else count, arg(y, bdz.ptr))


def fft_grid(c, fn, seed, n=150):
    """Many small odd shapes, axes and misaligned buffers in one case."""
    import random
    rng = random.Random(seed)
    problems = []
    for _ in range(n):
        nd = rng.randint(2, 6)
        shape = [rng.choice([1, 1, 2, 3, 5, 7, 8, 16, 17, 31, 64, 127]) for _ in range(nd)]
        a0 = rng.randrange(nd - 1)
        a1 = rng.randrange(a0 + 1, nd)
        if prod(shape) > 500_000:
            continue
        if fn.startswith("infp_irfft2"):
            n1 = shape[a1]
            shape[a1] = n1 // 2 + 1
        else:
            n1 = None
        big = Buf(prod(shape) * 2 + 64, out=True, fill=0.5)
        big2 = Buf(prod(shape) * 4 + 64, out=True)
        off_x, off_y = rng.choice([0, 0, 1, 2, 3]), rng.choice([0, 1, 2])
        xp = ctypes.cast(c_void_p(big.address + 4 * off_x), F32P)
        yp = ctypes.cast(c_void_p(big2.address + 4 * off_y), F32P)
        status = call_fft(c, fn, nd, shape, a0, a1, rng.choice([0, 1]), None, xp, yp, None, n1)
        if status != 0:
            problems.append(f"{fn}{tuple(shape)} axes ({a0}, {a1}) offsets ({off_x}, {off_y}): status {status} "
                            f"{c.last_error()[:200]}")
    return 0, problems[:5]


def _fft_cases():
    for fn in ("infp_rfft2", "infp_rfft2_backward", "infp_irfft2", "infp_irfft2_backward"):
        inverse = fn.startswith("infp_irfft2")
        base_shape = [2, 4, 4] if inverse else [2, 4, 6]

        def V(name, expect=None, timeout=None, fn=fn, **kw):
            kw.setdefault("shape", base_shape)
            add(fn, name, lambda c, kw=kw: call_fft(c, fn, **kw), expect, timeout)
        V("valid", "ok")
        V("input NULL", "fail", x=NULL)
        V("output NULL", "fail", y=NULL)
        V("shape NULL", "fail", shape_ptr=NULL)
        for nd in (0, 1, -1, 17, 64, I32_MAX, I32_MIN):
            V(f"ndim = {nd}", "fail", ndim=nd, axis0=0, axis1=1)
        for a0, a1 in ((0, 0), (2, 1), (-1, 1), (0, 3), (1, I32_MAX), (I32_MIN, 1), (2, 2)):
            V(f"axes ({a0}, {a1})", "fail", axis0=a0, axis1=a1)
        for norm in (2, -1, I32_MAX, I32_MIN):
            V(f"norm = {norm}", "fail", norm=norm)
        for cnt in (0, -1, I64_MIN, I64_MAX, 2 ** 62, "minus one", "plus one"):
            if isinstance(cnt, str):
                add(fn, f"count {cnt}", lambda c, fn=fn, d=(-1 if cnt == "minus one" else 1): _fft_count_off(c, fn, d, base_shape), "fail")
            else:
                V(f"count = {cnt}", "fail", count=cnt)
        for i in range(3):
            for d in (0, -1, I64_MIN, 2 ** 31, 2 ** 40, I64_MAX):
                s = list(base_shape)
                s[i] = d
                V(f"shape[{i}] = {d}", "fail", shape=s)
        V("2^31 floats (over the FFT limit)", "fail", 30, ndim=2, shape=[2, 2 ** 30], axis0=0, axis1=1)
        V("2^31 - 1 real floats, honest buffers", None, 60, ndim=2, shape=[1, 2 ** 31 - 1] if not inverse else [1, 2 ** 30],
          axis0=0, axis1=1)
        V("16 dimensions of 2", "ok", ndim=16, shape=[2] * 16, axis0=14, axis1=15)
        V("16 dimensions, transform over the first two", "ok", ndim=16, shape=[2] * 16, axis0=0, axis1=1)
        V("1 x 1", "ok", ndim=2, shape=[1, 1], axis0=0, axis1=1, **({"n1": 1} if inverse else {}))
        if inverse:
            for n1 in (0, -1, I64_MIN, 2 ** 62, 5, 7, 9):
                V(f"n1 = {n1}", "fail" if n1 not in (7,) else None, n1=n1)
        for seed in range(3):
            add(fn, f"grid of odd shapes #{seed}", lambda c, fn=fn, s=seed: fft_grid(c, fn, s), "ok", 60)


def _fft_count_off(c, fn, delta, shape):
    real, cplx = list(shape), list(shape)
    if fn.startswith("infp_irfft2"):
        real[2] = 2 * (shape[2] - 1)
        n = prod(real) if fn == "infp_irfft2" else prod(real)
    else:
        cplx[2] = shape[2] // 2 + 1
        n = prod(cplx) * 2
    return call_fft(c, fn, shape=shape, count=n + delta)


# ---- models ---------------------------------------------------------------------------------------

def model_params(c, size=None, preset=b"tiny", config=None, seed=0, n_threads=1):
    p = c.lib.infp_model_default_params()
    p.preset = preset
    p.config_json = config
    p.seed = seed
    p.n_threads = n_threads
    raw = struct_bytes(p, ctypes.sizeof(p) if size is None else size)
    c.keep.append((raw, preset, config))
    return ctypes.cast(raw, POINTER(c._lib.ModelParams))


def call_create(c, params=None, out=True, **kw):
    h = c_void_p()
    p = model_params(c, **kw) if params is None else (None if params is NULL else params)
    status = c.lib.infp_model_create(p, byref(h) if out else None)
    if h.value:
        c.lib.infp_model_free(h)
    return status


def _model_cases():
    fn = "infp_model_create"
    add(fn, "valid", lambda c: call_create(c), "ok")
    add(fn, "params NULL", lambda c: call_create(c, params=NULL))
    add(fn, "out NULL", lambda c: call_create(c, out=False), "fail")
    add(fn, "preset NULL (small)", lambda c: call_create(c, preset=None), "ok", 30)
    for preset in (b"", b"bogus", b"\xff\xfe", b"tiny ", b"TINY", b"x" * 100_000):
        add(fn, f"preset {preset[:12]!r}", lambda c, p=preset: call_create(c, preset=p), "fail")
    configs = [b"{", b"", b"[]", b"null", b"5", b'"x"', b'{"height": 1e300}', b'{"height": -8}', b'{"height": 32.5}',
               b'{"height": "32"}', b'{"width_div": 0}', b'{"width_div": 3}', b'{"blocks": [1, 1, 1]}', b'{"loss_alpha": NaN}',
               b'{"loss_alpha": 1e999}', b'{"loss_alpha": -1}', b'{"filter_mode": "bogus"}', b'{"foo": 1}',
               b'{"height": 32, "height": 64}', b'{"fusion": "yes"}', b"[" * 1_000_000, b'{"a":' * 200_000,
               b'{"filter_mode": "\xff"}', b'{"height": 18446744073709551616}', b'{"height": 9223372036854775807}',
               b'{"height": -9223372036854775808}', b'{"blocks": [9223372036854775807, 1, 1, 1, 1, 1]}',
               b'{"filter_bases": 1000000000}', b'{"fusion_tsm_div": 0}', b'{"x": "' + b"y" * 5_000_000 + b'"}']
    for cfg in configs:
        expect = None if cfg in (b'{"foo": 1}', b'{"height": 32, "height": 64}') else "fail"
        add(fn, f"config_json {cfg[:40]!r}", lambda c, cfg=cfg: call_create(c, config=cfg), expect, 30)
    add(fn, "config names a huge model (width_div 1, blocks 64)", lambda c: call_create(
        c, config=b'{"width_div": 1, "blocks": [64, 64, 64, 64, 64, 64]}'), None, 60)
    add(fn, "config names a huge model (4096 x 4096, width_div 1, blocks 64)", lambda c: call_create(
        c, config=b'{"height": 4096, "width": 4096, "width_div": 1, "blocks": [64, 64, 64, 64, 64, 64]}'), None, 60)
    for seed in (2 ** 64 - 1, 2 ** 63):
        add(fn, f"seed {seed}", lambda c, s=seed: call_create(c, seed=s), "ok")
    for n in (-1, I32_MIN, I32_MAX, 1025):
        add(fn, f"n_threads {n}", lambda c, n=n: call_create(c, n_threads=n), "fail" if n < 0 else None)
    st = _lib_struct("ModelParams")
    for size in sizes_for(st):
        add(fn, f"params.size = {size}", lambda c, s=size: call_create(c, size=s), size_expect(st, size), 30)

    fn = "infp_model_load"

    def load(c, path=None, threads=1, out=True):
        h = c_void_p()
        status = c.lib.infp_model_load(c.checkpoint.encode() if path is None else (None if path is NULL else path), threads,
                                       byref(h) if out else None)
        if h.value:
            c.lib.infp_model_free(h)
        return status
    add(fn, "valid", lambda c: load(c), "ok")
    add(fn, "path NULL", lambda c: load(c, NULL), "fail")
    add(fn, "out NULL", lambda c: load(c, out=False), "fail")
    for name, path in (("empty", b""), ("missing", b"/nonexistent/x.safetensors"), ("folder", b"/tmp"),
                       ("invalid UTF-8", b"/tmp/\xff\xfe-missing"), ("100k long", b"/tmp/" + b"a" * 100_000),
                       ("relative", b"no-such-file"), ("dev zero", b"/dev/zero")):
        add(fn, f"path {name}", lambda c, p=path: load(c, p), "fail")
    for n in (-1, I32_MIN, I32_MAX):
        add(fn, f"n_threads {n}", lambda c, n=n: load(c, threads=n), "fail" if n < 0 else None)

    for fn in ("infp_model_save", "infp_model_save_weights"):
        def save(c, h, path=None, fn=fn):
            return getattr(c.lib, fn)(h, str(c.scratch / "saved.safetensors").encode() if path is None else
                                      (None if path is NULL else path))
        handle_variants(fn, save, "model")
        add(fn, "path NULL", lambda c, save=save: save(c, c.model, NULL), "fail")
        # (Never a device such as /dev/null: as root, an atomic save would rename a file over it.)
        for name, path in (("empty", b""), ("missing folder", b"/nonexistent/dir/x.safetensors"), ("folder", b"/tmp"),
                           ("read-only file system", b"/proc/version"), ("100k long", b"/tmp/" + b"a" * 100_000)):
            add(fn, f"path {name}", lambda c, p=path, save=save: save(c, c.model, p), "fail")
        add(fn, "path not UTF-8", lambda c, save=save: save(c, c.model, str(c.scratch).encode() + b"/\xff\xfe.safetensors"), "ok")

    fn = "infp_model_free"
    add(fn, "NULL", lambda c: c.lib.infp_model_free(None))
    add(fn, "freed (double free)", lambda c: c.lib.infp_model_free(c.freed_model))
    add(fn, "foreign pointer", lambda c: c.lib.infp_model_free(c.garbage))

    def free_stream_as_model(c):
        s = c.new_stream(c.model)
        c.lib.infp_model_free(s)
        r = (c._lib.StreamResult)()
        r.size = ctypes.sizeof(r)
        frame = np.zeros((H, W, 3), np.uint8)
        status = c.lib.infp_stream_push(s, frame.ctypes.data_as(U8P), H, W, 3, 0, byref(r), None, 0)
        c.lib.infp_stream_free(s)
        return status
    add(fn, "a stream handle, then the stream is used", free_stream_as_model)

    def free_then_use(c):
        m = c.new_model()
        h = c_void_p(m._h.value)
        m.close()
        n = c_int64()
        return c.lib.infp_model_num_parameters(h, byref(n))
    add(fn, "then the freed handle is used", free_then_use, "fail")

    fn = "infp_model_set_threads"
    handle_variants(fn, lambda c, h: c.lib.infp_model_set_threads(h, 1), "model")
    for n in (-1, I32_MIN, I32_MAX, 0, 1025):
        add(fn, f"n_threads {n}", lambda c, n=n: _set_threads(c, n), "fail" if n < 0 else None)

    fn = "infp_model_num_parameters"
    handle_variants(fn, lambda c, h: c.lib.infp_model_num_parameters(h, byref(c_int64())), "model")
    add(fn, "out NULL", lambda c: c.lib.infp_model_num_parameters(c.model, None), "fail")

    fn = "infp_model_config_json"
    handle_variants(fn, lambda c, h: c.lib.infp_model_config_json(h, None, 0, byref(c_size_t())), "model")
    add(fn, "buf NULL, size 0, needed NULL", lambda c: c.lib.infp_model_config_json(c.model, None, 0, None))
    add(fn, "buf NULL with buf_size 100", lambda c: c.lib.infp_model_config_json(c.model, None, 100, byref(c_size_t())), "fail")
    for size in (1, 2, 16, "needed - 1", "needed", "needed + 1"):
        add(fn, f"buf_size {size}, guarded", lambda c, s=size: _config_json_canary(c, s))
    add(fn, "buf_size SIZE_MAX with a small buffer", lambda c: c.lib.infp_model_config_json(
        c.model, ctypes.create_string_buffer(4), 2 ** 64 - 1, byref(c_size_t())), "fail")


def _set_threads(c, n):
    m = c.new_model()
    try:
        return c.lib.infp_model_set_threads(m._h, n)
    finally:
        m.close()


def _config_json_canary(c, size):
    needed = c_size_t()
    c.lib.infp_model_config_json(c.model, None, 0, byref(needed))
    n = {"needed - 1": needed.value - 1, "needed": needed.value, "needed + 1": needed.value + 1}.get(size, size)
    buf = (c_uint8 * (n + 64))(*([0xA5] * (n + 64)))
    status = c.lib.infp_model_config_json(c.model, ctypes.cast(buf, c_char_p), n, byref(needed))
    problems = []
    if any(buf[i] != 0xA5 for i in range(n, n + 64)):
        problems.append(f"wrote past buf_size {n}")
    if status == 0 and (n == 0 or buf[:n].count(0) == 0 if n else False):
        problems.append("no NUL terminator within buf_size")
    if status == 0 and n < needed.value:
        problems.append(f"returned OK with buf_size {n} < needed {needed.value} (truncated silently?)")
    return status, problems


def clip_buffers(shape, fill=0.0):
    x = Buf(prod(shape) if positive(shape) else 0, fill=fill)
    return x


def call_predict(c, h=None, clips_shape=(2, 4, 3, H, W), frames_shape=None, clips=None, frames=None, fill=0.0,
                 shapes_null=()):
    cs = list(clips_shape)
    fs_ = list(frames_shape) if frames_shape is not None else ([cs[0], 3, H, W] if len(cs) >= 1 else [1, 3, H, W])
    bx = clip_buffers(cs, fill)
    by = Buf(prod(fs_) if positive(fs_) else 0, out=True)
    return c.lib.infp_model_predict(c.model if h is None else h, arg(clips, bx.ptr), None if "c" in shapes_null else i64s(cs),
                                    arg(frames, by.ptr), None if "f" in shapes_null else i64s(fs_))


def _predict_nan_last(c, batch):
    shape = [batch, 4, 3, H, W]
    per = 4 * 3 * H * W
    vb = fs.VirtualBuffer(4 * batch * per, writable=True)  # shared: writing the last clip costs little
    c.keep.append(vb)
    last = ctypes.cast(c_void_p(vb.address + 4 * (batch - 1) * per), F32P)
    for i in range(per):
        last[i] = NAN
    out = fs.VirtualBuffer(4 * batch * 3 * H * W, writable=True)
    c.keep.append(out)
    return c.lib.infp_model_predict(c.model, vb.ptr(c_float), i64s(shape), out.ptr(c_float), i64s([batch, 3, H, W]))


def _shape_variants(fn, call, base, label="clips_shape", key="clips_shape", skip=()):
    for i in range(len(base)):
        if i in skip:
            continue
        for d in (0, -1, I64_MIN, 2 ** 40, I64_MAX):
            s = list(base)
            s[i] = d
            add(fn, f"{label}[{i}] = {d}", lambda c, s=s: call(c, **{key: s}), "fail")
        if i > 0:
            s = list(base)
            s[i] = base[i] + 1
            add(fn, f"{label}[{i}] one too large", lambda c, s=s: call(c, **{key: s}), "fail")


def _predict_cases():
    fn = "infp_model_predict"
    handle_variants(fn, lambda c, h: call_predict(c, h), "model")
    add(fn, "clips NULL", lambda c: call_predict(c, clips=NULL), "fail")
    add(fn, "frames NULL", lambda c: call_predict(c, frames=NULL), "fail")
    add(fn, "clips_shape NULL", lambda c: call_predict(c, shapes_null=("c",)), "fail")
    add(fn, "frames_shape NULL", lambda c: call_predict(c, shapes_null=("f",)), "fail")
    _shape_variants(fn, call_predict, [2, 4, 3, H, W])
    add(fn, "frames_shape batch differs", lambda c: call_predict(c, frames_shape=[3, 3, H, W]), "fail")
    add(fn, "frames_shape size differs", lambda c: call_predict(c, frames_shape=[2, 3, H, W + 8]), "fail")
    add(fn, "NaN clips", lambda c: call_predict(c, fill=NAN))
    add(fn, "infinite clips", lambda c: call_predict(c, fill=INF))
    add(fn, "4096 clips, the last one NaN, 256 MB to spare", lambda c: _predict_nan_last(c, 4096), "fail", 20, 256)
    add(fn, "1024 clips with 256 MB to spare", lambda c: call_predict(c, clips_shape=[1024, 4, 3, H, W]), None, 30, 256)
    add(fn, "2^20 clips (honest buffers), 512 MB to spare", lambda c: call_predict(c, clips_shape=[2 ** 20, 4, 3, H, W]),
        None, 3, 512, timeout_ok=True)

    fn = "infp_model_tensor_count"
    handle_variants(fn, lambda c, h: c.lib.infp_model_tensor_count(h, byref(c_int64())), "model")
    add(fn, "out NULL", lambda c: c.lib.infp_model_tensor_count(c.model, None), "fail")

    fn = "infp_model_tensor_info"

    def info(c, h=None, index=0, name=True, name_size=256, rank=True, shape=True, kind=True):
        nb = ctypes.create_string_buffer(max(1, name_size if isinstance(name_size, int) and 0 < name_size < 1 << 20 else 1))
        return c.lib.infp_model_tensor_info(c.model if h is None else h, index, nb if name else None, name_size,
                                            byref(c_int32()) if rank else None, (c_int64 * 8)() if shape else None,
                                            byref(c_int()) if kind else None)
    handle_variants(fn, lambda c, h: info(c, h), "model")
    for idx in (-1, I64_MIN, I64_MAX, 2 ** 32, "count"):
        add(fn, f"index {idx}", lambda c, i=idx: info(c, index=_count(c) if i == "count" else i), "fail")
    add(fn, "every output NULL", lambda c: info(c, name=False, rank=False, shape=False, kind=False))
    add(fn, "name NULL with name_size 256", lambda c: info(c, name=False))
    for size in (0, 1, 2, 5):
        add(fn, f"name_size {size}, guarded", lambda c, s=size: _tensor_name_canary(c, s))

    for fn in ("infp_model_tensor_get", "infp_model_tensor_set", "infp_model_grad_get"):
        def tget(c, h=None, name=b"wrn38.mod1.conv1.weight", count=None, buf=None, fn=fn, fill=0.5, fresh=True):
            n = 2 * 3 * 3 * 3
            cnt = n if count is None else count
            b = Buf(cnt if isinstance(cnt, int) and 0 < cnt < (1 << 24) else n, fill=fill)
            if h is None:
                if fresh and fn != "infp_model_tensor_get":
                    m = c.new_model()
                    c.keep.append(m)
                    h = m._h
                else:
                    h = c.model
            return getattr(c.lib, fn)(h, None if name is NULL else name, arg(buf, b.ptr), cnt)
        handle_variants(fn, lambda c, h, tget=tget: tget(c, h), "model")
        add(fn, "name NULL", lambda c, tget=tget: tget(c, name=NULL), "fail")
        add(fn, "out NULL", lambda c, tget=tget: tget(c, buf=NULL), "fail")
        for name in (b"", b"nope", b"\xff\xfe", b"a" * 100_000, b"wrn38.mod1.conv1.weigh", b"memory.features",
                     b"optim.step", b"wrn38.mod2.block1.bn1.0.num_batches_tracked"):
            expect = None if name.endswith(b"num_batches_tracked") else "fail"
            add(fn, f"name {name[:30]!r}", lambda c, n=name, tget=tget: tget(c, name=n), expect)
        for cnt in (0, -1, 53, 55, I64_MIN, I64_MAX, 2 ** 40):
            add(fn, f"count {cnt} (tensor has 54)", lambda c, k=cnt, tget=tget: tget(c, count=k), "fail")
        if fn == "infp_model_tensor_set":
            add(fn, "NaN values", lambda c, tget=tget: tget(c, fill=NAN))
            add(fn, "counter set to -1", lambda c, tget=tget: tget(c, name=b"wrn38.mod2.block1.bn1.0.num_batches_tracked",
                                                                   count=1, fill=-1.0))
            add(fn, "counter set to NaN", lambda c, tget=tget: tget(c, name=b"wrn38.mod2.block1.bn1.0.num_batches_tracked",
                                                                    count=1, fill=NAN))
            add(fn, "counter set to 1e30", lambda c, tget=tget: tget(c, name=b"wrn38.mod2.block1.bn1.0.num_batches_tracked",
                                                                     count=1, fill=1e30))
        if fn == "infp_model_grad_get":
            add(fn, "before any loss_and_grads", lambda c, tget=tget: tget(c), "ok")


def _count(c):
    n = c_int64()
    c.lib.infp_model_tensor_count(c.model, byref(n))
    return n.value


def _tensor_name_canary(c, size):
    buf = (c_uint8 * (size + 64))(*([0xA5] * (size + 64)))
    status = c.lib.infp_model_tensor_info(c.model, 0, ctypes.cast(buf, c_char_p), size, None, None, None)
    problems = []
    if any(buf[i] != 0xA5 for i in range(size, size + 64)):
        problems.append(f"wrote past name_size {size}")
    if status == 0 and size > 0 and 0 not in bytes(buf[:size]):
        problems.append(f"no NUL terminator within name_size {size}")
    return status, problems


def call_lag(c, fn="infp_model_loss_and_grads", h=None, clips_shape=(2, 4, 3, H, W), targets_shape=None, fill=0.0,
             tfill=0.0, clips=None, targets=None, loss=True, lr=2e-4, shapes_null=()):
    cs = list(clips_shape)
    ts = list(targets_shape) if targets_shape is not None else [cs[0], 3, H, W]
    bx = Buf(prod(cs) if positive(cs) else 0, fill=fill)
    bt = Buf(prod(ts) if positive(ts) else 0, fill=tfill)
    if h is None:
        m = c.new_model()
        c.keep.append(m)
        h = m._h
    lv = c_float()
    args = [h, arg(clips, bx.ptr), None if "c" in shapes_null else i64s(cs), arg(targets, bt.ptr),
            None if "t" in shapes_null else i64s(ts)]
    if fn == "infp_model_train_step":
        args.append(lr)
    args.append(byref(lv) if loss else None)
    return getattr(c.lib, fn)(*args)


def _training_step_cases():
    for fn in ("infp_model_loss_and_grads", "infp_model_train_step"):
        def L(c, fn=fn, **kw):
            return call_lag(c, fn, **kw)
        handle_variants(fn, lambda c, h, L=L: L(c, h=h), "model", extra_expect_valid="ok")
        add(fn, "clips NULL", lambda c, L=L: L(c, clips=NULL), "fail")
        add(fn, "targets NULL", lambda c, L=L: L(c, targets=NULL), "fail")
        add(fn, "clips_shape NULL", lambda c, L=L: L(c, shapes_null=("c",)), "fail")
        add(fn, "targets_shape NULL", lambda c, L=L: L(c, shapes_null=("t",)), "fail")
        add(fn, "loss NULL", lambda c, L=L: L(c, loss=False))
        _shape_variants(fn, L, [2, 4, 3, H, W])
        add(fn, "targets batch differs", lambda c, L=L: L(c, targets_shape=[3, 3, H, W]), "fail")
        add(fn, "batch of 1", lambda c, L=L: L(c, clips_shape=[1, 4, 3, H, W]))
        add(fn, "NaN clips", lambda c, L=L: L(c, fill=NAN))
        add(fn, "NaN targets", lambda c, L=L: L(c, tfill=NAN))
        add(fn, "huge targets (1e38)", lambda c, L=L: L(c, tfill=1e38))
        add(fn, "32768 clips (honest buffers), 1 GB to spare", lambda c, L=L: L(c, clips_shape=[32768, 4, 3, H, W]),
            None, 5, 1024, timeout_ok=True)
        if fn == "infp_model_train_step":
            for lr in (NAN, INF, -1.0, -INF, 1e30, 0.0):
                add(fn, f"learning_rate {lr}", lambda c, lr=lr, L=L: L(c, lr=lr), None if lr in (0.0, 1e30) else "fail")


# ---- videos, training and scoring -------------------------------------------------------------------

def fit_params(c, size=None, pointers=True, **fields):
    p = c.lib.infp_fit_default_params()
    p.epochs, p.batch_size = 1, 2
    p.n_milestones = 0
    if pointers:
        path = str(c.scratch / f"fit-ck-{len(c.keep)}.safetensors").encode()
        p.checkpoint_every = 1
        p.checkpoint_path = path
        progress = c._lib.ProgressFn(lambda done, user: True)
        on_step = c._lib.TrainCallback(lambda stats, user: True)
        p.progress, p.on_step, p.user = progress, on_step, c.garbage.value
        c.keep.append((path, progress, on_step))
    for k, v in fields.items():
        if k == "milestones":
            for i, m in enumerate(v):
                p.milestones[i] = m
        else:
            setattr(p, k, v)
    raw = struct_bytes(p, ctypes.sizeof(p) if size is None else size)
    c.keep.append((raw, fields))
    return ctypes.cast(raw, POINTER(c._lib.FitParams))


def call_fit(c, h=None, videos=None, n=None, params=None, **fields):
    if h is None:
        m = c.new_model()
        c.keep.append(m)
        h = m._h
    vids = c.videos(video(6, 11), video(6, 12)) if videos is None else videos
    count = (len(vids) if isinstance(vids, ctypes.Array) else 1) if n is None else n
    p = fit_params(c, **fields) if params is None else (None if params is NULL else params)
    return c.lib.infp_model_fit(h, None if vids is NULL else vids, count, p)


def _video_variants(fn, call, scored=False):
    """Videos: NULL, counts, pixels NULL, bad sizes and frame counts, absurd lengths."""
    add(fn, "videos NULL", lambda c: call(c, videos=NULL), "fail")
    for n in (0, -1, I64_MIN, 1_000_001, I64_MAX):
        add(fn, f"n_videos {n}", lambda c, n=n: call(c, n=n), "fail")
    add(fn, "pixels NULL", lambda c: call(c, videos=c.videos(c.video_arr, pixels=NULL)), "fail")
    for frames in (0, -1, I64_MIN, I64_MAX):
        add(fn, f"frames {frames}", lambda c, f=frames: call(c, videos=c.videos(c.video_arr, frames=f)), "fail")
    for h, w in ((H + 8, W), (H, W - 8), (0, W), (-1, W), (H, -W), (2 ** 40, W), (I64_MAX, I64_MAX)):
        add(fn, f"frame size {h} x {w}", lambda c, h=h, w=w: call(c, videos=c.videos(c.video_arr, height=h, width=w)), "fail")
    add(fn, "videos shorter than 5 frames", lambda c: call(c, videos=c.videos(c.short_arr, c.short_arr)), "fail")

    def huge_video(c):
        frames = 10_000_000
        vb = fs.VirtualBuffer(frames * H * W * 3)
        c.keep.append(vb)
        v = c._lib.Video(vb.ptr(c_uint8), frames, H, W)
        return call(c, videos=(c._lib.Video * 1)(v))
    add(fn, "a 10,000,000-frame video (honest buffer), 1 GB to spare", huge_video, None, 3, 1024, timeout_ok=True)

    def many_videos(c):
        n = 1_000_000
        arr = (c._lib.Video * n)()
        one = c.c_video(video(6, 13))
        for i in range(n):
            arr[i] = one
        c.keep.append(arr)
        return call(c, videos=arr, n=n)
    add(fn, "1,000,000 videos (honest array), 1 GB to spare", many_videos, None, 3, 1024, timeout_ok=True)


def _fit_cases():
    fn = "infp_model_fit"
    handle_variants(fn, lambda c, h: call_fit(c, h=h), "model")
    add(fn, "params NULL", lambda c: call_fit(c, params=NULL))
    _video_variants(fn, call_fit)
    bad = {"epochs": [-1, I32_MIN, I32_MAX], "batch_size": [1, -1, I32_MIN, I32_MAX, 4097],
           "learning_rate": [NAN, INF, -1.0, -INF], "n_milestones": [9, -2, I32_MIN, I32_MAX],
           "gamma": [NAN, INF, -1.0], "checkpoint_every": [-1, I32_MIN], "max_minutes": [NAN, INF, -1.0],
           "schedule": [3, -1, I32_MAX], "warmup": [NAN, -0.5, 2.0, INF], "final_lr_factor": [NAN, -1.0, INF],
           "ema_decay": [1.0, NAN, -0.5, INF], "bn_batches": [-1, I32_MIN, 1_000_001]}
    for field, values in bad.items():
        for v in values:
            add(fn, f"params.{field} = {v}", lambda c, f=field, v=v: call_fit(c, **{f: v}), "fail", 30)
    add(fn, "milestones negative and unsorted", lambda c: call_fit(c, n_milestones=3, milestones=[5, -1, 2]))
    add(fn, "milestones I32 extremes", lambda c: call_fit(c, n_milestones=2, milestones=[I32_MAX, I32_MIN]))
    add(fn, "seed 2^64 - 1", lambda c: call_fit(c, seed=2 ** 64 - 1), "ok")
    add(fn, "checkpoint_path in a missing folder", lambda c: call_fit(c, checkpoint_path=b"/nonexistent/d/x.safetensors"), "fail")
    add(fn, "checkpoint_path empty", lambda c: call_fit(c, checkpoint_path=b""), "fail")
    add(fn, "checkpoint_every 1 without a path", lambda c: call_fit(c, checkpoint_path=None, checkpoint_every=1))
    add(fn, "resume_path missing", lambda c: call_fit(c, resume_path=b"/nonexistent.safetensors"), "fail")
    add(fn, "resume_path a folder", lambda c: call_fit(c, resume_path=b"/tmp"), "fail")
    add(fn, "resume_path a weights-only checkpoint", lambda c: call_fit(c, resume_path=c.weights_file.encode()))
    add(fn, "resume_path a training checkpoint", lambda c: call_fit(c, resume_path=c.resume_file.encode(), epochs=2), "ok")
    add(fn, "resume_path of another config", lambda c: call_fit(c, h=_small_model(c), resume_path=c.resume_file.encode()), "fail", 30)
    add(fn, "progress returns false", lambda c: _fit_cancel(c, "progress"), "fail")
    add(fn, "on_step returns false", lambda c: _fit_cancel(c, "on_step"), "fail")
    add(fn, "on_step raises a Python exception", lambda c: _fit_cancel(c, "raise"), "fail")
    add(fn, "max_minutes tiny", lambda c: call_fit(c, max_minutes=1e-9, epochs=1000), "ok", 30)
    st = _lib_struct("FitParams")
    for size in sizes_for(st):
        add(fn, f"params.size = {size} (pointer fields set)", lambda c, s=size: call_fit(c, params=fit_params(c, size=s)),
            size_expect(st, size), 60)


def _small_model(c):
    m = c.infp.Model("tiny", seed=0, threads=1, width_div=16)
    c.keep.append(m)
    return m._h


def _fit_cancel(c, how):
    p = fit_params(c, pointers=False, epochs=3)
    if how == "progress":
        cb = c._lib.ProgressFn(lambda done, user: False)
        p.contents.progress = cb
    else:
        def step(stats, user):
            if how == "raise":
                raise RuntimeError("callback raises")
            return False
        cb = c._lib.TrainCallback(step)
        p.contents.on_step = cb
    c.keep.append(cb)
    status = call_fit(c, params=p)
    problems = [] if status in (CANCELLED, 0) or how == "raise" else [f"a cancelling callback gave status {status}, not cancelled"]
    return status, problems


def call_score(c, fn, h=None, videos=None, n=None, count=None, out=None, params=None, method=None, **fields):
    """score / predict_video / anomaly_scores on one video."""
    v = c.videos(c.video_arr) if videos is None else videos
    vp = None if v is NULL else (v if isinstance(v, ctypes.Array) else v)
    frames = c.video_arr.shape[0]
    cnt = frames - 4 if count is None else count
    per = 3 * H * W if fn == "infp_model_predict_video" else 1
    b = Buf(cnt * per if isinstance(cnt, int) and 0 < cnt < 1 << 30 else 1, out=True)
    if fn == "infp_model_anomaly_scores":
        if params is None:
            p = c.lib.infp_score_default_params()
            if method is not None:
                p.method = method
            for k, val in fields.items():
                setattr(p, k, val)
            raw = struct_bytes(p, ctypes.sizeof(p))
            c.keep.append(raw)
            params = ctypes.cast(raw, POINTER(c._lib.ScoreParams))
        params = None if params is NULL else params
        return c.lib.infp_model_anomaly_scores(c.model if h is None else h, vp, params, arg(out, b.ptr), cnt)
    return getattr(c.lib, fn)(c.model if h is None else h, vp, arg(out, b.ptr), cnt)


def _scoring_cases():
    for fn in ("infp_model_score", "infp_model_predict_video", "infp_model_anomaly_scores"):
        def S(c, fn=fn, **kw):
            if "n" in kw:  # these take one video: n is not an argument
                kw.pop("n")
            return call_score(c, fn, **kw)
        handle_variants(fn, lambda c, h, S=S: S(c, h=h), "model")
        add(fn, "output NULL", lambda c, S=S: S(c, out=NULL), "fail")
        for cnt in (0, -1, 3, 5, I64_MIN, I64_MAX):
            add(fn, f"count {cnt} (video gives 4)", lambda c, k=cnt, S=S: S(c, count=k), "fail")
        add(fn, "video NULL", lambda c, S=S: S(c, videos=NULL), "fail")
        add(fn, "pixels NULL", lambda c, S=S: S(c, videos=c.videos(c.video_arr, pixels=NULL)), "fail")
        for frames in (0, -1, 4, I64_MIN, I64_MAX):
            add(fn, f"frames {frames}", lambda c, f=frames, S=S: S(c, videos=c.videos(c.video_arr, frames=f),
                                                                     count=(f - 4 if 4 < f < 100 else 4)), "fail")
        for h, w in ((H + 8, W), (0, W), (-1, W), (I64_MAX, I64_MAX)):
            add(fn, f"frame size {h} x {w}", lambda c, h=h, w=w, S=S: S(c, videos=c.videos(c.video_arr, height=h, width=w)), "fail")

        def huge(c, S=S):
            frames = 10_000_000
            vb = fs.VirtualBuffer(frames * H * W * 3)
            c.keep.append(vb)
            v = c._lib.Video(vb.ptr(c_uint8), frames, H, W)
            return S(c, videos=(c._lib.Video * 1)(v), count=frames - 4)
        add(fn, "a 10,000,000-frame video (honest buffers), 1 GB to spare", huge, None, 3, 1024, timeout_ok=True)
        add(fn, "a constant video", lambda c, S=S: S(c, videos=c.videos(np.full((8, H, W, 3), 7, np.uint8))), "ok")
    fn = "infp_model_anomaly_scores"
    add(fn, "params NULL", lambda c, fn=fn: call_score(c, fn, params=NULL), "ok")
    for m in (3, -1, I32_MAX, I32_MIN):
        add(fn, f"method {m}", lambda c, m=m, fn=fn: call_score(c, fn, method=m), "fail")
    for ps in (0, -1, 1, 2, 3, I32_MAX, I32_MIN, 1000):
        add(fn, f"patch_size {ps}", lambda c, ps=ps, fn=fn: call_score(c, fn, method=1, patch_size=ps), "fail" if ps < 0 else None)
    for sm in (0, -1, I32_MAX, I32_MIN, 1000):
        add(fn, f"smoothing {sm}", lambda c, sm=sm, fn=fn: call_score(c, fn, smoothing=sm), "fail" if sm < 0 else None)
    add(fn, "memory score on a model without memory", lambda c, fn=fn: call_score(c, fn, h=_plain(c), method=2), "fail")
    st = _lib_struct("ScoreParams")
    for size in sizes_for(st):
        def sized(c, s=size, fn=fn):
            p = c.lib.infp_score_default_params()
            raw = struct_bytes(p, s)
            c.keep.append(raw)
            return call_score(c, fn, params=ctypes.cast(raw, POINTER(c._lib.ScoreParams)))
        add(fn, f"params.size = {size}", sized, size_expect(st, size))

    fn = "infp_model_remember"

    def remember(c, h=None, videos=None, n=None):
        if h is None:
            h = _plain(c)
        v = c.videos(c.video_arr, video(9, 14)) if videos is None else videos
        count = (len(v) if isinstance(v, ctypes.Array) else 1) if n is None else n
        return c.lib.infp_model_remember(h, None if v is NULL else v, count)
    handle_variants(fn, lambda c, h: remember(c, h=h), "model", extra_expect_valid="ok")
    _video_variants(fn, remember)

    fn = "infp_model_memory_frames"
    handle_variants(fn, lambda c, h: c.lib.infp_model_memory_frames(h, byref(c_int64())), "model")
    add(fn, "out NULL", lambda c: c.lib.infp_model_memory_frames(c.model, None), "fail")


def _plain(c):
    m = c.new_model()
    c.keep.append(m)
    return m._h


# ---- metrics --------------------------------------------------------------------------------------

def call_roc(c, fn, labels=None, scores=None, n=None, auc=True, lab_values=(0, 1, 0, 1, 1, 0), score_values=None,
             capacity=None, fpr=None, n_points=True):
    lv = list(lab_values)
    sv = list(score_values) if score_values is not None else [0.1, 0.9, 0.2, 0.8, 0.7, 0.3][:len(lv)]
    count = len(lv) if n is None else n
    lab = (c_int32 * max(1, len(lv)))(*lv)
    sc = (c_double * max(1, len(sv)))(*sv)
    if fn == "infp_roc_auc":
        return c.lib.infp_roc_auc(arg(labels, lab), arg(scores, sc), count, byref(c_double()) if auc else None)
    cap = len(lv) + 1 if capacity is None else capacity
    k = cap if isinstance(cap, int) and 0 < cap < 1 << 20 else len(lv) + 1
    bufs = [(c_double * k)() for _ in range(3)]
    return c.lib.infp_roc_curve(arg(labels, lab), arg(scores, sc), count, arg(fpr, bufs[0]), bufs[1], bufs[2], cap,
                                byref(c_int64()) if n_points else None)


def call_frame_auc(c, fn, n_videos=2, psnr=None, psnr_counts=None, labels=None, label_counts=None, auc=True,
                   counts=(6, 8), lcounts=None, null_video=None, values=None):
    vids = []
    for i, k in enumerate(counts):
        vals = values if values is not None else [float(30 + (j * 7 + i) % 5) for j in range(max(0, k))]
        vids.append((c_double * max(1, k))(*vals[:max(0, k)]))
    lc = list(lcounts) if lcounts is not None else [k + 4 for k in counts]
    labs = [(c_int32 * max(1, k))(*[(j // 3) % 2 for j in range(max(0, k))]) for k in lc]
    pp = (POINTER(c_double) * max(1, len(vids)))(*[ctypes.cast(v, POINTER(c_double)) for v in vids])
    lp = (POINTER(c_int32) * max(1, len(labs)))(*[ctypes.cast(l, POINTER(c_int32)) for l in labs])
    if null_video is not None:
        (pp if null_video == "psnr" else lp)[0] = None
    pc = (c_int64 * max(1, len(counts)))(*counts)
    lcs = (c_int64 * max(1, len(lc)))(*lc)
    c.keep.append((vids, labs))
    return getattr(c.lib, fn)(arg(psnr, pp), arg(psnr_counts, pc), arg(labels, lp), arg(label_counts, lcs), n_videos,
                              byref(c_double()) if auc else None)


def _metric_cases():
    for fn in ("infp_roc_auc", "infp_roc_curve"):
        def R(c, fn=fn, **kw):
            return call_roc(c, fn, **kw)
        add(fn, "valid", R, "ok")
        add(fn, "labels NULL", lambda c, R=R: R(c, labels=NULL), "fail")
        add(fn, "scores NULL", lambda c, R=R: R(c, scores=NULL), "fail")
        for n in (0, -1, I64_MIN, 1):
            add(fn, f"n {n}", lambda c, n=n, R=R: R(c, n=n), "fail")
        add(fn, "labels not 0/1 (2)", lambda c, R=R: R(c, lab_values=(0, 2, 0, 1, 1, 0)), "fail")
        add(fn, "labels not 0/1 (-1)", lambda c, R=R: R(c, lab_values=(0, -1, 0, 1, 1, 0)), "fail")
        add(fn, "one class only", lambda c, R=R: R(c, lab_values=(1, 1, 1, 1, 1, 1)), "fail")
        add(fn, "NaN scores", lambda c, R=R: R(c, score_values=[NAN, 0.9, 0.2, NAN, 0.7, 0.3]))
        add(fn, "infinite scores", lambda c, R=R: R(c, score_values=[INF, -INF, 0.2, INF, 0.7, -INF]))
        add(fn, "all scores equal", lambda c, R=R: R(c, score_values=[0.5] * 6), "ok")

        def huge(c, fn=fn):
            n = 2 ** 31
            lab, sc = fs.VirtualBuffer(4 * n), fs.VirtualBuffer(8 * n)
            c.keep += [lab, sc]
            if fn == "infp_roc_auc":
                return c.lib.infp_roc_auc(lab.ptr(c_int32), sc.ptr(c_double), n, byref(c_double()))
            outs = [fs.VirtualBuffer(8 * (n + 1), writable=True) for _ in range(3)]
            c.keep += outs
            return c.lib.infp_roc_curve(lab.ptr(c_int32), sc.ptr(c_double), n, *[o.ptr(c_double) for o in outs], n + 1,
                                        byref(c_int64()))
        add(fn, "2^31 scores of one class (honest buffers), 1 GB to spare", huge, "fail", 30, 1024)
        if fn == "infp_roc_auc":
            add(fn, "auc NULL", lambda c: call_roc(c, "infp_roc_auc", auc=False), "fail")
        else:
            for cap in (6, 0, -1, I64_MIN):
                add(fn, f"capacity {cap} (needs 7)", lambda c, cap=cap, fn=fn: call_roc(c, fn, capacity=cap), "fail")
            add(fn, "fpr NULL", lambda c: call_roc(c, "infp_roc_curve", fpr=NULL), "fail")
            add(fn, "n_points NULL", lambda c: call_roc(c, "infp_roc_curve", n_points=False), "fail")
    for fn in ("infp_frame_auc", "infp_macro_auc"):
        def F(c, fn=fn, **kw):
            return call_frame_auc(c, fn, **kw)
        add(fn, "valid", F, "ok")
        add(fn, "labels of frames 4..n-1 only", lambda c, F=F: F(c, lcounts=(6, 8)), "ok")
        for p in ("psnr", "psnr_counts", "labels", "label_counts"):
            add(fn, f"{p} NULL", lambda c, p=p, F=F: F(c, **{p: NULL}), "fail")
        add(fn, "auc NULL", lambda c, F=F: F(c, auc=False), "fail")
        add(fn, "a video's psnr pointer NULL", lambda c, F=F: F(c, null_video="psnr"), "fail")
        add(fn, "a video's labels pointer NULL", lambda c, F=F: F(c, null_video="labels"), "fail")
        for n in (0, -1, I64_MIN):
            add(fn, f"n_videos {n}", lambda c, n=n, F=F: F(c, n_videos=n), "fail")
        add(fn, "label count fits neither rule", lambda c, F=F: F(c, lcounts=(7, 12)), "fail")
        add(fn, "negative counts", lambda c, F=F: F(c, counts=(-1, 8), lcounts=(3, 12)), "fail")
        add(fn, "zero counts", lambda c, F=F: F(c, counts=(0, 8), lcounts=(4, 12)))
        add(fn, "count I64_MIN", lambda c, F=F: F(c, counts=(6, 8), lcounts=(I64_MIN, 12)), "fail")
        add(fn, "NaN psnr", lambda c, F=F: F(c, values=[NAN] * 8, counts=(8, 8)))
        add(fn, "constant psnr in a video", lambda c, F=F: F(c, values=[30.0] * 8, counts=(8, 8)))


# ---- live streams ---------------------------------------------------------------------------------

def call_resize(c, src=None, h=40, w=50, ch=3, stride=0, dst=None, oh=H, ow=W, dst_count=None):
    b = Buf((h * (stride or w * ch)) if all(isinstance(v, int) and v > 0 for v in (h, w, ch)) and (stride or w * ch) > 0 else 0,
            ctype=c_uint8, fill=100)
    cnt = oh * ow * 3 if dst_count is None else dst_count
    d = Buf(cnt if isinstance(cnt, int) and cnt > 0 else 0, ctype=c_uint8, out=True)
    return c.lib.infp_resize_rgb8(arg(src, b.ptr), h, w, ch, stride, arg(dst, d.ptr), oh, ow, cnt)


def _resize_cases():
    fn = "infp_resize_rgb8"
    add(fn, "valid", call_resize, "ok")
    add(fn, "src NULL", lambda c: call_resize(c, src=NULL), "fail")
    add(fn, "dst NULL", lambda c: call_resize(c, dst=NULL), "fail")
    for name, kw in (("height 0", {"h": 0}), ("height -1", {"h": -1}), ("width 0", {"w": 0}), ("width -1", {"w": -1}),
                     ("channels 0", {"ch": 0}), ("channels 2", {"ch": 2}), ("channels 5", {"ch": 5}), ("channels -1", {"ch": -1}),
                     ("stride below width x channels", {"stride": 149}), ("stride -1", {"stride": -1}),
                     ("stride I64_MIN", {"stride": I64_MIN}), ("out height 0", {"oh": 0, "dst_count": 0}),
                     ("out height -1", {"oh": -1, "dst_count": -3 * W}), ("dst_count one short", {"dst_count": H * W * 3 - 1}),
                     ("dst_count one long", {"dst_count": H * W * 3 + 1}), ("dst_count I64_MAX", {"dst_count": I64_MAX}),
                     ("height x stride overflows", {"h": 2 ** 62, "stride": 2 ** 62}), ("width x channels overflows", {"w": 2 ** 62, "ch": 4}),
                     ("out size overflows", {"oh": 2 ** 62, "ow": 2 ** 62, "dst_count": 12})):
        add(fn, name, lambda c, kw=kw: call_resize(c, **kw), "fail")
    add(fn, "stride 2^40 (honest buffer, two rows)", lambda c: call_resize(c, h=2, stride=2 ** 40))
    add(fn, "1 x 1 to 1 x 1", lambda c: call_resize(c, h=1, w=1, oh=1, ow=1), "ok")
    add(fn, "grey 1 x 5000 to 4000 x 1", lambda c: call_resize(c, h=1, w=5000, ch=1, oh=4000, ow=1), "ok")


def cal_struct(c, size=None, output=False, **fields):
    cal = c._lib.Calibration()
    cal.size = ctypes.sizeof(cal)
    cal.false_alarm_rate, cal.psnr_mean, cal.psnr_std, cal.threshold = 0.05, 30.0, 2.0, 2.5
    cal.n_frames, cal.n_videos, cal.method = 100, 2, 0
    for k, v in fields.items():
        setattr(cal, k, v)
    raw = struct_bytes(cal, ctypes.sizeof(cal) if size is None else size, output=output)
    c.keep.append(raw)
    return raw


def _calibration_cases():
    st = _lib_struct("Calibration")
    for fn in ("infp_model_calibrate", "infp_model_calibrate_score"):
        def C(c, fn=fn, h=None, videos=None, n=None, rate=0.05, method=-1, out=True, size=None):
            if h is None:
                m = c.new_model(memory=True)
                c.keep.append(m)
                h = m._h
            v = c.videos(video(10, 21), video(9, 22)) if videos is None else videos
            count = (len(v) if isinstance(v, ctypes.Array) else 1) if n is None else n
            raw = cal_struct(c, size, output=True) if out else None
            o = ctypes.cast(raw, POINTER(c._lib.Calibration)) if out else None
            args = [h, None if v is NULL else v, count, rate] + ([method] if fn.endswith("score") else []) + [o]
            status = getattr(c.lib, fn)(*args)
            problems = canary_problems(raw, size, st) if out and size is not None else []
            if status == 0 and out:
                got = ctypes.cast(raw, POINTER(c._lib.Calibration)).contents
                if (size or ctypes.sizeof(st)) >= 20 and not got.psnr_std > 0:
                    problems.append(f"calibration with psnr_std {got.psnr_std}")
            return status, problems
        handle_variants(fn, lambda c, h, C=C: C(c, h=h), "model")
        _video_variants(fn, C)
        for rate in (0.0, 1.0, NAN, -0.1, 1.5, INF):
            add(fn, f"false_alarm_rate {rate}", lambda c, r=rate, C=C: C(c, rate=r), "fail")
        add(fn, "out NULL", lambda c, C=C: C(c, out=False), "ok")
        add(fn, "constant normal video", lambda c, C=C: C(c, videos=c.videos(c.const_arr)))
        add(fn, "constant normal video, PSNR", lambda c, C=C: C(c, videos=c.videos(c.const_arr), method=0))
        for size in sizes_for(st):
            add(fn, f"out.size = {size}, guarded", lambda c, s=size, C=C: C(c, size=s), size_expect(st, size))
        if fn.endswith("score"):
            for m in (1, 3, -2, I32_MAX, I32_MIN):
                add(fn, f"method {m}", lambda c, m=m, C=C: C(c, method=m), "fail")
            add(fn, "memory score without a memory", lambda c, C=C: C(c, h=_plain(c), method=2), "fail")

    fn = "infp_model_calibration"

    def get(c, h=None, size=None, out=True):
        raw = cal_struct(c, size, output=True)
        status = c.lib.infp_model_calibration(c.model if h is None else h,
                                              ctypes.cast(raw, POINTER(c._lib.Calibration)) if out else None)
        return status, canary_problems(raw, size, st) if size is not None else []
    handle_variants(fn, lambda c, h: get(c, h=h), "model")
    add(fn, "out NULL", lambda c: get(c, out=False), "fail")
    add(fn, "uncalibrated model", lambda c: get(c, h=_plain(c)), "ok")
    for size in sizes_for(st):
        add(fn, f"out.size = {size}, guarded", lambda c, s=size: get(c, size=s), size_expect(st, size))

    fn = "infp_model_set_calibration"

    def put(c, h=None, size=None, null=False, **fields):
        if h is None:
            h = _plain(c)
        raw = None if null else cal_struct(c, size, **fields)
        return c.lib.infp_model_set_calibration(h, None if null else ctypes.cast(raw, POINTER(c._lib.Calibration)))
    handle_variants(fn, lambda c, h: put(c, h=h), "model", extra_expect_valid="ok")
    add(fn, "NULL removes it", lambda c: put(c, null=True), "ok")
    for field, values in (("psnr_mean", [NAN, INF, -INF]), ("psnr_std", [NAN, INF, -1.0, -0.0]),
                          ("threshold", [NAN, INF, -INF]), ("false_alarm_rate", [1.0, -0.1, NAN, 2.0]),
                          ("n_frames", [-1, I64_MIN]), ("n_videos", [-1, I64_MIN]), ("method", [1, 5, -1, I32_MAX, I32_MIN])):
        for v in values:
            expect = None if (field == "psnr_std" and v == 0) else "fail"
            add(fn, f"{field} = {v}", lambda c, f=field, v=v: put(c, **{f: v}), expect)
    add(fn, "psnr_std = 0", lambda c: put(c, psnr_std=0.0))
    add(fn, "n_frames = 0", lambda c: put(c, n_frames=0))
    for size in sizes_for(st):
        add(fn, f"calibration.size = {size}", lambda c, s=size: put(c, size=s), size_expect(st, size))


def stream_params(c, size=None, **fields):
    p = c.lib.infp_stream_default_params()
    p.n_threads = 1
    for k, v in fields.items():
        setattr(p, k, v)
    raw = struct_bytes(p, ctypes.sizeof(p) if size is None else size)
    c.keep.append(raw)
    return ctypes.cast(raw, POINTER(c._lib.StreamParams))


def call_stream_create(c, h=None, params=None, out=True, **fields):
    s = c_void_p()
    p = stream_params(c, **fields) if params is None else (None if params is NULL else params)
    status = c.lib.infp_stream_create(c.model if h is None else h, p, byref(s) if out else None)
    problems = []
    if s.value:
        frame = np.zeros((H, W, 3), np.uint8)
        r = c._lib.StreamResult()
        r.size = ctypes.sizeof(r)
        for _ in range(6):
            st = c.lib.infp_stream_push(s, frame.ctypes.data_as(U8P), H, W, 3, 0, byref(r), None, 0)
            problems += fs.check_status(st, c.last_error() or "")
        c.lib.infp_stream_free(s)
    return status, problems


def call_push(c, s=None, pixels=None, h=H, w=W, ch=3, stride=0, result=True, emap=None, emap_count=0, size=None,
              frame=None):
    st = _lib_struct("StreamResult")
    f = frame if frame is not None else np.full((max(1, h) if isinstance(h, int) and 0 < h < 5000 else 1,
                                                max(1, w) if isinstance(w, int) and 0 < w < 5000 else 1, 3), 90, np.uint8)
    raw = None
    if result:
        r = c._lib.StreamResult()
        raw = struct_bytes(r, ctypes.sizeof(r) if size is None else size, output=True)
        c.keep.append(raw)
    em = Buf(emap_count if isinstance(emap_count, int) and 0 < emap_count < 1 << 24 else 1, out=True)
    status = c.lib.infp_stream_push(c.stream if s is None else s, arg(pixels, f.ctypes.data_as(U8P)), h, w, ch, stride,
                                    ctypes.cast(raw, POINTER(c._lib.StreamResult)) if result else None,
                                    (em.ptr if emap else None), emap_count)
    return status, canary_problems(raw, size, st) if size is not None else []


def _stream_cases():
    fn = "infp_stream_create"
    handle_variants(fn, lambda c, h: call_stream_create(c, h=h), "model")
    add(fn, "params NULL", lambda c: call_stream_create(c, params=NULL))
    add(fn, "out NULL", lambda c: call_stream_create(c, out=False), "fail")
    for field, values in (("n_threads", [-1, I32_MIN, I32_MAX]), ("min_event_frames", [-1, I32_MIN, I32_MAX]),
                          ("release_frames", [-1, I32_MIN, I32_MAX]), ("hysteresis", [NAN, INF, -INF]),
                          ("threshold_override", [NAN, INF, -INF, 1e38])):
        for v in values:
            expect = "fail" if (isinstance(v, float) and math.isnan(v)) or (isinstance(v, int) and v < 0 and field != "hysteresis") \
                or (field == "threshold_override" and math.isinf(v)) else None
            add(fn, f"params.{field} = {v}", lambda c, f=field, v=v: call_stream_create(c, **{f: v}), expect)
    add(fn, "threshold_override on an uncalibrated model", lambda c: call_stream_create(c, h=_plain(c), threshold_override=1.0), "fail")
    st = _lib_struct("StreamParams")
    for size in sizes_for(st):
        add(fn, f"params.size = {size}", lambda c, s=size: call_stream_create(c, params=stream_params(c, size=s)),
            size_expect(st, size))

    fn = "infp_stream_push"
    handle_variants(fn, lambda c, h: call_push(c, s=h), "stream")
    add(fn, "pixels NULL", lambda c: call_push(c, pixels=NULL), "fail")
    add(fn, "result NULL", lambda c: call_push(c, result=False))
    for name, kw in (("height 0", {"h": 0}), ("height -1", {"h": -1}), ("width 0", {"w": 0}), ("width I64_MIN", {"w": I64_MIN}),
                     ("channels 0", {"ch": 0}), ("channels 2", {"ch": 2}), ("channels 5", {"ch": 5}), ("channels -1", {"ch": -1}),
                     ("stride below width x channels", {"stride": 3 * W - 1}), ("stride -1", {"stride": -1}),
                     ("2^31 x 2^31 frame (size overflows)", {"h": 2 ** 31, "w": 2 ** 31}),
                     ("2^62 x 2 frame (size overflows)", {"h": 2 ** 62, "w": 2}),
                     ("height x stride overflows", {"h": 2 ** 40, "stride": 2 ** 40}),
                     ("error_map NULL with count", {"emap": None, "emap_count": H * W}),
                     ("error_map with count one short", {"emap": True, "emap_count": H * W - 1}),
                     ("error_map with count -1", {"emap": True, "emap_count": -1}),
                     ("error_map with count I64_MAX", {"emap": True, "emap_count": I64_MAX})):
        add(fn, name, lambda c, kw=kw: call_push(c, **kw), "fail")
    add(fn, "error_map", lambda c: call_push(c, emap=True, emap_count=H * W), "ok")
    add(fn, "a 4000 x 3000 frame", lambda c: call_push(c, h=3000, w=4000), "ok", 30)
    add(fn, "a 1 x 1 grey frame", lambda c: call_push(c, h=1, w=1, ch=1), "ok")
    st = _lib_struct("StreamResult")
    for size in sizes_for(st):
        add(fn, f"result.size = {size}, guarded", lambda c, s=size: call_push(c, size=s), size_expect(st, size))

    def model_freed_first(c):
        m = c.new_model(memory=True, calibrated=True)
        s = c.new_stream(m._h)
        m.close()
        problems = []
        for i in range(8):
            status, p = call_push(c, s=s)
            problems += p + fs.check_status(status, c.last_error() or "")
        c.lib.infp_stream_free(s)
        return 0, problems
    add(fn, "its model freed first", model_freed_first, "ok")

    def many(c):
        problems = []
        for i in range(300):
            status, p = call_push(c, frame=video(1, i)[0])
            if status:
                problems.append(f"push {i}: status {status} {c.last_error()}")
        return 0, problems[:3]
    add(fn, "300 frames", many, "ok", 60)

    fn = "infp_stream_reset"
    handle_variants(fn, lambda c, h: c.lib.infp_stream_reset(h), "stream")

    fn = "infp_stream_free"
    add(fn, "NULL", lambda c: c.lib.infp_stream_free(None))
    add(fn, "freed (double free)", lambda c: c.lib.infp_stream_free(c.freed_stream))
    add(fn, "foreign pointer", lambda c: c.lib.infp_stream_free(c.garbage))

    def free_model_as_stream(c):
        m = c.new_model()
        h = c_void_p(m._h.value)
        c.lib.infp_stream_free(h)
        n = c_int64()
        status = c.lib.infp_model_num_parameters(h, byref(n))
        m.close()
        return status
    add(fn, "a model handle, then the model is used", free_model_as_stream)


_conv_cases()
_fft_cases()
_model_cases()
_predict_cases()
_training_step_cases()
_fit_cases()
_scoring_cases()
_metric_cases()
_resize_cases()
_calibration_cases()
_stream_cases()


def all_cases():
    cases = []
    for fn, table in CASES.items():
        for name, (_, expect, timeout, timeout_ok) in table.items():
            case = {"id": len(cases), "fn": fn, "variant": name, "desc": f"{fn}: {name}"}
            if expect:
                case["expect"] = expect
            if timeout:
                case["timeout"] = timeout
            if timeout_ok:
                case["timeout_ok"] = True
            cases.append(case)
    return cases


# ---- the child's side ------------------------------------------------------------------------------

class Executor:
    def __init__(self, setup):
        self.ctx = Ctx(Path(setup["scratch"]) / f"child-{os.getpid()}")

    def run(self, case):
        c = self.ctx
        thunk, expect, _, _ = CASES[case["fn"]][case["variant"]]
        c.keep = c.keep[-200:]
        c.sentinel = c.make_sentinel()
        try:
            result = thunk(c)
        except Exception as e:  # noqa: BLE001  (a bug of this test, or a Python-side error)
            import traceback
            return {"outcome": f"python:{type(e).__name__}", "problems": [f"the case raised {type(e).__name__}: {e}"],
                    "detail": traceback.format_exc()[-600:]}
        status, problems = (result if isinstance(result, tuple) else (result, []))
        problems = list(problems)
        if status is None:
            return {"outcome": "returned", "problems": problems}
        message = c.last_error() or ""
        if status != 0:
            problems += fs.check_status(status, message)
            if message == c.sentinel:
                problems.append(f"status {status} but infp_last_error() still holds the previous failure's message")
        if expect == "fail" and status == 0:
            problems.append("accepted (status 0), but the header rules this call out")
        if expect == "ok" and status != 0:
            problems.append(f"refused a valid call: status {status} {message[:200]}")
        return {"outcome": f"status:{fs.STATUS_NAMES.get(status, status)}", "problems": problems,
                "detail": message[:300] if status else ""}


# ---- the parent's side --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("c-api-sweep")
    setup = {"scratch": str(tmp / "scratch")}
    cases = all_cases()
    report = fs.run_cases(cases, EXECUTOR, setup, tmp / "run", label="C API sweep",
                          workers=fs.env_int("INFP_FUZZ_WORKERS", 2), timeout=fs.env_float("INFP_FUZZ_TIMEOUT", 10))
    if report.failures:
        root = os.environ.get("INFP_FUZZ_OUT")
        out = Path(root) / "c-api" if root else tmp / "failures"
        fs.write_failures(report, out, executor=EXECUTOR, setup=setup)
        report.failure_dir = out
    print("\n" + report.summary(limit=400))
    return report


def test_every_header_function_is_swept():
    declared = header_functions()
    assert len(declared) >= 45, declared
    missing = [f for f in declared if f not in CASES]
    assert not missing, f"functions of include/infp.h without bad-argument cases: {missing}"
    unknown = [f for f in CASES if f not in declared]
    assert not unknown, f"cases for functions not in include/infp.h: {unknown}"


def _failures(report, pred):
    return [f for f in report.failures if pred(f)]


def _fail(report, failures, what):
    if failures:
        lines = [f"{len(failures)} {what}:"]
        for f in failures[:150]:
            lines.append(f"  #{f['id']} {f['desc']}: {f['how']}" + (f"\n      {f['detail'][:240]}" if f.get("detail") else ""))
        if len(failures) > 150:
            lines.append(f"  ... and {len(failures) - 150} more")
        if getattr(report, "failure_dir", None):
            lines.append(f"  cases in {report.failure_dir}")
        pytest.fail("\n".join(lines), pytrace=False)


def _is_size_case(f):
    return ".size = " in f["desc"]


def test_sweep_no_deaths_or_hangs(sweep):
    """No call, whatever its arguments, kills or hangs the process."""
    _fail(sweep, sweep.deaths(), "calls killed or hung the process")


def test_sweep_params_sizes(sweep):
    """Every `size` of every params struct (0 .. sizeof + 16, huge): refused below the size
    field, above the struct, or inside a pointer field; never read past; outputs never written
    past the declared size."""
    _fail(sweep, _failures(sweep, _is_size_case), "problems with struct sizes")


def test_sweep_errors_are_reported(sweep):
    """Every failing call returns a known negative status (never "internal error") with a fresh,
    non-empty infp_last_error(); calls the header forbids are refused; valid calls succeed."""
    _fail(sweep, _failures(sweep, lambda f: not _is_size_case(f) and f["outcome"] not in ("died", "hang", "exit")),
          "calls with wrong status, message or acceptance")


def test_sweep_covers_every_function(sweep):
    ran = {c["fn"] for c in all_cases() if c["id"] in sweep.outcomes}
    assert ran >= set(header_functions()), sorted(set(header_functions()) - ran)


# ---- the Python wrapper: refuse, do not truncate ----------------------------------------------------

@pytest.fixture(scope="module")
def infp_mod():
    fs.wait_for_library()
    import infp
    return infp


REFUSED = (ValueError, TypeError, OverflowError)


def _refuses(infp_mod, fn, *exc):
    try:
        fn()
    except REFUSED + (infp_mod.InfpError,) + exc as e:
        if isinstance(e, infp_mod.InfpError):
            assert e.status != INTERNAL, f"internal error: {e}"
            assert e.message.strip()
        return e
    pytest.fail("accepted", pytrace=False)


@pytest.mark.parametrize("kw", [{"seed": 2 ** 64}, {"seed": -1}, {"seed": 2 ** 70}, {"threads": 2 ** 32 + 1}, {"threads": -1},
                                {"seed": 1.5}, {"seed": "0"}])
def test_model_int_arguments_are_not_truncated(infp_mod, kw):
    """seed=2**64 must not silently be seed 0 (ctypes truncates)."""
    _refuses(infp_mod, lambda: infp_mod.Model("tiny", **kw).close())


def test_model_none_preset_is_a_clear_error(infp_mod):
    e = _refuses(infp_mod, lambda: infp_mod.Model(None).close())
    assert not isinstance(e, AttributeError)


@pytest.mark.parametrize("preset", [5, "bogus", "", "tiny\0x"])
def test_model_bad_preset(infp_mod, preset):
    _refuses(infp_mod, lambda: infp_mod.Model(preset).close())


@pytest.mark.parametrize("over", [{"loss_alpha": float("nan")}, {"loss_alpha": float("inf")}, {"height": float("nan")},
                                  {"height": 2 ** 64}, {"blocks": "x"}, {"height": None}])
def test_model_bad_overrides_are_not_internal_errors(infp_mod, over):
    _refuses(infp_mod, lambda: infp_mod.Model("tiny", **over).close())


@pytest.fixture(scope="module")
def tiny(infp_mod):
    m = infp_mod.Model("tiny", seed=0, threads=1)
    yield m
    m.close()


@pytest.mark.parametrize("kw", [{"epochs": 0}, {"epochs": -1}, {"epochs": 2 ** 32 + 1}, {"lr": 0}, {"lr": -1e-3},
                                {"lr": float("nan")}, {"batch_size": 0}, {"batch_size": 1}, {"batch_size": 2 ** 32 + 2},
                                {"seed": 2 ** 64}, {"seed": -1}, {"checkpoint_every": 2 ** 32 + 1}, {"gamma": float("nan")},
                                {"bn_batches": 2 ** 32}, {"milestones": (2 ** 32 + 1,)}, {"max_minutes": float("nan")},
                                {"checkpoint_path": "x\0y"}, {"resume": "x\0y"}])
def test_fit_refuses_what_it_would_misread(infp_mod, tiny, kw):
    """fit(epochs=0) must not train the default 150 epochs; lr=0 and batch_size=0 must not
    silently become defaults; ints that do not fit the C fields must not be truncated."""
    v = [video(5, 31), video(5, 32)]
    kw = dict(kw)
    kw.setdefault("epochs", 1)
    kw.setdefault("batch_size", 2)
    _refuses(infp_mod, lambda: tiny.fit(v, progress=False, remember=False, **kw))


@pytest.mark.parametrize("kw", [{"patch_size": 2 ** 32 + 16, "method": "patch"}, {"smoothing": 2 ** 32 + 1},
                                {"smoothing": 0}, {"patch_size": 0, "method": "patch"}])
def test_anomaly_scores_refuse_misread_ints(infp_mod, tiny, kw):
    _refuses(infp_mod, lambda: tiny.anomaly_scores(video(6, 33), **kw))


@pytest.mark.parametrize("kw", [{"min_event_frames": 2 ** 32 + 2}, {"release_frames": 2 ** 32 + 3}, {"threads": 2 ** 32},
                                {"hysteresis": float("nan")}, {"threshold": float("nan")}])
def test_stream_refuses_misread_arguments(infp_mod, tiny, kw):
    _refuses(infp_mod, lambda: tiny.stream(**kw).close())


def test_load_none_path(infp_mod):
    _refuses(infp_mod, lambda: infp_mod.Model.load(None).close())


def test_calibrate_on_constant_video(infp_mod):
    """A constant normal video has no spread: calibrating on it must be refused, or give a
    positive spread such that the same footage does not alert on every frame."""
    m = infp_mod.Model("tiny", seed=0, threads=1)
    const = np.full((12, H, W, 3), 128, np.uint8)
    try:
        for method in ("psnr", "memory"):
            if method == "memory":
                m.remember([const])
            try:
                cal = m.calibrate([const], false_alarm_rate=0.05, method=method)
            except (ValueError, infp_mod.InfpError) as e:
                if isinstance(e, infp_mod.InfpError):
                    assert e.status != INTERNAL
                continue
            assert cal["psnr_std"] > 0 and math.isfinite(cal["psnr_std"]), cal
            with m.stream() as s:
                alerts = [s.push(f).alert for f in np.concatenate([const, const])]
            assert sum(alerts) < len(alerts) // 2, f"{method}: {sum(alerts)} of {len(alerts)} normal frames alert"
    finally:
        m.close()
