/// Reshape (a view), permute, and other moves of data without arithmetic.
extension Tensor {
    /// The same values with another shape of equal count; one dimension may be -1.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let k = s.firstIndex(of: -1) {
            let rest = s.enumerated().filter { $0.offset != k }.reduce(1) { $0 * $1.element }
            s[k] = rest == 0 ? 0 : count / rest
        }
        precondition(s.reduce(1, *) == count, "cannot reshape \(shape) to \(newShape)")
        return Tensor(viewing: storage, shape: s).recorded(from: [self]) { [self] g in
            [Tensor(viewing: g.storage, shape: self.shape)]
        }
    }

    /// Reorders dimensions: output dimension i is input dimension `order[i]`.
    public func permuted(_ order: [Int]) -> Tensor {
        precondition(order.sorted() == Array(0..<rank), "permutation \(order) does not fit rank \(rank)")
        let out = Tensor(uninitialized: order.map { shape[$0] })
        Tensor.permute(self, order, into: out)
        let outShape = out.shape
        return out.recorded(from: [self]) { [self] g in
            var inverse = [Int](repeating: 0, count: order.count)
            for (i, o) in order.enumerated() { inverse[o] = i }
            let dx = Tensor(uninitialized: self.shape)
            Tensor.permute(Tensor(viewing: g.storage, shape: outShape), inverse, into: dx)
            return [dx]
        }
    }

    static func permute(_ x: Tensor, _ order: [Int], into out: Tensor) {
        let inStrides = Tensor.strides(of: x.shape)
        let gathered = order.map { inStrides[$0] }
        let zero = [Int](repeating: 0, count: order.count)
        let o = out.data, s = x.data
        Broadcast.forEach(out.shape, gathered, zero) { i, j, _ in o[i] = s[j] }
    }
}
