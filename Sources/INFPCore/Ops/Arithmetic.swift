/// Element-wise arithmetic with broadcasting, and scalar forms.
extension Tensor {
    private static func binary(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        if a.shape == b.shape {
            let out = Tensor(uninitialized: a.shape)
            let o = out.data, x = a.data, y = b.data
            Parallel.forChunks(a.count, minChunk: Tensor.elementwiseGrain) { r in
                for i in r { o[i] = f(x[i], y[i]) }
            }
            return out
        }
        guard let shape = Broadcast.shape(a.shape, b.shape) else {
            preconditionFailure("shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let out = Tensor(uninitialized: shape)
        let o = out.data, x = a.data, y = b.data
        let sa = Broadcast.strides(of: a.shape, in: shape), sb = Broadcast.strides(of: b.shape, in: shape)
        let rows = Broadcast.rows(shape), inner = max(1, shape.last ?? 1)
        Parallel.forChunks(rows, minChunk: max(1, Tensor.elementwiseGrain / inner)) { r in
            Broadcast.forEach(shape, sa, sb, rows: r) { i, ia, ib in o[i] = f(x[ia], y[ib]) }
        }
        return out
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, +).recorded(from: [a, b]) { g in [g.sumToShape(a.shape), g.sumToShape(b.shape)] }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, -).recorded(from: [a, b]) { g in [g.sumToShape(a.shape), (-g.detached()).sumToShape(b.shape)] }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, *).recorded(from: [a, b]) { g in
            [a.needsGrad ? binary(g, b, *).sumToShape(a.shape) : nil,
             b.needsGrad ? binary(g, a, *).sumToShape(b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, /).recorded(from: [a, b]) { g in
            [a.needsGrad ? binary(g, b, /).sumToShape(a.shape) : nil,
             b.needsGrad ? binary(binary(g, a, *), b, { x, y in -x / (y * y) }).sumToShape(b.shape) : nil]
        }
    }

    public static prefix func - (a: Tensor) -> Tensor { a.map({ -$0 }) { _, _, g in -g } }

    public static func + (a: Tensor, s: Float) -> Tensor { a.map({ $0 + s }) { _, _, g in g } }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.map({ $0 * s }) { _, _, g in g * s } }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static func - (s: Float, a: Tensor) -> Tensor { a.map({ s - $0 }) { _, _, g in -g } }

    /// Applies `f` element-wise; `df(x, y, g)` gives the input gradient from input x,
    /// output y and output gradient g.
    public func map(_ f: (Float) -> Float, derivative df: @escaping (Float, Float, Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let o = out.data, x = data
        Parallel.forChunks(count, minChunk: Tensor.elementwiseGrain) { r in
            for i in r { o[i] = f(x[i]) }
        }
        return out.recorded(from: [self]) { [self, unowned out] g in
            let dx = Tensor(uninitialized: self.shape)
            let d = dx.data, gi = g.data, xi = self.data, yi = out.data
            Parallel.forChunks(self.count, minChunk: Tensor.elementwiseGrain) { r in
                for i in r { d[i] = df(xi[i], yi[i], gi[i]) }
            }
            return [dx]
        }
    }
}
