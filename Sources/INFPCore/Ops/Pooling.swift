/// Spatial pooling over the last two dimensions, differentiable.
///
/// Both pools accept any tensor of rank ≥ 2 and pool each H×W plane of the leading
/// dimensions independently (N, C, H, W in the model), in parallel over planes.
extension NN {
    /// Max pooling with kernel 3, stride 2, padding 1, as `nn.MaxPool2d(3, 2, 1)`: padding
    /// counts as −∞, the output is floor((H + 2 − 3)/2) + 1 by floor((W + 2 − 3)/2) + 1.
    /// The gradient goes to the position of the maximum (the first in row-major window
    /// order on ties, as PyTorch's CPU kernel).
    public static func maxPool3x3s2p1(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2, "maxPool3x3s2p1 needs rank ≥ 2, shape is \(x.shape)")
        let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
        precondition(h >= 1 && w >= 1, "maxPool3x3s2p1: empty plane \(x.shape)")
        let ho = (h - 1) / 2 + 1, wo = (w - 1) / 2 + 1
        let planes = x.count / (h * w)
        var outShape = x.shape
        outShape[x.rank - 2] = ho
        outShape[x.rank - 1] = wo
        let out = Tensor(uninitialized: outShape)
        // Offset (within its plane) of the input element each output took.
        let recording = GradMode.isEnabled && x.needsGrad
        var argmax = [Int32](repeating: 0, count: recording ? out.count : 0)
        let src = x.data, dst = out.data
        let grain = Swift.max(1, Tensor.elementwiseGrain / (h * w))
        argmax.withUnsafeMutableBufferPointer { am in
            Parallel.forChunks(planes, minChunk: grain) { r in
                for p in r {
                    let plane = src + p * h * w
                    for oi in 0..<ho {
                        let i0 = Swift.max(0, 2 * oi - 1), i1 = Swift.min(h, 2 * oi + 2)
                        for oj in 0..<wo {
                            let j0 = Swift.max(0, 2 * oj - 1), j1 = Swift.min(w, 2 * oj + 2)
                            var best = -Float.infinity, at = i0 * w + j0
                            for i in i0..<i1 {
                                for j in j0..<j1 {
                                    let v = plane[i * w + j]
                                    if v > best || v.isNaN { best = v; at = i * w + j; if v.isNaN { break } }
                                }
                                if best.isNaN { break }
                            }
                            let o = p * ho * wo + oi * wo + oj
                            dst[o] = best
                            if recording { am[o] = Int32(at) }
                        }
                    }
                }
            }
        }
        let inShape = x.shape
        return out.recorded(from: [x]) { g in
            let dx = Tensor(zeros: inShape)
            let d = dx.data, gs = g.data
            argmax.withUnsafeBufferPointer { am in
                Parallel.forChunks(planes, minChunk: grain) { r in
                    for p in r {
                        let plane = d + p * h * w
                        for o in (p * ho * wo)..<((p + 1) * ho * wo) { plane[Int(am[o])] += gs[o] }
                    }
                }
            }
            return [dx]
        }
    }

    /// Average pooling with kernel 2 and stride 2, as `F.avg_pool2d(x, 2)`: output H/2 by W/2
    /// (floor); a trailing odd row or column is ignored (and gets zero gradient).
    public static func avgPool2x2(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2, "avgPool2x2 needs rank ≥ 2, shape is \(x.shape)")
        let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1]
        let ho = h / 2, wo = w / 2
        precondition(ho >= 1 && wo >= 1, "avgPool2x2: plane \(h)×\(w) is smaller than the kernel")
        let planes = x.count / (h * w)
        var outShape = x.shape
        outShape[x.rank - 2] = ho
        outShape[x.rank - 1] = wo
        let out = Tensor(uninitialized: outShape)
        let src = x.data, dst = out.data
        let grain = Swift.max(1, Tensor.elementwiseGrain / (h * w))
        Parallel.forChunks(planes, minChunk: grain) { r in
            for p in r {
                let plane = src + p * h * w
                for oi in 0..<ho {
                    let r0 = plane + 2 * oi * w, r1 = r0 + w
                    let o = dst + p * ho * wo + oi * wo
                    for oj in 0..<wo {
                        o[oj] = (r0[2 * oj] + r0[2 * oj + 1] + r1[2 * oj] + r1[2 * oj + 1]) * 0.25
                    }
                }
            }
        }
        let inShape = x.shape
        return out.recorded(from: [x]) { g in
            let dx = Tensor(zeros: inShape)
            let d = dx.data, gs = g.data
            Parallel.forChunks(planes, minChunk: grain) { r in
                for p in r {
                    let plane = d + p * h * w
                    for oi in 0..<ho {
                        let r0 = plane + 2 * oi * w, r1 = r0 + w
                        let gRow = gs + p * ho * wo + oi * wo
                        for oj in 0..<wo {
                            let v = gRow[oj] * 0.25
                            r0[2 * oj] = v; r0[2 * oj + 1] = v; r1[2 * oj] = v; r1[2 * oj + 1] = v
                        }
                    }
                }
            }
            return [dx]
        }
    }
}
