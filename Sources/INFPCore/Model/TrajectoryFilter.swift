/// The trajectory filter (`filter`, a DFFormer dynamic filter, INFP-SPEC §2.5): a learned
/// global filter in the frequency domain, mixed from `filter_bases` complex weight bases by
/// routing weights computed from the input.
final class TrajectoryFilter {
    let mode: ModelConfig.FilterMode
    let complexWeights: Tensor  // (P, Q/2+1, N, 2)
    let pwconv1: Linear, act1: StarReLU
    let reweightFc1: Linear, reweightAct: StarReLU, reweightFc2: Linear
    let pwconv2: Linear
    let bases: Int, hiddenDim: Int

    /// `channels`, `height`, `width` of the decoder output it filters.
    init(_ scope: Scope, channels c: Int, height h: Int, width w: Int, _ cfg: ModelConfig) {
        mode = cfg.filterMode
        let (p, q, d) = mode == .official ? (c, h, w) : (h, w, c)
        let m = 2 * d
        bases = cfg.filterBases
        hiddenDim = m
        complexWeights = scope.parameter("complex_weights", scope.normal([p, q / 2 + 1, bases, 2], std: 0.02))
        pwconv1 = Linear(scope.child("pwconv1"), in: d, out: m, bias: false)
        act1 = StarReLU(scope.child("act1"))
        let r = scope.child("reweight")
        reweightFc1 = Linear(r.child("fc1"), in: d, out: d / 4, bias: false)
        reweightAct = StarReLU(r.child("act"))
        reweightFc2 = Linear(r.child("fc2"), in: d / 4, out: bases * m, bias: false)
        pwconv2 = Linear(scope.child("pwconv2"), in: m, out: d, bias: false)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        if !GradMode.isEnabled { return inference(x) }
        let b = x.shape[0]
        // Official mode reads the NCHW memory as channels-last (P=C, Q=H, D=W) without a permute.
        let y = mode == .official ? x : x.permuted([0, 2, 3, 1])
        let q = y.shape[2], d = y.shape[3]
        let routing = reweightFc2(reweightAct(reweightFc1(y.mean(axes: [1, 2]).reshaped([b, d]))))
            .reshaped([b, bases, hiddenDim]).softmax(axis: 1)
        let z = act1(pwconv1(y))
        let spectrum = FFT.rfft2(z, axes: (1, 2), norm: .ortho)
        let kernel = Complex.weightedBases(routing: routing, weights: complexWeights)
        let filtered = FFT.irfft2(Complex.multiply(spectrum, kernel), axes: (1, 2), lastSize: q, norm: .ortho)
        let out = pwconv2(filtered)
        return mode == .official ? out : out.permuted([0, 3, 1, 2])
    }

