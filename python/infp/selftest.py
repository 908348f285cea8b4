"""A self-test of the native library: a 2-D convolution and a 2-D real FFT, forward and
backward, on NumPy data, compared with NumPy references (``python -m infp selftest``)."""

from __future__ import annotations

import time

import numpy as np


def _conv2d_numpy(x, w, bias, stride, padding, dilation):
    n, c, h, wd = x.shape
    k, _, r, s = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    ho = (h + 2 * padding - dilation * (r - 1) - 1) // stride + 1
    wo = (wd + 2 * padding - dilation * (s - 1) - 1) // stride + 1
    y = np.zeros((n, k, ho, wo))
    for i in range(r):
        for j in range(s):
            patch = xp[:, :, i * dilation: i * dilation + stride * (ho - 1) + 1: stride,
                       j * dilation: j * dilation + stride * (wo - 1) + 1: stride]
            y += np.einsum("nchw,kc->nkhw", patch, w[:, :, i, j].astype(np.float64))
    if bias is not None:
        y += bias.astype(np.float64)[None, :, None, None]
    return y


def _report(name: str, got, want) -> bool:
    err = float(np.max(np.abs(np.asarray(got, np.complex128) - want)) / max(1.0, np.max(np.abs(want))))
    ok = err < 1e-4
    print(f"  {name:<34} shape {str(np.shape(got)):<18} max rel. difference {err:.2e}  "
          f"{'ok' if ok else 'MISMATCH'}")
    return ok


def run(seed: int = 0, threads: int = 0) -> int:
    import infp
    from infp import ops

    print(f"infp {infp.__version__}, libinfp {infp.library_version} from {infp.library_path}")
    rng = np.random.default_rng(seed)
    ok = True

    # Convolution: a batch of 2 RGB 32x32 frames through 8 3x3 filters, stride 1, padding 1.
    x = rng.standard_normal((2, 3, 32, 32), dtype=np.float32)
    w = rng.standard_normal((8, 3, 3, 3), dtype=np.float32) * 0.2
    b = rng.standard_normal(8, dtype=np.float32)
    t = time.perf_counter()
    y = ops.conv2d(x, w, b, stride=1, padding=1, threads=threads)
    t_fwd = time.perf_counter() - t
    print(f"conv2d x {x.shape} * w {w.shape} -> y {y.shape} in {t_fwd * 1e3:.2f} ms")
    ok &= _report("forward vs NumPy", y, _conv2d_numpy(x, w, b, 1, 1, 1))

    # Gradient of sum(y * dy): check by the adjoint identity <conv(x), dy> = <x, dx>, likewise w.
    dy = rng.standard_normal(y.shape, dtype=np.float32)
    dx, dw, db = ops.conv2d_backward(x, w, dy, stride=1, padding=1, threads=threads)
    lin = _conv2d_numpy(x, w, None, 1, 1, 1)
    ok &= _report("backward <x, dx> vs <y, dy>", np.sum(x.astype(np.float64) * dx), np.sum(lin * dy))
    ok &= _report("backward <w, dw> vs <y, dy>", np.sum(w.astype(np.float64) * dw), np.sum(lin * dy))
    ok &= _report("backward dbias vs sum(dy)", db, dy.sum(axis=(0, 2, 3), dtype=np.float64))

    # 2-D real FFT over the spatial axes of the output, and back.
    spec = ops.rfft2(y, axes=(2, 3))
    print(f"rfft2 of y over axes (2, 3) -> {spec.shape} {spec.dtype}")
    ok &= _report("rfft2 vs numpy.fft.rfft2", spec, np.fft.rfft2(y.astype(np.float64), axes=(2, 3)))
    back = ops.irfft2(spec, s=y.shape[2:], axes=(2, 3))
    ok &= _report("irfft2(rfft2(y)) vs y", back, y.astype(np.float64))
    dspec = rng.standard_normal(spec.shape) + 1j * rng.standard_normal(spec.shape)
    dy_fft = ops.rfft2_backward(dspec, y.shape, axes=(2, 3))
    lhs = np.sum(np.real(np.fft.rfft2(y.astype(np.float64), axes=(2, 3)) * np.conj(dspec)))
    ok &= _report("rfft2 backward <y, dx> vs <Y, dY>", np.sum(y.astype(np.float64) * dy_fft), lhs)

    print("selftest ok" if ok else "selftest FAILED: results differ from NumPy")
    return 0 if ok else 1
