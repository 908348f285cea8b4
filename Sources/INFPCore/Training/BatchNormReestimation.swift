/// Re-estimates BatchNorm running statistics as plain averages of batch statistics over
/// normal training clips, with the current weights (no gradient, weights untouched).
///
/// Why: during training the running statistics are an exponential average (momentum 0.1)
/// over batches seen with *earlier* weights; after a short run at a high learning rate, or
/// after swapping in averaged (EMA) weights, they no longer match the weights used for
/// evaluation.
///
/// How, without a second BatchNorm code path: before each forward pass the running value A
/// holds the average so far; a training-mode pass that updates a layer k times leaves
/// R = 0.9ᵏ·A + (1 − 0.9ᵏ)·B̄ with B̄ a weighted mean of that pass's batch statistics, so
/// B̄ = (R − 0.9ᵏ·A)/(1 − 0.9ᵏ), and the average over j passes so far is A + (B̄ − A)/j.
public enum BatchNormReestimation {
    static let momentum = 0.1

    /// Runs `batches` (each a (B, T, C, H, W) clip tensor) through `model` in training mode
    /// (as in training, dropout included) and leaves every BatchNorm layer's running mean and variance at the
    /// average of its batch statistics over them. Returns the number of layers updated.
    @discardableResult
    public static func run(_ model: INFPModel, batches: [Tensor]) -> Int {
        let layers: [BatchNorm2d] = model.store.entries.compactMap {
            if case let .counter(bn) = $0.slot { return bn }
            return nil
        }
        guard !batches.isEmpty, !layers.isEmpty else { return 0 }
        var averages = layers.map { (mean: [Float](repeating: 0, count: $0.runningMean.count),
                                      variance: [Float](repeating: 0, count: $0.runningVar.count)) }
        for (j, clips) in batches.enumerated() {
            let before = layers.map { $0.numBatchesTracked }
            for (i, bn) in layers.enumerated() {  // start each pass from the average so far
                write(averages[i].mean, to: bn.runningMean)
                write(averages[i].variance, to: bn.runningVar)
            }
            var ctx = ForwardContext(training: true)
            _ = model.forward(clips, &ctx)
            for (i, bn) in layers.enumerated() {
                let k = Int(bn.numBatchesTracked - before[i])
                guard k > 0 else { continue }  // the layer did not run
                let keep = pow(1 - momentum, Double(k))
                let weight = 1 / Double(j + 1)
                func update(_ avg: inout [Float], _ running: Tensor) {
                    for c in 0..<avg.count {
                        let a = Double(avg[c])
                        let batch = (Double(running.data[c]) - keep * a) / (1 - keep)
                        avg[c] = Float(j == 0 ? batch : a + (batch - a) * weight)
                    }
                }
                update(&averages[i].mean, bn.runningMean)
                update(&averages[i].variance, bn.runningVar)
            }
        }
        for (i, bn) in layers.enumerated() {
            write(averages[i].mean, to: bn.runningMean)
            write(averages[i].variance, to: bn.runningVar)
        }
        return layers.count
    }

    static func write(_ values: [Float], to t: Tensor) {
        values.withUnsafeBufferPointer { t.data.update(from: $0.baseAddress!, count: values.count) }
    }

    static func pow(_ x: Double, _ n: Double) -> Double { Glibc.pow(x, n) }
}

import Glibc
