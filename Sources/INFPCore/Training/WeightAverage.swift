/// Exponential moving average of a model's parameters, for evaluation: averaging the last
/// few hundred steps of a short high-rate run smooths out the step-to-step noise of the weights.
public final class WeightAverage {
    public let decay: Float
    let parameters: [(name: String, tensor: Tensor)]
    let averages: [Tensor]
    /// Updates so far; the effective decay ramps up as min(decay, (1 + n)/(10 + n)) so that
    /// early weights, far from the end, do not linger.
    public private(set) var updates: Int64 = 0

    public init(parameters: [(name: String, tensor: Tensor)], decay: Float) {
        precondition(decay > 0 && decay < 1, "WeightAverage decay must be in (0, 1), got \(decay)")
        self.decay = decay
        self.parameters = parameters
        averages = parameters.map { $0.tensor.copy() }
    }

    /// Folds the current parameters into the average.
    public func update() {
        updates += 1
        let n = Float(updates)
        let d = min(decay, (1 + n) / (10 + n))
        Parallel.forEach(parameters.count) { i in
            let p = parameters[i].tensor.data, a = averages[i].data
            for j in 0..<averages[i].count { a[j] = d * a[j] + (1 - d) * p[j] }
        }
    }

    /// Writes the average into the model's parameters.
    public func copyToModel() {
        for (i, p) in parameters.enumerated() { p.tensor.data.update(from: averages[i].data, count: p.tensor.count) }
    }

    // MARK: checkpoints (`optim.ema.*` tensors beside the optimizer state)

    public func stateTensors() -> [(String, SafeTensors.Value)] {
        var out: [(String, SafeTensors.Value)] = [("optim.ema_updates", .int64(shape: [], values: [updates]))]
        for (i, p) in parameters.enumerated() { out.append(("optim.ema." + p.name, .float32(averages[i]))) }
        return out
    }

    /// Restores an average saved by `stateTensors`; false when the file holds none.
    public func loadState(from file: SafeTensors.File, source: String) throws -> Bool {
        guard let u = file.entry("optim.ema_updates") else { return false }
        var problems: [String] = []
        for (i, p) in parameters.enumerated() {
            let key = "optim.ema." + p.name
            guard let e = file.entry(key) else { problems.append("missing '\(key)'"); continue }
            guard e.shape == p.tensor.shape else { problems.append("'\(key)' has shape \(e.shape), expected \(p.tensor.shape)"); continue }
            let value = try file.tensor(e)
            guard value.allFinite else { problems.append("'\(key)' holds NaN or infinite values"); continue }
            averages[i].assign(value)
        }
        if !problems.isEmpty {
            throw FileError.format("'\(source)' has an incomplete weight average:\n  " + problems.prefix(20).joined(separator: "\n  "))
        }
        updates = try file.integer(u)
        return true
    }
}
