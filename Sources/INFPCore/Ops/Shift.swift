/// Spatially shifted copies with zero fill (the SSPCAB reads of spec §2.3), differentiable.
extension NN {
    /// Shifts every H×W plane of x (rank ≥ 2): out[…, i, j] = x[…, i + dy, j + dx], or 0 where
    /// (i + dy, j + dx) lies outside the plane. Same shape as x. The SSPCAB fusion reads
    /// `shifted(x, dy: −2, dx: −2)` (conv1), `(+2, −2)` (conv2), `(−2, +2)` (conv3) and
    /// `(+2, +2)` (conv4), equal to zero-padding by 2 and cropping. The gradient is the
    /// opposite shift.
    public static func shifted(_ x: Tensor, dy: Int, dx: Int) -> Tensor {
        precondition(x.rank >= 2, "shifted needs rank ≥ 2, shape is \(x.shape)")
        let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
        let planes = h * w == 0 ? 0 : x.count / (h * w)

        func shift(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ sy: Int, _ sx: Int) {
            // Output columns j with 0 ≤ j + sx < w.
            let j0 = Swift.min(w, Swift.max(0, -sx)), j1 = Swift.max(j0, Swift.min(w, w - sx))
            let grain = Swift.max(1, Tensor.elementwiseGrain / Swift.max(1, h * w))
            Parallel.forChunks(planes, minChunk: grain) { r in
                for p in r {
                    let s = src + p * h * w, d = dst + p * h * w
                    for i in 0..<h {
                        let row = d + i * w, si = i + sy
                        guard si >= 0 && si < h else { row.update(repeating: 0, count: w); continue }
                        row.update(repeating: 0, count: j0)
                        if j1 > j0 { (row + j0).update(from: s + si * w + j0 + sx, count: j1 - j0) }
                        (row + j1).update(repeating: 0, count: w - j1)
                    }
                }
            }
        }
        let out = Tensor(uninitialized: x.shape)
        shift(x.data, out.data, dy, dx)
        return out.recorded(from: [x]) { g in
            let d = Tensor(uninitialized: g.shape)
            shift(g.data, d.data, -dy, -dx)
            return [d]
        }
    }
}
