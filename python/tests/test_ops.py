"""infp.ops against NumPy: forward values, gradients (exact adjoints built from NumPy
references) and errors."""

import ctypes

import numpy as np
import pytest

import infp
from infp import InfpError, ops

# float32 results against float64 references.
RTOL, ATOL = 2e-5, 2e-5


def assert_close(got, want, scale=None):
    want = np.asarray(want)
    scale = max(1.0, float(np.max(np.abs(want)))) if scale is None else scale
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL * scale)


# ---- NumPy references --------------------------------------------------------------------

def conv2d_ref(x, w, bias=None, stride=1, padding=0, dilation=1):
    """Direct float64 convolution (cross-correlation), as torch.nn.functional.conv2d."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    ho = (h + 2 * padding - dilation * (r - 1) - 1) // stride + 1
    wo = (wd + 2 * padding - dilation * (s - 1) - 1) // stride + 1
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    y = np.zeros((n, k, ho, wo))
    for b in range(n):
        for o in range(k):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[b, :, i * stride: i * stride + dilation * (r - 1) + 1: dilation,
                               j * stride: j * stride + dilation * (s - 1) + 1: dilation]
                    y[b, o, i, j] = np.sum(patch * w[o])
    if bias is not None:
        y += np.asarray(bias, np.float64)[None, :, None, None]
    return y


def matrix_of(f, shape):
    """The matrix A of a linear map f on arrays of `shape`: f(v).ravel() = A @ v.ravel()."""
    size = int(np.prod(shape))
    cols = []
    for i in range(size):
        e = np.zeros(size)
        e[i] = 1
        cols.append(np.asarray(f(e.reshape(shape))).ravel())
    return np.stack(cols, axis=1)


def as_pairs(z):
    """complex (...) -> real (..., 2)."""
    z = np.asarray(z)
    return np.stack([z.real, z.imag], axis=-1)


def from_pairs(p):
    return p[..., 0] + 1j * p[..., 1]


# ---- conv2d ------------------------------------------------------------------------------

CONV_CASES = [
    # x shape, w shape, stride, padding, dilation
    ((2, 3, 7, 6), (4, 3, 3, 3), 1, 0, 1),
    ((1, 2, 8, 9), (3, 2, 3, 2), 2, 1, 1),
    ((2, 2, 9, 9), (2, 2, 3, 3), 1, 2, 2),
    ((1, 4, 5, 5), (6, 4, 1, 1), 1, 0, 1),
    ((1, 1, 6, 7), (1, 1, 2, 3), 3, 1, 2),
]


@pytest.mark.parametrize("xs,ws,stride,padding,dilation", CONV_CASES)
@pytest.mark.parametrize("threads", [1, 0])
def test_conv2d_matches_numpy(rng, xs, ws, stride, padding, dilation, threads):
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    b = rng.standard_normal(ws[0]).astype(np.float32)
    y = ops.conv2d(x, w, b, stride=stride, padding=padding, dilation=dilation, threads=threads)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    assert_close(y, conv2d_ref(x, w, b, stride, padding, dilation))
    y0 = ops.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, threads=threads)
    assert_close(y0, conv2d_ref(x, w, None, stride, padding, dilation))


def test_conv2d_accepts_other_dtypes_and_layouts(rng):
    x = rng.standard_normal((1, 5, 5, 2)).transpose(0, 3, 1, 2)  # float64, not contiguous
    w = rng.standard_normal((3, 2, 3, 3)).tolist()
    y = ops.conv2d(x, w, padding=1)
    assert_close(y, conv2d_ref(x, np.array(w), None, 1, 1, 1))


@pytest.mark.parametrize("xs,ws,stride,padding,dilation", CONV_CASES[:3] + CONV_CASES[4:])
def test_conv2d_backward_is_the_adjoint(rng, xs, ws, stride, padding, dilation):
    """dx = Aᵀ dy and dw = Bᵀ dy where y = A x = B w (conv is linear in x and in w)."""
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    y_shape = conv2d_ref(x, w, None, stride, padding, dilation).shape
    dy = rng.standard_normal(y_shape).astype(np.float32)
    dx, dw, db = ops.conv2d_backward(x, w, dy, stride=stride, padding=padding, dilation=dilation)
    assert dx.shape == xs and dw.shape == ws and db.shape == (ws[0],)

    a = matrix_of(lambda v: conv2d_ref(v, w, None, stride, padding, dilation), xs)
    bm = matrix_of(lambda v: conv2d_ref(x, v, None, stride, padding, dilation), ws)
    dyf = dy.astype(np.float64).ravel()
    assert_close(dx, (a.T @ dyf).reshape(xs))
    assert_close(dw, (bm.T @ dyf).reshape(ws))
    assert_close(db, dy.astype(np.float64).sum(axis=(0, 2, 3)))


def test_conv2d_backward_finite_differences(rng):
    x = rng.standard_normal((1, 2, 5, 5))
    w = rng.standard_normal((2, 2, 3, 3))
    b = rng.standard_normal(2)
    dy = rng.standard_normal((1, 2, 3, 3))
    dx, dw, db = ops.conv2d_backward(x, w, dy, stride=2, padding=1)
    h = 1e-3

    def loss(xv, wv, bv):
        return np.sum(conv2d_ref(xv, wv, bv, 2, 1, 1) * dy)

    for arr, grad, which in ((x, dx, 0), (w, dw, 1), (b, db, 2)):
        for idx in list(np.ndindex(arr.shape))[::3]:
            args = [x.copy(), w.copy(), b.copy()]
            args[which][idx] += h
            lp = loss(*args)
            args[which][idx] -= 2 * h
            lm = loss(*args)
            assert abs((lp - lm) / (2 * h) - grad[idx]) < 1e-3 * max(1, abs(grad[idx]))


def test_conv2d_errors(rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    # Checked in Python before the call.
    with pytest.raises(InfpError, match="channels") as e:
        ops.conv2d(x, w[:, :1])
    assert e.value.status == infp._lib.ERR_SHAPE_MISMATCH
    with pytest.raises(InfpError, match=r"\(N, C, H, W\)"):
        ops.conv2d(x[0], w)
    with pytest.raises(InfpError, match="bias"):
        ops.conv2d(x, w, bias=np.zeros(4))
    with pytest.raises(InfpError, match="dy has shape"):
        ops.conv2d_backward(x, w, np.zeros((1, 3, 4, 4)))
    # Checked by the library: the message is infp_last_error().
    with pytest.raises(InfpError, match="stride") as e:
        ops.conv2d(x, w, stride=-1)
    assert e.value.status == infp._lib.ERR_INVALID_ARGUMENT
    assert e.value.status_name == "invalid argument"
    assert "infp_conv2d" in e.value.message
    with pytest.raises(InfpError, match="padding"):
        ops.conv2d(x, w, padding=-1)
    with pytest.raises(InfpError, match="kernel height") as e:
        ops.conv2d(x, np.zeros((3, 2, 8, 3), np.float32))
    assert e.value.status == infp._lib.ERR_SHAPE_MISMATCH
    with pytest.raises(InfpError, match="n_threads"):
        ops.conv2d(x, w, threads=-1)
    with pytest.raises(InfpError, match="32-bit"):
        ops.conv2d(x, w, stride=2**40)


# ---- FFTs --------------------------------------------------------------------------------

FFT_CASES = [
    ((6, 8), (-2, -1)),
    ((5, 7), (0, 1)),
    ((3, 6, 5), (0, 2)),
    ((2, 4, 6, 3), (1, 2)),
    ((2, 5, 4, 3), (0, 3)),
    ((1, 1, 4), (1, 2)),
]


@pytest.mark.parametrize("shape,axes", FFT_CASES)
@pytest.mark.parametrize("norm", ["backward", "ortho"])
def test_rfft2_matches_numpy(rng, shape, axes, norm):
    x = rng.standard_normal(shape).astype(np.float32)
    y = ops.rfft2(x, axes=axes, norm=norm)
    want = np.fft.rfft2(x.astype(np.float64), axes=axes, norm=norm)
    assert y.dtype == np.complex64 and y.shape == want.shape
    assert_close(y, want)


@pytest.mark.parametrize("shape,axes", FFT_CASES)
@pytest.mark.parametrize("norm", ["backward", "ortho"])
def test_irfft2_matches_numpy(rng, shape, axes, norm):
    a0, a1 = (a % len(shape) for a in axes)
    zs = list(shape)
    zs[a1] = shape[a1] // 2 + 1
    # Any complex input, not only Hermitian spectra: both ignore the same imaginary parts.
    z = (rng.standard_normal(zs) + 1j * rng.standard_normal(zs)).astype(np.complex64)
    s = (shape[a0], shape[a1])
    y = ops.irfft2(z, s=s, axes=axes, norm=norm)
    want = np.fft.irfft2(z.astype(np.complex128), s=s, axes=axes, norm=norm)
    assert y.dtype == np.float32 and y.shape == tuple(shape)
    assert_close(y, want)


def test_irfft2_default_size_and_crop_pad_like_numpy(rng):
    z = rng.standard_normal((4, 5)) + 1j * rng.standard_normal((4, 5))
    assert_close(ops.irfft2(z), np.fft.irfft2(z))
    for s in [(3, 6), (6, 11), (4, 4), (2, 13)]:
        assert_close(ops.irfft2(z, s=s), np.fft.irfft2(z, s=s))


def test_round_trip(rng):
    x = rng.standard_normal((2, 3, 10, 7)).astype(np.float32)
    for norm in ("backward", "ortho"):
        back = ops.irfft2(ops.rfft2(x, norm=norm), s=x.shape[-2:], norm=norm)
        assert_close(back, x)


@pytest.mark.parametrize("shape,axes", FFT_CASES[:5])
@pytest.mark.parametrize("norm", ["backward", "ortho"])
def test_rfft2_backward_is_the_adjoint(rng, shape, axes, norm):
    """rfft2 is real-linear: (Re y, Im y) = A x, so dx = Aᵀ (Re dy, Im dy)."""
    a = matrix_of(lambda v: as_pairs(np.fft.rfft2(v, axes=axes, norm=norm)), shape)
    y_shape = np.fft.rfft2(np.zeros(shape), axes=axes).shape
    dy = rng.standard_normal(y_shape) + 1j * rng.standard_normal(y_shape)
    dx = ops.rfft2_backward(dy, shape, axes=axes, norm=norm)
    assert dx.dtype == np.float32 and dx.shape == shape
    assert_close(dx, (a.T @ as_pairs(dy).ravel()).reshape(shape))


@pytest.mark.parametrize("shape,axes", FFT_CASES[:5])
@pytest.mark.parametrize("norm", ["backward", "ortho"])
def test_irfft2_backward_is_the_adjoint(rng, shape, axes, norm):
    a0, a1 = (a % len(shape) for a in axes)
    zs = list(shape)
    zs[a1] = shape[a1] // 2 + 1
    s = (shape[a0], shape[a1])
    a = matrix_of(lambda p: np.fft.irfft2(from_pairs(p), s=s, axes=axes, norm=norm), tuple(zs) + (2,))
    dy = rng.standard_normal(shape)
    dz = ops.irfft2_backward(dy, axes=axes, norm=norm)
    assert dz.dtype == np.complex64 and dz.shape == tuple(zs)
    assert_close(as_pairs(dz), (a.T @ dy.ravel()).reshape(tuple(zs) + (2,)))


def test_irfft2_backward_with_crop_and_pad(rng):
    z_shape = (5, 3)       # cropped to 4 rows, zero-padded to 4 columns for s = (4, 6)
    s = (4, 6)
    a = matrix_of(lambda p: np.fft.irfft2(from_pairs(p), s=s), z_shape + (2,))
    dy = rng.standard_normal(s)
    dz = ops.irfft2_backward(dy, z_shape=z_shape)
    assert dz.shape == z_shape
    assert_close(as_pairs(dz), (a.T @ dy.ravel()).reshape(z_shape + (2,)))


def test_fft_errors(rng):
    x = rng.standard_normal((4, 6)).astype(np.float32)
    with pytest.raises(InfpError, match="increasing order"):
        ops.rfft2(x, axes=(1, 0))
    with pytest.raises(InfpError, match="out of range"):
        ops.rfft2(x, axes=(0, 2))
    with pytest.raises(InfpError, match="norm"):
        ops.rfft2(x, norm="forward")
    with pytest.raises(InfpError, match="at least 2 dimensions"):
        ops.rfft2(np.zeros(5))
    with pytest.raises(InfpError, match="dy has shape"):
        ops.rfft2_backward(np.zeros((4, 3), np.complex64), (4, 6))
    with pytest.raises(InfpError, match="s ="):
        ops.irfft2(np.zeros((4, 4), np.complex64), s=(0, 6))
    with pytest.raises(InfpError, match="z_shape"):
        ops.irfft2_backward(np.zeros((4, 6)), z_shape=(4, 4, 1))


def test_fft_errors_from_the_library(rng):
    """Calls the C functions directly with inconsistent arguments: statuses and messages."""
    from infp import _lib

    x = rng.standard_normal((4, 6)).astype(np.float32)
    y = np.zeros((4, 4, 2), np.float32)
    i64x2 = ctypes.c_int64 * 2
    shape = i64x2(4, 6)
    f32 = ops._ptr
    st = _lib.lib.infp_rfft2(f32(x), 2, shape, 1, 0, _lib.FFT_BACKWARD, f32(y), y.size)
    assert st == _lib.ERR_INVALID_ARGUMENT
    assert "axis0 < axis1" in _lib.last_error()
    st = _lib.lib.infp_rfft2(f32(x), 2, shape, 0, 1, _lib.FFT_BACKWARD, f32(y), y.size - 1)
    assert st == _lib.ERR_SHAPE_MISMATCH
    assert "y_count" in _lib.last_error()
    st = _lib.lib.infp_rfft2(None, 2, shape, 0, 1, _lib.FFT_BACKWARD, f32(y), y.size)
    assert st == _lib.ERR_INVALID_ARGUMENT and "x is NULL" in _lib.last_error()
    with pytest.raises(InfpError, match="n1") as e:
        _lib.check(_lib.lib.infp_irfft2(f32(y), 2, i64x2(4, 4), 0, 1, 9, _lib.FFT_BACKWARD,
                                        f32(x), x.size))
    assert e.value.status == _lib.ERR_SHAPE_MISMATCH
