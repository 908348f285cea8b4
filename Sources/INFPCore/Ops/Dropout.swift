/// Channel dropout (`nn.Dropout2d`), differentiable.
extension NN {
    /// Dropout2d on x (N, C, …): each whole channel of each sample is zeroed with probability
    /// `p` and the others are scaled by 1/(1 − p), so the expectation is unchanged.
    /// Returns `x` itself when not training or when p == 0; p ≥ 1 zeroes everything.
    ///
    /// The mask draws one `rng.uniform()` per (sample, channel), sample-major, so a seed gives
    /// the same mask everywhere. The gradient is the output gradient times the same mask.
    public static func dropout2d(_ x: Tensor, p: Float, training: Bool, rng: inout Rng) -> Tensor {
        precondition(p >= 0 && p <= 1, "dropout2d: probability \(p) outside [0, 1]")
        guard training && p > 0 else { return x }
        precondition(x.rank >= 2, "dropout2d needs (N, C, …), shape is \(x.shape)")
        let planes = x.shape[0] * x.shape[1]
        let size = x.count / Swift.max(1, planes)
        let keepScale: Float = p >= 1 ? 0 : 1 / (1 - p)
        var mask = [Float](repeating: 0, count: planes)
        for i in 0..<planes { mask[i] = rng.uniform() < Double(p) ? 0 : keepScale }
        let maskCopy = mask
        func apply(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>) {
            let grain = Swift.max(1, Tensor.elementwiseGrain / Swift.max(1, size))
            maskCopy.withUnsafeBufferPointer { mk in
                Parallel.forChunks(planes, minChunk: grain) { r in
                    for q in r {
                        let s = mk[q], a = src + q * size, b = dst + q * size
                        if s == 0 { b.update(repeating: 0, count: size) } else { for k in 0..<size { b[k] = a[k] * s } }
                    }
                }
            }
        }
        let out = Tensor(uninitialized: x.shape)
        apply(x.data, out.data)
        return out.recorded(from: [x]) { g in
            let dx = Tensor(uninitialized: g.shape)
            apply(g.data, dx.data)
            return [dx]
        }
    }
}
