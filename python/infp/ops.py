"""Single operations of libinfp on NumPy arrays: 2-D convolution and 2-D real FFTs, with
their gradients. Inputs are converted to C-contiguous float32 (complex64 for spectra); outputs
are new NumPy arrays owned by the caller.

Semantics follow PyTorch / NumPy:

* ``conv2d`` is ``torch.nn.functional.conv2d`` with ``groups=1`` and symmetric zero padding;
* ``rfft2`` / ``irfft2`` are ``numpy.fft.rfft2`` / ``numpy.fft.irfft2`` (and ``torch.fft``),
  over two axes of any tensor, with ``norm`` "backward" (the default) or "ortho";
* every ``*_backward(..., dy)`` returns the gradient of ``sum(y * dy)`` with respect to the
  inputs (for complex arrays, ``sum(y.real * dy.real + y.imag * dy.imag)``: the gradient of a
  complex array is ``d/d real + 1j * d/d imag``, as in PyTorch).
"""

from __future__ import annotations

import ctypes
from typing import Optional, Sequence, Tuple

import numpy as np

from ._lib import (ERR_INVALID_ARGUMENT, ERR_SHAPE_MISMATCH, FFT_BACKWARD, FFT_ORTHO, Conv2dParams,
                   InfpError, check, lib)

__all__ = ["conv2d", "conv2d_backward", "rfft2", "rfft2_backward", "irfft2", "irfft2_backward"]

_F32P = ctypes.POINTER(ctypes.c_float)
_NORMS = {None: FFT_BACKWARD, "backward": FFT_BACKWARD, "ortho": FFT_ORTHO}


# ---- helpers -----------------------------------------------------------------------------

def _ptr(a: Optional[np.ndarray]):
    return None if a is None else a.ctypes.data_as(_F32P)


def _shape(shape: Sequence[int]):
    return (ctypes.c_int64 * len(shape))(*[int(d) for d in shape])


