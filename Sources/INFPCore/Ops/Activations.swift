import Glibc

/// Element-wise activations and math functions, differentiable.
///
/// Each op computes its output eagerly; large tensors are processed in parallel chunks
/// (`Parallel.forChunks`), small ones on the calling thread.
extension Tensor {
    /// Elements per chunk below which element-wise loops stay on one thread.
    static let elementwiseGrain = 1 << 15

    /// y = f(x) element-wise, with input gradient df(x, y, g); parallel for large tensors.
    fileprivate func pointwise(_ f: (Float) -> Float,
                               _ df: @escaping (Float, Float, Float) -> Float) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let x = data, y = out.data
        Parallel.forChunks(count, minChunk: Tensor.elementwiseGrain) { r in
            for i in r { y[i] = f(x[i]) }
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

    /// Rectified linear unit, max(0, x). The gradient at 0 is 0 (as PyTorch).
    public func relu() -> Tensor {
        let out = Tensor(uninitialized: shape)
        let x = data, y = out.data
        OpProfile.measure("relu.fwd") {
            Parallel.forChunks(count, minChunk: Tensor.elementwiseGrain) { r in
                for i in r { let v = x[i]; y[i] = v > 0 ? v : 0 }
            }
        }
        return out.recorded(from: [self]) { [unowned out] g in OpProfile.measure("relu.bwd") {
            let dx = Tensor(uninitialized: out.shape)
            let d = dx.data, gi = g.data, yi = out.data
            Parallel.forChunks(out.count, minChunk: Tensor.elementwiseGrain) { r in
                for i in r { let gv = gi[i]; d[i] = yi[i] > 0 ? gv : 0 }  // unconditional loads: vectorised
            }
            return [dx]
        } }
    }

    /// Leaky ReLU: x for x > 0, slope·x otherwise (torch `leaky_relu(x, slope)`).
    public func leakyRelu(_ slope: Float) -> Tensor {
        pointwise({ $0 > 0 ? $0 : slope * $0 }) { x, _, g in x > 0 ? g : slope * g }
    }

    /// Exact GELU, x·Φ(x) = ½·x·(1 + erf(x/√2)) (torch `gelu`, approximate="none").
    public func gelu() -> Tensor {
        let invSqrt2: Float = 0.70710678118654752
        let invSqrt2Pi: Float = 0.39894228040143268
        return pointwise({ 0.5 * $0 * (1 + erff($0 * invSqrt2)) }) { x, _, g in
            let cdf = 0.5 * (1 + erff(x * invSqrt2))
            let pdf = invSqrt2Pi * expf(-0.5 * x * x)
            return g * (cdf + x * pdf)
        }
    }

    /// Logistic sigmoid 1/(1 + e^−x), computed without overflow for large |x|.
    public func sigmoid() -> Tensor {
        pointwise({ x in
            if x >= 0 { return 1 / (1 + expf(-x)) }
            let e = expf(x)
            return e / (1 + e)
        }) { _, y, g in g * y * (1 - y) }
    }

    /// Natural exponential e^x.
    public func exp() -> Tensor {
        pointwise({ expf($0) }) { _, y, g in g * y }
    }

    /// Natural logarithm (for positive inputs).
    public func log() -> Tensor {
        pointwise({ logf($0) }) { x, _, g in g / x }
    }

    /// Square root (for non-negative inputs; the gradient is infinite at 0).
    public func sqrt() -> Tensor {
        pointwise({ sqrtf($0) }) { _, y, g in g / (2 * y) }
    }

    /// Absolute value; the gradient is sign(x), 0 at 0.
    public func abs() -> Tensor {
        pointwise({ $0 < 0 ? -$0 : $0 }) { x, _, g in x > 0 ? g : (x < 0 ? -g : 0) }
    }

    /// x².
    public func square() -> Tensor {
        pointwise({ $0 * $0 }) { x, _, g in 2 * x * g }
    }

    /// x^e element-wise, for positive bases (the gradient is e·x^(e−1)).
    public func pow(_ e: Float) -> Tensor {
        pointwise({ powf($0, e) }) { x, _, g in g * e * powf(x, e - 1) }
    }

    /// Cosine (radians).
    public func cos() -> Tensor {
        pointwise({ cosf($0) }) { x, _, g in -g * sinf(x) }
    }

    /// Sine (radians).
    public func sin() -> Tensor {
        pointwise({ sinf($0) }) { x, _, g in g * cosf(x) }
    }
}

extension NN {
    /// StarReLU (MetaFormer / DFFormer): s·ReLU(x)² + b, with learnable scalars `scale` (s)
    /// and `bias` (b), each a tensor of shape [1]. Gradients flow to x, scale and bias.
    public static func starRelu(_ x: Tensor, scale: Tensor, bias: Tensor) -> Tensor {
        precondition(scale.count == 1 && bias.count == 1,
                     "starRelu: scale \(scale.shape) and bias \(bias.shape) must hold one value")
        let s = scale.data[0], b = bias.data[0]
        let out = Tensor(uninitialized: x.shape)
        let xi = x.data, y = out.data
        Parallel.forChunks(x.count, minChunk: Tensor.elementwiseGrain) { r in
            for i in r { let v = xi[i] > 0 ? xi[i] : 0; y[i] = s * v * v + b }
        }
        return out.recorded(from: [x, scale, bias]) { g in
            let n = x.count, gi = g.data
            var dx: Tensor? = nil
            if x.needsGrad {
                let t = Tensor(uninitialized: x.shape)
                let d = t.data, twoS = 2 * s
                Parallel.forChunks(n, minChunk: Tensor.elementwiseGrain) { r in
                    for i in r { let v = twoS * xi[i] * gi[i]; d[i] = xi[i] > 0 ? v : 0 }  // vectorised select
                }
                dx = t
            }
            // Σ g·relu(x)² and Σ g, in fixed chunks so the result does not depend on threads.
            let chunk = Tensor.elementwiseGrain
            let chunks = max(1, (n + chunk - 1) / chunk)
            var partS = [Double](repeating: 0, count: chunks), partB = [Double](repeating: 0, count: chunks)
            partS.withUnsafeMutableBufferPointer { ps in
                partB.withUnsafeMutableBufferPointer { pb in
                    Parallel.forEach(chunks) { c in
                        var accS = 0.0, accB = 0.0
                        for i in (c * chunk)..<min(n, (c + 1) * chunk) {
                            let v = xi[i] > 0 ? Double(xi[i]) : 0
                            let gv = Double(gi[i])
                            accS += gv * v * v
                            accB += gv
                        }
                        ps[c] = accS; pb[c] = accB
                    }
                }
            }
            let ds = scale.needsGrad ? Tensor(shape: scale.shape, values: [Float(partS.reduce(0, +))]) : nil
            let db = bias.needsGrad ? Tensor(shape: bias.shape, values: [Float(partB.reduce(0, +))]) : nil
            return [dx, ds, db]
        }
    }
}