    /// The same function for inference (no gradients), to float rounding, with less work:
    /// - channels first: z is computed as (M, P, Q) planes (pwconv1 as W1·yᵀ, a GEMM flag, not
    ///   a copy), so each FFT is a contiguous P×Q transform: about 2× faster in FFTW than the
    ///   strided channels-last layout;
    /// - pwconv2 (real, on the channel axis) commutes with the inverse FFT over (P, Q), so it
    ///   runs on the spectrum and the inverse FFT transforms D channels instead of M = 2D;
    /// - the routed kernel is mixed bin by bin while multiplying (never stored), in place in the
    ///   spectrum, and both ortho scales go into pwconv2's GEMM.
    /// In spatial mode (D = C) the result is NCHW already; official mode (D = W) transposes
    /// the (D, P·Q) planes back to rows at the end.
    func inference(_ x: Tensor) -> Tensor {
        let official = mode == .official
        let b = x.shape[0]
        let (p, q, d) = official ? (x.shape[1], x.shape[2], x.shape[3]) : (x.shape[2], x.shape[3], x.shape[1])
        let m = hiddenDim, n = bases, h = q / 2 + 1, pq = p * q, ph = p * h
        let mean = official ? x.mean(axes: [1, 2]) : x.mean(axes: [2, 3])
        let routing = reweightFc2(reweightAct(reweightFc1(mean.reshaped([b, d])))).reshaped([b, n, m]).softmax(axis: 1)

        // z (B, M, P, Q) = StarReLU(W1 · y), y read as (P·Q × D) rows or (D × P·Q) planes.
        let z = Tensor(uninitialized: [b, m, p, q])
        for bi in 0..<b {
            let xb = x.data + bi * pq * d, zb = z.data + bi * m * pq
            if official {
                Gemm.sgemm(transB: true, m: m, n: pq, k: d, a: pwconv1.weight.data, lda: d, b: xb, ldb: d, c: zb, ldc: pq)
            } else {
                Gemm.sgemm(m: m, n: pq, k: d, a: pwconv1.weight.data, lda: d, b: xb, ldb: pq, c: zb, ldc: pq)
            }
        }
        let za = act1(z)

        // Spectrum (B, M, P, H) complex; the self-conjugate bins are real (their rounding noise
        // in Im is zeroed as FFT.rfft2 does).
        let spectrum = Scratch(b * m * ph * 2)
        defer { spectrum.release() }
        FFT.r2c(za.data, realShape: [b, m, p, q], axes: (2, 3), into: spectrum.pointer)
        // The bases as planes (j, re | im) over the P·H bins, so that mixing them is a run of
        // contiguous vector loops per channel.
        let basisPlanes = Scratch(2 * n * ph)
        defer { basisPlanes.release() }
        let wp = basisPlanes.pointer, w = complexWeights.data
        for i in 0..<ph { for j in 0..<n { wp[(2 * j) * ph + i] = w[(i * n + j) * 2]; wp[(2 * j + 1) * ph + i] = w[(i * n + j) * 2 + 1] } }
        let sp = spectrum.pointer, r = routing.data
        let k0s = p % 2 == 0 && p > 1 ? [0, p / 2] : [0], k1s = q % 2 == 0 && q > 1 ? [0, q / 2] : [0]
        Parallel.forChunks(b * m, minChunk: 4) { range in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * ph) { buf in
                let kr = buf.baseAddress!, ki = kr + ph
                for bm in range {
                    let row = sp + bm * ph * 2, rt = r + (bm / m) * n * m + bm % m
                    for k0 in k0s { for k1 in k1s { row[(k0 * h + k1) * 2 + 1] = 0 } }
                    // K = Σ_j routing[j, m] · w[·, ·, j], then spectrum · K in place.
                    for i in 0..<ph { kr[i] = 0; ki[i] = 0 }
                    for j in 0..<n {
                        let rj = rt[j * m], wr = wp + 2 * j * ph, wi = wr + ph
                        for i in 0..<ph { kr[i] += rj * wr[i]; ki[i] += rj * wi[i] }
                    }
                    for i in 0..<ph {
                        let sr = row[2 * i], si = row[2 * i + 1], a = kr[i], c = ki[i]
                        row[2 * i] = sr * a - si * c
                        row[2 * i + 1] = sr * c + si * a
                    }
                }
            }
        }

        // g (B, D, P, H) complex = W2 · product / (P·Q), then the inverse FFT of each channel.
        let g = Scratch(b * d * ph * 2)
        defer { g.release() }
        for bi in 0..<b {
            Gemm.sgemm(m: d, n: ph * 2, k: m, alpha: Float(1 / Double(pq)), a: pwconv2.weight.data, lda: m,
                       b: sp + bi * m * ph * 2, ldb: ph * 2, c: g.pointer + bi * d * ph * 2, ldc: ph * 2)
        }
        let planes = Tensor(uninitialized: [b, d, p, q])
        FFT.c2r(g.pointer, realShape: [b, d, p, q], axes: (2, 3), into: planes.data)
        if let bias = pwconv2.bias {
            for bi in 0..<b { for c in 0..<d { addScalar(bias.data[c], planes.data + (bi * d + c) * pq, pq) } }
        }
        if !official { return planes }
        let out = Tensor(uninitialized: [b, p, q, d])
        for bi in 0..<b { transpose(planes.data + bi * d * pq, rows: d, cols: pq, into: out.data + bi * pq * d) }
        return out
    }
}