def _f32(a, name: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(a, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise InfpError(ERR_INVALID_ARGUMENT, f"{name}: cannot convert to a float32 array: {e}") from e


def _c64(a, name: str) -> np.ndarray:
    """A complex array as contiguous complex64."""
    try:
        return np.ascontiguousarray(a, dtype=np.complex64)
    except (TypeError, ValueError) as e:
        raise InfpError(ERR_INVALID_ARGUMENT, f"{name}: cannot convert to a complex64 array: {e}") from e


def _pairs(z: np.ndarray) -> np.ndarray:
    """complex64 (...) -> float32 (..., 2), sharing memory."""
    return z.view(np.float32).reshape(z.shape + (2,))


def _complex(pairs: np.ndarray) -> np.ndarray:
    """float32 (..., 2) -> complex64 (...), sharing memory."""
    return pairs.view(np.complex64).reshape(pairs.shape[:-1])


def _shape_error(message: str) -> InfpError:
    return InfpError(ERR_SHAPE_MISMATCH, message)


def _require_ndim(a: np.ndarray, ndim: int, name: str, layout: str) -> None:
    if a.ndim != ndim:
        raise _shape_error(f"{name} must be {layout} ({ndim} dimensions), got shape {a.shape}")
    if a.size == 0:
        raise _shape_error(f"{name} is empty: shape {a.shape}")


def _params(stride: int, padding: int, dilation: int, threads: int) -> Conv2dParams:
    p = lib.infp_conv2d_default_params()
    for field, value in (("stride", stride), ("padding", padding), ("dilation", dilation),
                         ("n_threads", threads)):
        value = int(value)
        if not -2**31 <= value < 2**31:
            raise InfpError(ERR_INVALID_ARGUMENT, f"{field} = {value} does not fit a 32-bit int")
        setattr(p, field, value)
    return p


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    stride = stride or 1
    dilation = dilation or 1
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _axes(axes: Sequence[int], ndim: int) -> Tuple[int, int]:
    if len(axes) != 2:
        raise InfpError(ERR_INVALID_ARGUMENT, f"axes must be two axes, got {tuple(axes)}")
    a0, a1 = (int(a) for a in axes)
    if not (-ndim <= a0 < ndim and -ndim <= a1 < ndim):
        raise InfpError(ERR_INVALID_ARGUMENT, f"axes {tuple(axes)} out of range for {ndim} dimensions")
    a0, a1 = a0 % ndim, a1 % ndim
    if not a0 < a1:
        raise InfpError(ERR_INVALID_ARGUMENT,
                        f"axes {tuple(axes)} must be in increasing order (the half-spectrum axis is "
                        f"the later one); use numpy.moveaxis to reorder the data")
    return a0, a1


def _norm(norm) -> int:
    try:
        return _NORMS[norm]
    except (KeyError, TypeError):
        raise InfpError(ERR_INVALID_ARGUMENT,
                        f"norm must be 'backward' or 'ortho', got {norm!r}") from None


def _fit(a: np.ndarray, axis: int, n: int) -> np.ndarray:
    """Crops or zero-pads ``a`` at the end of ``axis`` to length ``n`` (as numpy.fft does)."""
    m = a.shape[axis]
    if m == n:
        return a
    if m > n:
        return np.take(a, np.arange(n), axis=axis)
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, n - m)
    return np.pad(a, pad)


# ---- conv2d ------------------------------------------------------------------------------

def _conv_shapes(x, w, stride, padding, dilation):
    _require_ndim(x, 4, "x", "(N, C, H, W)")
    _require_ndim(w, 4, "w", "(K, C, R, S)")
    if x.shape[1] != w.shape[1]:
        raise _shape_error(f"x has {x.shape[1]} channels but w expects {w.shape[1]}: "
                           f"x {x.shape}, w {w.shape}")
    ho = _conv_out(x.shape[2], w.shape[2], stride, padding, dilation)
    wo = _conv_out(x.shape[3], w.shape[3], stride, padding, dilation)
    return (x.shape[0], w.shape[0], ho, wo)


def conv2d(x, w, bias=None, stride: int = 1, padding: int = 0, dilation: int = 1,
           threads: int = 0) -> np.ndarray:
    """2-D convolution, as ``torch.nn.functional.conv2d(x, w, bias, stride, padding, dilation)``.

    Args:
        x: input, (N, C, H, W) float32.
        w: weight, (K, C, R, S) float32.
        bias: (K,) float32 or None.
        stride, padding, dilation: ints (padding on every side).
        threads: worker threads, 0 for all cores.

    Returns:
        y: (N, K, Ho, Wo) float32 with Ho = (H + 2·padding − dilation·(R−1) − 1) // stride + 1.
    """
    x, w = _f32(x, "x"), _f32(w, "w")
    y_shape = _conv_shapes(x, w, stride, padding, dilation)
    if bias is not None:
        bias = _f32(bias, "bias")
        if bias.shape != (w.shape[0],):
            raise _shape_error(f"bias must have shape ({w.shape[0]},), got {bias.shape}")
    params = _params(stride, padding, dilation, threads)
    y = np.empty(tuple(max(d, 1) for d in y_shape), dtype=np.float32)
    check(lib.infp_conv2d(_ptr(x), _shape(x.shape), _ptr(w), _shape(w.shape), _ptr(bias),
                          ctypes.byref(params), _ptr(y), _shape(y_shape)))
    return y


def conv2d_backward(x, w, dy, stride: int = 1, padding: int = 0, dilation: int = 1,
                    threads: int = 0):
    """Gradients of ``sum(conv2d(x, w, bias, ...) * dy)``.

    Args:
        x: (N, C, H, W), w: (K, C, R, S), dy: (N, K, Ho, Wo), all float32; the other
        arguments as in :func:`conv2d`.

    Returns:
        (dx, dw, dbias): float32 arrays shaped like x, w and (K,).
    """
    x, w, dy = _f32(x, "x"), _f32(w, "w"), _f32(dy, "dy")
    y_shape = _conv_shapes(x, w, stride, padding, dilation)
    if dy.shape != y_shape:
        raise _shape_error(f"dy has shape {dy.shape}, but the output of conv2d is {y_shape}")
    params = _params(stride, padding, dilation, threads)
    dx = np.empty_like(x)
    dw = np.empty_like(w)
    db = np.empty(w.shape[0], dtype=np.float32)
    check(lib.infp_conv2d_backward(_ptr(x), _shape(x.shape), _ptr(w), _shape(w.shape),
                                   ctypes.byref(params), _ptr(dy), _shape(dy.shape),
                                   _ptr(dx), _ptr(dw), _ptr(db)))
    return dx, dw, db


# ---- FFTs --------------------------------------------------------------------------------

def rfft2(x, axes: Sequence[int] = (-2, -1), norm: Optional[str] = "backward") -> np.ndarray:
    """Real 2-D FFT, as ``numpy.fft.rfft2(x, axes=axes, norm=norm)``.

    Args:
        x: real array with at least 2 dimensions (converted to float32).
        axes: the two axes, in increasing order after wrapping negatives; the later one is
            halved.
        norm: "backward" (forward unscaled) or "ortho".

    Returns:
        complex64 array: x's shape with ``shape[axes[1]] // 2 + 1`` along the later axis.
    """
    x = _f32(x, "x")
    if x.ndim < 2:
        raise _shape_error(f"x must have at least 2 dimensions, got shape {x.shape}")
    a0, a1 = _axes(axes, x.ndim)
    n = _norm(norm)
    out_shape = list(x.shape)
    out_shape[a1] = x.shape[a1] // 2 + 1
    y = np.empty(tuple(out_shape) + (2,), dtype=np.float32)
    check(lib.infp_rfft2(_ptr(x), x.ndim, _shape(x.shape), a0, a1, n, _ptr(y), y.size))
    return _complex(y)


def rfft2_backward(dy, x_shape: Sequence[int], axes: Sequence[int] = (-2, -1),
                   norm: Optional[str] = "backward") -> np.ndarray:
    """Gradient with respect to x of ``sum(Re(y)·Re(dy) + Im(y)·Im(dy))``, y = rfft2(x).

    Args:
        dy: complex array shaped like rfft2's output.
        x_shape: the shape of x (it fixes the length of the halved axis).

    Returns:
        dx: float32 array of shape x_shape.
    """
    x_shape = tuple(int(d) for d in x_shape)
    if len(x_shape) < 2:
        raise _shape_error(f"x_shape must have at least 2 dimensions, got {x_shape}")
    a0, a1 = _axes(axes, len(x_shape))
    n = _norm(norm)
    dy = _c64(dy, "dy")
    expected = list(x_shape)
    expected[a1] = x_shape[a1] // 2 + 1
    if dy.shape != tuple(expected):
        raise _shape_error(f"dy has shape {dy.shape}, but rfft2 of {x_shape} over axes "
                           f"{(a0, a1)} has shape {tuple(expected)}")
    pairs = _pairs(dy)
    dx = np.empty(x_shape, dtype=np.float32)
    check(lib.infp_rfft2_backward(len(x_shape), _shape(x_shape), a0, a1, n, _ptr(pairs),
                                  pairs.size, _ptr(dx)))
    return dx


def _irfft_sizes(z_shape, s, a0, a1):
    if s is None:
        return z_shape[a0], 2 * (z_shape[a1] - 1)
    if len(s) != 2:
        raise InfpError(ERR_INVALID_ARGUMENT, f"s must give two sizes, got {tuple(s)}")
    n0, n1 = int(s[0]), int(s[1])
    if n0 < 1 or n1 < 1:
        raise InfpError(ERR_INVALID_ARGUMENT, f"s = {tuple(s)} must be positive")
    return n0, n1


def irfft2(z, s: Optional[Sequence[int]] = None, axes: Sequence[int] = (-2, -1),
           norm: Optional[str] = "backward") -> np.ndarray:
    """Inverse of :func:`rfft2`, as ``numpy.fft.irfft2(z, s=s, axes=axes, norm=norm)``.

    Args:
        z: complex array (converted to complex64) with at least 2 dimensions.
        s: output sizes (n0, n1) along the axes; default (z.shape[a0], 2·(z.shape[a1] − 1)).
            As in NumPy, z is cropped or zero-padded at the end to n0 and n1 // 2 + 1.
        axes, norm: as in :func:`rfft2`.

    Returns:
        float32 array: z's shape with n0 and n1 along the axes. Only the real parts of the
        DC and (even n1) Nyquist bins along the later axis are used, as in NumPy and FFTW.
    """
    z = _c64(z, "z")
    if z.ndim < 2:
        raise _shape_error(f"z must have at least 2 dimensions, got shape {z.shape}")
    a0, a1 = _axes(axes, z.ndim)
    n = _norm(norm)
    n0, n1 = _irfft_sizes(z.shape, s, a0, a1)
    if n1 < 1:
        raise InfpError(ERR_INVALID_ARGUMENT, f"the output length along axis {a1} would be {n1}: "
                        f"pass s")
    z = np.ascontiguousarray(_fit(_fit(z, a0, n0), a1, n1 // 2 + 1))
    pairs = _pairs(z)
    y_shape = list(z.shape)
    y_shape[a1] = n1
    y = np.empty(tuple(y_shape), dtype=np.float32)
    check(lib.infp_irfft2(_ptr(pairs), z.ndim, _shape(z.shape), a0, a1, n1, n, _ptr(y), y.size))
    return y


def irfft2_backward(dy, z_shape: Optional[Sequence[int]] = None, axes: Sequence[int] = (-2, -1),
                    norm: Optional[str] = "backward") -> np.ndarray:
    """Gradient with respect to z of ``sum(y * dy)``, y = irfft2(z, s=dy's sizes, axes, norm).

    Args:
        dy: float32 array shaped like irfft2's output (it gives n0 and n1).
        z_shape: the shape of the z given to irfft2; default: z_shape[a1] = n1 // 2 + 1, the
            rest as dy (the gradient is cropped or zero-padded back to z_shape).

    Returns:
        dz: complex64 array of shape z_shape.
    """
    dy = _f32(dy, "dy")
    if dy.ndim < 2:
        raise _shape_error(f"dy must have at least 2 dimensions, got shape {dy.shape}")
    a0, a1 = _axes(axes, dy.ndim)
    n = _norm(norm)
    n1 = dy.shape[a1]
    exact = list(dy.shape)
    exact[a1] = n1 // 2 + 1
    exact = tuple(exact)
    if z_shape is None:
        z_shape = exact
    z_shape = tuple(int(d) for d in z_shape)
    if len(z_shape) != dy.ndim or any(z_shape[i] != exact[i] for i in range(dy.ndim) if i not in (a0, a1)):
        raise _shape_error(f"z_shape {z_shape} does not fit dy {dy.shape} over axes {(a0, a1)}")
    dz = np.empty(exact + (2,), dtype=np.float32)
    check(lib.infp_irfft2_backward(dy.ndim, _shape(exact), a0, a1, n1, n, _ptr(dy), dy.size,
                                   _ptr(dz)))
    g = _complex(dz)
    # Adjoint of the crop / zero-pad irfft2 applied to z: zero-pad / crop back.
    return np.ascontiguousarray(_fit(_fit(g, a0, z_shape[a0]), a1, z_shape[a1]))
