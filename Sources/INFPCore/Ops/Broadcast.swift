/// NumPy-style broadcasting of shapes (aligned at the right; a dimension of 1 stretches).
enum Broadcast {
    static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let r = max(a.count, b.count)
        var out = [Int](repeating: 1, count: r)
        for i in 0..<r {
            let da = i < r - a.count ? 1 : a[i - (r - a.count)]
            let db = i < r - b.count ? 1 : b[i - (r - b.count)]
            if da != db && da != 1 && db != 1 { return nil }
            out[i] = max(da, db)
        }
        return out
    }

    /// Strides of `shape` viewed inside `outShape` (0 along broadcast dimensions).
    static func strides(of shape: [Int], in outShape: [Int]) -> [Int] {
        let own = Tensor.strides(of: shape)
        let offset = outShape.count - shape.count
        return (0..<outShape.count).map { i in
            i < offset || shape[i - offset] == 1 ? 0 : own[i - offset]
        }
    }

    /// Visits every output position with the matching offsets into a and b:
    /// body(outIndex, aOffset, bOffset). The innermost dimension is looped directly.
    static func forEach(_ outShape: [Int], _ sa: [Int], _ sb: [Int],
                        _ body: (Int, Int, Int) -> Void) {
        forEach(outShape, sa, sb, rows: 0..<rows(outShape), body)
    }

    /// Rows (runs of the innermost dimension) of `outShape`.
    static func rows(_ outShape: [Int]) -> Int {
        outShape.isEmpty ? 1 : outShape.dropLast().reduce(1, *) * (outShape.last! == 0 ? 0 : 1)
    }

    /// forEach restricted to the rows `rows` (of the innermost dimension), so that threads can
    /// share one broadcast loop.
    static func forEach(_ outShape: [Int], _ sa: [Int], _ sb: [Int], rows: Range<Int>,
                        _ body: (Int, Int, Int) -> Void) {
        let r = outShape.count
        if rows.isEmpty || outShape.contains(0) { return }
        if r == 0 { body(0, 0, 0); return }
        let inner = outShape[r - 1], ia = sa[r - 1], ib = sb[r - 1]
        var index = [Int](repeating: 0, count: r)
        var o = rows.lowerBound * inner, offA = 0, offB = 0
        var rem = rows.lowerBound
        for d in stride(from: r - 2, through: 0, by: -1) {
            index[d] = rem % outShape[d]; rem /= outShape[d]
            offA += index[d] * sa[d]; offB += index[d] * sb[d]
        }
        let total = rows.upperBound * inner
        while o < total {
            for j in 0..<inner { body(o + j, offA + j * ia, offB + j * ib) }
            o += inner
            // Advance the outer multi-index.
            var d = r - 2
            while d >= 0 {
                index[d] += 1
                offA += sa[d]; offB += sb[d]
                if index[d] < outShape[d] { break }
                offA -= sa[d] * outShape[d]; offB -= sb[d] * outShape[d]
                index[d] = 0
                d -= 1
            }
        }
    }
}

extension Tensor {
    /// Sums this tensor down to `target` (the inverse of broadcasting), for gradients.
    func sumToShape(_ target: [Int]) -> Tensor {
        if target == shape { return self }
        if let out = sumToShapeOneRun(target) { return out }
        let out = Tensor(zeros: target)
        let st = Broadcast.strides(of: target, in: shape)
        let zero = [Int](repeating: 0, count: shape.count)
        let o = out.data, s = data
        Broadcast.forEach(shape, st, zero) { i, t, _ in o[t] += s[i] }
        return out
    }
}

extension Tensor {
    /// sumToShape when the summed dimensions (size-1 ones ignored) form one run: the tensor is
    /// then (outer, summed, inner) and the sum runs over whole rows (channel means of NCHW
    /// maps, bias gradients). Nil for other patterns.
    func sumToShapeOneRun(_ target: [Int]) -> Tensor? {
        guard target.count <= rank else { return nil }
        let padded = [Int](repeating: 1, count: rank - target.count) + target
        var outer = 1, summed = 1, inner = 1
        var phase = 0  // 0: before the run, 1: in it, 2: after it
        for (n, t) in zip(shape, padded) where n != 1 {
            let reduce = t == 1
            if reduce && phase == 2 { return nil }
            if reduce { phase = 1; summed *= n } else if phase == 0 { outer *= n } else { phase = 2; inner *= n }
            if !reduce && t != n { return nil }
        }
        let out = Tensor(uninitialized: target)
        let o = out.data, s = data
        if inner == 1 {
            for i in 0..<outer { o[i] = sumFloats(s + i * summed, summed) }
            return out
        }
        o.initialize(repeating: 0, count: outer * inner)
        for i in 0..<outer {
            let dst = o + i * inner
            for r in 0..<summed {
                let row = s + (i * summed + r) * inner
                for j in 0..<inner { dst[j] += row[j] }
            }
        }
        return out
    }
}
