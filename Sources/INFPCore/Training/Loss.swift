/// Training losses of INFP-SPEC §4, on predictions and targets (B, C, H, W) in [−1, 1].
public enum Loss {
    /// mean((P − G)²).
    public static func mse(_ p: Tensor, _ g: Tensor) -> Tensor { (p - g).square().mean() }

    /// Gradient-difference loss: mean(| |Dx G| − |Dx P| | + | |Dy G| − |Dy P| |), with forward
    /// differences against a zero border on the right / bottom.
    public static func gradient(_ p: Tensor, _ g: Tensor) -> Tensor {
        func dx(_ z: Tensor) -> Tensor { NN.shifted(z, dy: 0, dx: 1) - z }
        func dy(_ z: Tensor) -> Tensor { NN.shifted(z, dy: 1, dx: 0) - z }
        let gx = (dx(g).abs() - dx(p).abs()).abs()
        let gy = (dy(g).abs() - dy(p).abs()).abs()
        return (gx + gy).mean()
    }

    static let msssimWeights: [Float] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]

    /// Multi-scale SSIM exactly as the released code computes it (5 levels, Gaussian window
    /// min(11, h, w) with σ 1.5, data range from the prediction at each level, (x+1)/2
    /// normalisation, and Π_l cs_l^{w_l} · ssim_5^{w_5}).
    public static func msssim(_ p: Tensor, _ g: Tensor) -> Tensor {
        var p = p, g = g
        var cs: [Tensor] = []
        var lastSSIM: Tensor? = nil
        for level in 0..<msssimWeights.count {
            let (s, c) = ssim(p, g)
            cs.append(c)
            lastSSIM = s
            if level < msssimWeights.count - 1 { p = NN.avgPool2x2(p); g = NN.avgPool2x2(g) }
        }
        var out: Tensor? = nil
        let ssimTerm = lastSSIM!.pow(msssimWeights[4])
        for l in 0..<4 {
            let term = cs[l].pow(msssimWeights[l]) * ssimTerm
            out = out.map { $0 * term } ?? term
        }
        return out!
    }

    /// One SSIM level: ((mean ssim map + 1)/2, (mean contrast-structure + 1)/2).
    static func ssim(_ p: Tensor, _ g: Tensor) -> (Tensor, Tensor) {
        let n = min(11, p.shape[2], p.shape[3])
        let window = NN.gaussianWindow(size: n, sigma: 1.5)
        let maxVal: Float = p.maxValue > 128 ? 255 : 1
        let minVal: Float = p.minValue < -0.5 ? -1 : 0
        let range = maxVal - minVal
        let c1 = (0.01 * range) * (0.01 * range), c2 = (0.03 * range) * (0.03 * range)
        func filt(_ x: Tensor) -> Tensor { NN.separableFilter(x, kernel: window) }
        let mu1 = filt(p), mu2 = filt(g)
        let mu1sq = mu1.square(), mu2sq = mu2.square(), mu12 = mu1 * mu2
        let s11 = filt(p.square()) - mu1sq
        let s22 = filt(g.square()) - mu2sq
        let s12 = filt(p * g) - mu12
        let v1 = 2 * s12 + c2
        let v2 = s11 + s22 + c2
        let ssimMap = ((2 * mu12 + c1) * v1) / ((mu1sq + mu2sq + c1) * v2)
        return ((ssimMap.mean() + 1) * 0.5, ((v1 / v2).mean() + 1) * 0.5)
    }

    /// `official`: MSE + gradient + (1 − MS-SSIM)/2 + sqrt(MSE + 1e-8).
    public static func official(_ p: Tensor, _ g: Tensor) -> Tensor {
        let m = mse(p, g)
        return m + gradient(p, g) + (1 - msssim(p, g)) * 0.5 + (m + 1e-8).sqrt()
    }

    /// `paper`: α·MSE + (1 − α)·gradient.
    public static func paper(_ p: Tensor, _ g: Tensor, alpha: Float) -> Tensor {
        mse(p, g) * alpha + gradient(p, g) * (1 - alpha)
    }

    /// The loss a config asks for.
    public static func forConfig(_ c: ModelConfig, _ p: Tensor, _ g: Tensor) -> Tensor {
        c.loss == .official ? official(p, g) : paper(p, g, alpha: c.lossAlpha)
    }
}
