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
        let spectrum = FFT.rfft2(z, axes: (1, 2), norm: .ortho)
        let kernel = Complex.weightedBases(routing: routing, weights: complexWeights)
        let filtered = FFT.irfft2(Complex.multiply(spectrum, kernel), axes: (1, 2), lastSize: q, norm: .ortho)
        let out = pwconv2(filtered)
        return mode == .official ? out : out.permuted([0, 3, 1, 2])
    }
}
