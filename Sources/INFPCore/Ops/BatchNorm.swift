import Glibc

/// Batch normalisation (`nn.BatchNorm2d`), differentiable.
extension NN {
    /// Batch normalisation of x (N, C, H, W) — any rank ≥ 2 with channels on axis 1 works —
    /// with per-channel affine `weight` and `bias` (shape [C]) and running statistics
    /// `runningMean`, `runningVar` (shape [C], not differentiated), as `F.batch_norm`.
    ///
    /// - Training: normalises with the batch mean and the biased batch variance over N, H, W,
    ///   and updates the running statistics in place: running = (1 − momentum)·running +
    ///   momentum·batch, using the unbiased variance (m/(m−1)) for `runningVar`, as PyTorch.
    ///   Needs more than one value per channel. The gradient is the full one, through the
    ///   batch statistics.
    /// - Evaluation: normalises with the running statistics (read when called); the gradient
    ///   is that of the resulting per-channel affine map.
    ///
    /// Statistics are accumulated in Double; channels run in parallel.
    public static func batchNorm2d(_ x: Tensor, weight: Tensor, bias: Tensor,
                                   runningMean: Tensor, runningVar: Tensor, training: Bool,
                                   momentum: Float = 0.1, eps: Float = 1e-5) -> Tensor {
        precondition(x.rank >= 2, "batchNorm2d needs (N, C, …), shape is \(x.shape)")
        let n = x.shape[0], c = x.shape[1]
        let hw = x.shape[2...].reduce(1, *)
        for (name, t) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
            precondition(t.count == c, "batchNorm2d: \(name) \(t.shape) does not fit \(c) channels of \(x.shape)")
        }
        let m = n * hw
        precondition(!training || m > 1, "batchNorm2d: training needs more than one value per channel, shape \(x.shape)")
        let xs = x.data, ws = weight.data, bs = bias.data, rm = runningMean.data, rv = runningVar.data
        let out = Tensor(uninitialized: x.shape)
        let ys = out.data
        let channelStride = c * hw
        // Per-channel mean and 1/√(var + eps) used for normalising (saved for backward).
        var mean = [Double](repeating: 0, count: c), invStd = [Double](repeating: 0, count: c)
        let grain = Swift.max(1, Tensor.elementwiseGrain / Swift.max(1, m))
        OpProfile.measure(training ? "bn.fwd.train" : "bn.fwd.eval") {
        mean.withUnsafeMutableBufferPointer { mp in
            invStd.withUnsafeMutableBufferPointer { ip in
                Parallel.forChunks(c, minChunk: grain) { r in
                    for ch in r {
                        let mu: Double, variance: Double
                        if training {
                            var s = 0.0
                            for b in 0..<n {
                                let p = xs + b * channelStride + ch * hw
                                for k in 0..<hw { s += Double(p[k]) }
                            }
                            mu = s / Double(m)
                            var v = 0.0
                            for b in 0..<n {
                                let p = xs + b * channelStride + ch * hw
                                for k in 0..<hw { let d = Double(p[k]) - mu; v += d * d }
                            }
                            variance = v / Double(m)
                            let mom = Double(momentum)
                            rm[ch] = Float((1 - mom) * Double(rm[ch]) + mom * mu)
                            rv[ch] = Float((1 - mom) * Double(rv[ch]) + mom * v / Double(m - 1))
                        } else {
                            mu = Double(rm[ch])
                            variance = Double(rv[ch])
                        }
                        let inv = 1 / (variance + Double(eps)).squareRoot()
                        mp[ch] = mu; ip[ch] = inv
                        let scale = Float(Double(ws[ch]) * inv)
                        let shift = Float(Double(bs[ch]) - mu * Double(ws[ch]) * inv)
                        for b in 0..<n {
                            let off = b * channelStride + ch * hw
                            let p = xs + off, q = ys + off
                            for k in 0..<hw { q[k] = p[k] * scale + shift }
                        }
                    }
                }
            }
        }
        }
        return out.recorded(from: [x, weight, bias]) { g in OpProfile.measure("bn.bwd") {
            let gs = g.data
            let dx = x.needsGrad ? Tensor(uninitialized: x.shape) : nil
            let dw = weight.needsGrad ? Tensor(uninitialized: weight.shape) : nil
            let db = bias.needsGrad ? Tensor(uninitialized: bias.shape) : nil
            let dxs = dx?.data, dws = dw?.data, dbs = db?.data
            Parallel.forChunks(c, minChunk: grain) { r in
                for ch in r {
                    let mu = mean[ch], inv = invStd[ch]
                    var sumG = 0.0, sumGX = 0.0  // Σ g and Σ g·x̂ over the channel
                    for b in 0..<n {
                        let off = b * channelStride + ch * hw
                        let p = xs + off, q = gs + off
                        for k in 0..<hw {
                            let gv = Double(q[k])
                            sumG += gv
                            sumGX += gv * (Double(p[k]) - mu) * inv
                        }
                    }
                    dws?[ch] = Float(sumGX)
                    dbs?[ch] = Float(sumG)
                    guard let dxs else { continue }
                    let w = Double(ws[ch])
                    if training {
                        // dx = w·inv·(g − mean(g) − x̂·mean(g·x̂))
                        let a = Float(w * inv)
                        let meanG = Float(sumG / Double(m)), meanGX = Float(sumGX / Double(m))
                        let fmu = Float(mu), finv = Float(inv)
                        for b in 0..<n {
                            let off = b * channelStride + ch * hw
                            let p = xs + off, q = gs + off, d = dxs + off
                            for k in 0..<hw {
                                let xhat = (p[k] - fmu) * finv
                                d[k] = a * (q[k] - meanG - xhat * meanGX)
                            }
                        }
                    } else {
                        let a = Float(w * inv)
                        for b in 0..<n {
                            let off = b * channelStride + ch * hw
                            let q = gs + off, d = dxs + off
                            for k in 0..<hw { d[k] = a * q[k] }
                        }
                    }
                }
            }
            return [dx, dw, db]
        } }
    }

    /// ReLU(batchNorm2d(x)) in evaluation mode, in one pass and without recording: the
    /// inference form of the pre-activation and decoder BN + ReLU pairs (same per-channel
    /// scale and shift as `batchNorm2d`).
    static func batchNormReluInference(_ x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor,
                                       runningVar: Tensor, eps: Float = 1e-5) -> Tensor {
        precondition(x.rank >= 2 && [weight, bias, runningMean, runningVar].allSatisfy { $0.count == x.shape[1] },
                     "batchNormReluInference: parameters do not fit \(x.shape)")
        let n = x.shape[0], c = x.shape[1], hw = x.shape[2...].reduce(1, *)
        let xs = x.data, ws = weight.data, bs = bias.data, rm = runningMean.data, rv = runningVar.data
        let out = Tensor(uninitialized: x.shape)
        let ys = out.data
        Parallel.forChunks(n * c, minChunk: Swift.max(1, Tensor.elementwiseGrain / Swift.max(1, hw))) { r in
            for plane in r {
                let ch = plane % c
                let mu = Double(rm[ch]), inv = 1 / (Double(rv[ch]) + Double(eps)).squareRoot()
                let scale = Float(Double(ws[ch]) * inv)
                let shift = Float(Double(bs[ch]) - mu * Double(ws[ch]) * inv)
                let p = xs + plane * hw, q = ys + plane * hw
                for k in 0..<hw { let v = p[k] * scale + shift; q[k] = v > 0 ? v : 0 }
            }
        }
        return out
    }
}
