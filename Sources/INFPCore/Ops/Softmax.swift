import Glibc

/// Softmax along one axis, differentiable.
extension Tensor {
    /// exp(x − max) / Σ exp(x − max) along `axis` (negative counts from the end), numerically
    /// stable for any input range. Gradient: dx = y·(g − Σ_axis g·y).
    public func softmax(axis: Int) -> Tensor {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "softmax: axis \(axis) out of range for \(shape)")
        let n = shape[a]
        let inner = shape[(a + 1)...].reduce(1, *)
        let outer = shape[..<a].reduce(1, *)
        let lines = outer * inner
        let out = Tensor(uninitialized: shape)
        let x = data, y = out.data
        // One "line" is the n values at (o, ·, i), spaced `inner` apart.
        let grain = max(1, Tensor.elementwiseGrain / max(1, n))
        Parallel.forChunks(lines, minChunk: grain) { r in
            for line in r {
                let base = (line / inner) * n * inner + line % inner
                var m = -Float.infinity
                for k in 0..<n { m = Swift.max(m, x[base + k * inner]) }
                var total: Float = 0
                for k in 0..<n { let e = expf(x[base + k * inner] - m); y[base + k * inner] = e; total += e }
                let inv = 1 / total
                for k in 0..<n { y[base + k * inner] *= inv }
            }
        }
        return out.recorded(from: [self]) { [unowned out] g in
            let dx = Tensor(uninitialized: out.shape)
            let d = dx.data, gi = g.data, yi = out.data
            Parallel.forChunks(lines, minChunk: grain) { r in
                for line in r {
                    let base = (line / inner) * n * inner + line % inner
                    var dot: Float = 0
                    for k in 0..<n { dot += gi[base + k * inner] * yi[base + k * inner] }
                    for k in 0..<n { let j = base + k * inner; d[j] = yi[j] * (gi[j] - dot) }
                }
            }
            return [dx]
        }
    }
}
