import Glibc

/// Gaussian windows and separable "valid" filtering, for SSIM (spec §4), differentiable.
extension NN {
    /// The 1-D Gaussian window of `n` taps centred at floor(n/2):
    /// g[i] = exp(−(i − floor(n/2))² / (2σ²)), normalised to sum 1 (computed in Double).
    public static func gaussianWindow(size n: Int, sigma: Float) -> [Float] {
        precondition(n >= 1 && sigma > 0, "gaussianWindow: size \(n), sigma \(sigma)")
        let centre = Double(n / 2), s = Double(sigma)
        let g = (0..<n).map { i -> Double in
            let d = Double(i) - centre
            return Glibc.exp(-d * d / (2 * s * s))
        }
        let total = g.reduce(0, +)
        return g.map { Float($0 / total) }
    }

    /// Filters every H×W plane of x (rank ≥ 2; (N, C, H, W) in SSIM) with the 2-D kernel
    /// kernel ⊗ kernel (w[a][b] = kernel[a]·kernel[b]), "valid" (no padding), as a
    /// cross-correlation: out[i][j] = Σ_a Σ_b w[a][b]·x[i+a][j+b], output (H−n+1) × (W−n+1).
    /// This equals `F.conv2d(x, window, groups=C)` with the SSIM window. Computed separably
    /// (rows, then columns), in parallel over planes. Gradient for x.
    public static func separableFilter(_ x: Tensor, kernel: [Float]) -> Tensor {
        precondition(x.rank >= 2, "separableFilter needs rank ≥ 2, shape is \(x.shape)")
        let n = kernel.count
        let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
        precondition(n >= 1 && n <= h && n <= w, "separableFilter: kernel of \(n) taps does not fit \(x.shape)")
        let ho = h - n + 1, wo = w - n + 1
        let planes = x.count / (h * w)
        var outShape = x.shape
        outShape[x.rank - 2] = ho
        outShape[x.rank - 1] = wo
        let out = Tensor(uninitialized: outShape)
        let grain = Swift.max(1, Tensor.elementwiseGrain / Swift.max(1, h * w * n))
        let src = x.data, dst = out.data
        kernel.withUnsafeBufferPointer { k in
            Parallel.forChunks(planes, minChunk: grain) { r in
                // Row pass into tmp (h × wo), then column pass into the output.
                let tmp = UnsafeMutablePointer<Float>.allocate(capacity: h * wo)
                defer { tmp.deallocate() }
                for p in r {
                    let plane = src + p * h * w
                    for i in 0..<h {
                        let row = plane + i * w, t = tmp + i * wo
                        for j in 0..<wo {
                            var acc: Float = 0
                            for a in 0..<n { acc += k[a] * row[j + a] }
                            t[j] = acc
                        }
                    }
                    let o = dst + p * ho * wo
                    for i in 0..<ho {
                        let orow = o + i * wo
                        orow.update(repeating: 0, count: wo)
                        for a in 0..<n {
                            let ka = k[a], t = tmp + (i + a) * wo
                            for j in 0..<wo { orow[j] += ka * t[j] }
                        }
                    }
                }
            }
        }
        let inShape = x.shape
        return out.recorded(from: [x]) { g in
            // Adjoint: spread columns back (ho → h rows), then rows (wo → w columns).
            let dx = Tensor(zeros: inShape)
            let gs = g.data, d = dx.data
            kernel.withUnsafeBufferPointer { k in
                Parallel.forChunks(planes, minChunk: grain) { r in
                    let tmp = UnsafeMutablePointer<Float>.allocate(capacity: h * wo)
                    defer { tmp.deallocate() }
                    for p in r {
                        tmp.update(repeating: 0, count: h * wo)
                        let gp = gs + p * ho * wo
                        for i in 0..<ho {
                            let grow = gp + i * wo
                            for a in 0..<n {
                                let ka = k[a], t = tmp + (i + a) * wo
                                for j in 0..<wo { t[j] += ka * grow[j] }
                            }
                        }
                        let plane = d + p * h * w
                        for i in 0..<h {
                            let row = plane + i * w, t = tmp + i * wo
                            for j in 0..<wo {
                                let v = t[j]
                                for a in 0..<n { row[j + a] += k[a] * v }
                            }
                        }
                    }
                }
            }
            return [dx]
        }
    }
}
