/// Joining, cutting and zero-padding tensors (copies), differentiable.
extension Tensor {
    /// Copies `rows` blocks of `length` floats from `src` (block stride `srcStride`) to `dst`
    /// (block stride `dstStride`); parallel when the total is large.
    fileprivate static func copyBlocks(rows: Int, length: Int,
                                       from src: UnsafeMutablePointer<Float>, stride srcStride: Int,
                                       to dst: UnsafeMutablePointer<Float>, stride dstStride: Int) {
        guard rows > 0, length > 0 else { return }
        let grain = Swift.max(1, Tensor.elementwiseGrain / length)
        Parallel.forChunks(rows, minChunk: grain) { r in
            for o in r { (dst + o * dstStride).update(from: src + o * srcStride, count: length) }
        }
    }

    /// Joins tensors along `axis` (negative counts from the end), as `torch.cat`. All tensors
    /// have the same rank and the same sizes except along `axis`. Each input's gradient is
    /// its slice of the output gradient.
    public static func concat(_ ts: [Tensor], axis: Int) -> Tensor {
        precondition(!ts.isEmpty, "concat: no tensors")
        let first = ts[0]
        let a = axis < 0 ? axis + first.rank : axis
        precondition(a >= 0 && a < first.rank, "concat: axis \(axis) out of range for \(first.shape)")
        for t in ts {
            precondition(t.rank == first.rank && (0..<first.rank).allSatisfy { $0 == a || t.shape[$0] == first.shape[$0] },
                         "concat: \(t.shape) does not fit \(first.shape) along axis \(a)")
        }
        var outShape = first.shape
        outShape[a] = ts.reduce(0) { $0 + $1.shape[a] }
        let inner = first.shape[(a + 1)...].reduce(1, *)
        let outer = first.shape[..<a].reduce(1, *)
        let outBlock = outShape[a] * inner
        var offsets: [Int] = []
        var offset = 0
        for t in ts { offsets.append(offset); offset += t.shape[a] * inner }
        let out = Tensor(uninitialized: outShape)
        for (t, off) in zip(ts, offsets) {
            let block = t.shape[a] * inner
            copyBlocks(rows: outer, length: block, from: t.data, stride: block, to: out.data + off, stride: outBlock)
        }
        let shapes = ts.map { $0.shape }
        return out.recorded(from: ts) { g in
            zip(ts, zip(shapes, offsets)).map { (t, so) -> Tensor? in
                guard t.needsGrad else { return nil }
                let (shape, off) = so
                let block = shape[a] * inner
                let dx = Tensor(uninitialized: shape)
                copyBlocks(rows: outer, length: block, from: g.data + off, stride: outBlock, to: dx.data, stride: block)
                return dx
            }
        }
    }

    /// The sub-tensor with indices `range` along `axis` (negative counts from the end), as a
    /// copy (`x.narrow(axis, start, length)` in torch). The gradient is zero outside the range.
    public func slice(axis: Int, range: Range<Int>) -> Tensor {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "slice: axis \(axis) out of range for \(shape)")
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[a],
                     "slice: range \(range) out of bounds for size \(shape[a]) of \(shape)")
        var outShape = shape
        outShape[a] = range.count
        let inner = shape[(a + 1)...].reduce(1, *)
        let outer = shape[..<a].reduce(1, *)
        let inBlock = shape[a] * inner, outBlock = range.count * inner, start = range.lowerBound * inner
        let out = Tensor(uninitialized: outShape)
        Tensor.copyBlocks(rows: outer, length: outBlock, from: data + start, stride: inBlock, to: out.data, stride: outBlock)
        let inShape = shape
        return out.recorded(from: [self]) { g in
            let dx = Tensor(zeros: inShape)
            Tensor.copyBlocks(rows: outer, length: outBlock, from: g.data, stride: outBlock, to: dx.data + start, stride: inBlock)
            return [dx]
        }
    }

    /// Zero padding of the last two dimensions (H, W) of a tensor of rank ≥ 2, as
    /// `F.pad(x, (left, right, top, bottom))`. The gradient crops the padding away.
    public func pad2d(top: Int, bottom: Int, left: Int, right: Int) -> Tensor {
        precondition(rank >= 2, "pad2d needs rank ≥ 2, shape is \(shape)")
        precondition(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "pad2d: negative padding")
        let h = shape[rank - 2], w = shape[rank - 1]
        let ho = h + top + bottom, wo = w + left + right
        var outShape = shape
        outShape[rank - 2] = ho
        outShape[rank - 1] = wo
        let planes = shape[..<(rank - 2)].reduce(1, *)
        let out = Tensor(zeros: outShape)
        let src = data, dst = out.data
        let grain = Swift.max(1, Tensor.elementwiseGrain / Swift.max(1, h * w))
        Parallel.forChunks(planes, minChunk: grain) { r in
            for p in r {
                for i in 0..<h {
                    (dst + p * ho * wo + (i + top) * wo + left).update(from: src + p * h * w + i * w, count: w)
                }
            }
        }
        let inShape = shape
        return out.recorded(from: [self]) { g in
            let dx = Tensor(uninitialized: inShape)
            let gs = g.data, d = dx.data
            Parallel.forChunks(planes, minChunk: grain) { r in
                for p in r {
                    for i in 0..<h {
                        (d + p * h * w + i * w).update(from: gs + p * ho * wo + (i + top) * wo + left, count: w)
                    }
                }
            }
            return [dx]
        }
    }
}
