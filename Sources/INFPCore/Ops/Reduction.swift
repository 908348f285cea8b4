/// Sums and means over all elements or chosen axes.
extension Tensor {
    /// Sum of all elements, as a one-element tensor of shape [1].
    public func sum() -> Tensor {
        var acc: Double = 0
        let x = data
        for i in 0..<count { acc += Double(x[i]) }
        return Tensor(shape: [1], values: [Float(acc)]).recorded(from: [self]) { [self] g in
            [Tensor(repeating: g.data[0], shape: self.shape)]
        }
    }

    /// Mean of all elements, shape [1].
    public func mean() -> Tensor { sum() * (1 / Float(max(1, count))) }

    /// Sum over `axes`, keeping them as size-1 dimensions.
    public func sum(axes: [Int]) -> Tensor {
        var outShape = shape
        for a in axes { precondition(a >= 0 && a < rank, "axis \(a) out of range for \(shape)"); outShape[a] = 1 }
        let out = sumToShape(outShape)
        let result = out === self ? copy() : out
        return result.recorded(from: [self]) { [self] g in
            let dx = Tensor(uninitialized: self.shape)
            let d = dx.data, s = g.data
            let zero = [Int](repeating: 0, count: self.rank)
            Broadcast.forEach(self.shape, Broadcast.strides(of: outShape, in: self.shape), zero) { i, j, _ in d[i] = s[j] }
            return [dx]
        }
    }

    /// Mean over `axes`, keeping them as size-1 dimensions.
    public func mean(axes: [Int]) -> Tensor {
        let n = axes.reduce(1) { $0 * shape[$1] }
        return sum(axes: axes) * (1 / Float(max(1, n)))
    }

    /// Largest and smallest element (plain values, not differentiated).
    public var maxValue: Float { buffer.max() ?? 0 }
    public var minValue: Float { buffer.min() ?? 0 }
}
