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
        let b = x.shape[0]
        // Official mode reads the NCHW memory as channels-last (P=C, Q=H, D=W) without a permute.
        let y = mode == .official ? x : x.permuted([0, 2, 3, 1])
        let q = y.shape[2], d = y.shape[3]
        let routing = reweightFc2(reweightAct(reweightFc1(y.mean(axes: [1, 2]).reshaped([b, d]))))
            .reshaped([b, bases, hiddenDim]).softmax(axis: 1)
        let z = act1(pwconv1(y))
        let out: Tensor
        if GradMode.isEnabled {
            let spectrum = FFT.rfft2(z, axes: (1, 2), norm: .ortho)
            let kernel = Complex.weightedBases(routing: routing, weights: complexWeights)
            let filtered = FFT.irfft2(Complex.multiply(spectrum, kernel), axes: (1, 2), lastSize: q, norm: .ortho)
            out = pwconv2(filtered)
        } else {
            out = filterAndProject(z, routing: routing)
        }
        return mode == .official ? out : out.permuted([0, 3, 1, 2])
    }

    /// pwconv2(irfft2(rfft2(z) · K)) for inference, with the same values to float rounding.
    /// pwconv2 is real and acts on the last axis, so it commutes with the inverse transform over
    /// (P, Q): it runs on the spectrum, and the inverse FFT then transforms D channels instead
    /// of M = 2D. K is mixed from the bases row by row as the product is formed (never stored),
    /// the product is written with real and imaginary parts in separate rows (the GEMM's
    /// layout, read by FFTW's split interface), and both ortho scales go into the GEMM's alpha.
    /// z: (B, P, Q, M), routing (B, N, M) → (B, P, Q, D).
    func filterAndProject(_ z: Tensor, routing: Tensor) -> Tensor {
        let (b, p, q, m) = (z.shape[0], z.shape[1], z.shape[2], z.shape[3])
        let h = q / 2 + 1, d = pwconv2.weight.shape[0], n = bases
        let rows = b * p * h
        let spectrum = Scratch(rows * m * 2)
        defer { spectrum.release() }
        FFT.r2c(z.data, realShape: z.shape, axes: (1, 2), into: spectrum.pointer)
        // The self-conjugate bins are real: their rounding noise in Im would leak into the output
        // where the training path zeroes it.
        for bi in 0..<b {
            for k0 in p % 2 == 0 && p > 1 ? [0, p / 2] : [0] {
                for k1 in q % 2 == 0 && q > 1 ? [0, q / 2] : [0] {
                    let s = spectrum.pointer + ((bi * p + k0) * h + k1) * m * 2
                    for i in 0..<m { s[2 * i + 1] = 0 }
                }
            }
        }
        // product (B·P·H rows of [re (M) | im (M)]) = spectrum · K
        let product = Scratch(rows * 2 * m)
        defer { product.release() }
        let w = complexWeights.data, r = routing.data, sp = spectrum.pointer, pr = product.pointer
        Parallel.forChunks(rows, minChunk: 8) { range in
            for row in range {
                let pq = row % (p * h), rt = r + (row / (p * h)) * n * m
                let wr = w + pq * n * 2
                let o = pr + row * 2 * m, s = sp + row * 2 * m
                let kr = o, ki = o + m
                for i in 0..<m { kr[i] = 0; ki[i] = 0 }
                for j in 0..<n {
                    let a = wr[2 * j], c = wr[2 * j + 1], rj = rt + j * m
                    for i in 0..<m { kr[i] += rj[i] * a; ki[i] += rj[i] * c }
                }
                for i in 0..<m {
                    let sr = s[2 * i], si = s[2 * i + 1], a = kr[i], c = ki[i]
                    kr[i] = sr * a - si * c
                    ki[i] = sr * c + si * a
                }
            }
        }
        // projected (rows·2 × D) = product · W2ᵀ / (P·Q)
        let projected = Scratch(rows * 2 * d)
        defer { projected.release() }
        Gemm.sgemm(transB: true, m: rows * 2, n: d, k: m, alpha: Float(1 / Double(p * q)),
                   a: pr, lda: m, b: pwconv2.weight.data, ldb: m, c: projected.pointer, ldc: d)
        let out = Tensor(uninitialized: [b, p, q, d])
        FFT.c2rSplit(projected.pointer, imOffset: d,
                     dims: [(p, h * 2 * d, q * d), (q, 2 * d, d)],
                     loops: [(b, p * h * 2 * d, p * q * d), (d, 1, 1)], into: out.data)
        if let bias = pwconv2.bias {
            for row in 0..<b * p * q { for i in 0..<d { out.data[row * d + i] += bias.data[i] } }
        }
        return out
    }
}
