import Glibc

/// Adam (Kingma & Ba) as torch.optim.Adam without weight decay or amsgrad:
/// m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; p ← p − lr·m̂/(√v̂ + ε) with bias corrections.
public final class Adam {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float
    /// Steps taken so far (the bias corrections depend on it).
    public private(set) var step: Int = 0
    let parameters: [(name: String, tensor: Tensor)]
    /// First and second moments, per parameter, in the same order.
    var m: [Tensor], v: [Tensor]

    public init(parameters: [(name: String, tensor: Tensor)], learningRate: Float = 2e-4,
                beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        m = parameters.map { Tensor(zeros: $0.tensor.shape) }
        v = parameters.map { Tensor(zeros: $0.tensor.shape) }
    }

    /// Applies one update from the parameters' accumulated gradients, then clears them.
    /// Parameters without a gradient are left alone (their moments do not decay), as in PyTorch.
    public func update() {
        step += 1
        let bc1 = 1 - Float(Glibc.pow(Double(beta1), Double(step)))
        let bc2 = 1 - Float(Glibc.pow(Double(beta2), Double(step)))
        let stepSize = learningRate / bc1
        let sqrtBc2 = bc2.squareRoot()
        let (b1, b2, e) = (beta1, beta2, eps)
        for (i, (_, p)) in parameters.enumerated() {
            guard let g = p.grad else { continue }
            let pd = p.data, gd = g.data, md = m[i].data, vd = v[i].data
            Parallel.forChunks(p.count, minChunk: 1 << 15) { r in
                for j in r {
                    let grad = gd[j]
                    md[j] = b1 * md[j] + (1 - b1) * grad
                    vd[j] = b2 * vd[j] + (1 - b2) * grad * grad
                    pd[j] -= stepSize * md[j] / (vd[j].squareRoot() / sqrtBc2 + e)
                }
            }
            p.grad = nil
        }
    }

    /// Optimizer state for checkpoints: `optim.step`, `optim.exp_avg.<name>`, `optim.exp_avg_sq.<name>`.
    public func stateTensors() -> [(String, SafeTensors.Value)] {
        var out: [(String, SafeTensors.Value)] = [("optim.step", .int64(shape: [], values: [Int64(step)]))]
        for (i, (name, _)) in parameters.enumerated() {
            out.append(("optim.exp_avg." + name, .float32(m[i])))
            out.append(("optim.exp_avg_sq." + name, .float32(v[i])))
        }
        return out
    }

    /// Restores state written by `stateTensors`; every parameter's moments must be present.
    public func loadState(from file: SafeTensors.File, source: String) throws {
        guard let s = file.entry("optim.step") else { throw FileError.format("'\(source)' holds no optimizer state (optim.step)") }
        var problems: [String] = []
        for (i, (name, p)) in parameters.enumerated() {
            for (key, target) in [("optim.exp_avg." + name, m[i]), ("optim.exp_avg_sq." + name, v[i])] {
                guard let e = file.entry(key) else { problems.append("missing '\(key)'"); continue }
                guard e.shape == p.shape else { problems.append("'\(key)' has shape \(e.shape), expected \(p.shape)"); continue }
                let value = try file.tensor(e)
                guard value.allFinite else { problems.append("'\(key)' holds NaN or infinite values"); continue }
                target.assign(value)
            }
        }
        if !problems.isEmpty {
            throw FileError.format("'\(source)' has incomplete optimizer state:\n  " + problems.prefix(20).joined(separator: "\n  "))
        }
        step = Int(try file.integer(s))
    }
}
