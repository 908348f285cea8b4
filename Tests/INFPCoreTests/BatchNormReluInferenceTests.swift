import XCTest
@testable import INFPCore

/// The fused evaluation-mode BN + ReLU against the two differentiable ops it replaces.
final class BatchNormReluInferenceTests: XCTestCase {
    func testFusedPassMatchesBatchNormThenRelu() {
        var rng = SplitMix(seed: 17)
        for shape in [[2, 5, 7, 9], [1, 64, 40, 30], [3, 4, 1, 1]] {
            let c = shape[1]
            let x = rng.tensor(shape, -3, 3)
            let w = rng.tensor([c]), b = rng.tensor([c]), mean = rng.tensor([c]), variance = rng.tensor([c], 0.1, 2)
            let reference = NN.batchNorm2d(x, weight: w, bias: b, runningMean: mean, runningVar: variance, training: false).relu()
            for threads in [1, 2] {
                let fused = Parallel.withThreads(threads) {
                    NN.batchNormReluInference(x, weight: w, bias: b, runningMean: mean, runningVar: variance)
                }
                XCTAssertEqual(fused.shape, reference.shape)
                XCTAssertEqual(fused.scalars, reference.scalars, "\(shape), \(threads) threads")
            }
        }
    }
}
