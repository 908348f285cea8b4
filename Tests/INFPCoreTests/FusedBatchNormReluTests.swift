import XCTest
@testable import INFPCore

/// The differentiable fused BatchNorm + ReLU (training and evaluation) against the two ops it
/// replaces, and against finite differences.
final class FusedBatchNormReluTests: XCTestCase {
    private func maxDiff(_ a: Tensor, _ b: Tensor) -> Float {
        precondition(a.count == b.count)
        var m: Float = 0
        for i in 0..<a.count { m = max(m, abs(a.data[i] - b.data[i])) }
        return m
    }

    func testMatchesBatchNormThenReluWithGradients() {
        var rng = SplitMix(seed: 5)
        for shape in [[2, 5, 7, 9], [4, 16, 33, 17], [3, 4, 1, 1], [8, 3, 40, 31]] {
            for training in [true, false] {
                let c = shape[1]
                let x = rng.tensor(shape, -2, 3)
                let w = rng.tensor([c], 0.5, 1.5), b = rng.tensor([c], -0.3, 0.3)
                let rm0 = rng.tensor([c], -0.2, 0.2), rv0 = rng.tensor([c], 0.5, 2)
                let seed = rng.tensor(shape)
                func run(_ fused: Bool, threads: Int) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor) {
                    let rm = rm0.copy(), rv = rv0.copy()
                    let xi = x.copy(), wi = w.copy(), bi = b.copy()
                    for t in [xi, wi, bi] { t.requiresGrad = true }
                    let y = Parallel.withThreads(threads) {
                        withGradients { () -> Tensor in
                            let y = fused
                                ? NN.batchNormRelu(xi, weight: wi, bias: bi, runningMean: rm, runningVar: rv, training: training)
                                : NN.batchNorm2d(xi, weight: wi, bias: bi, runningMean: rm, runningVar: rv, training: training).relu()
                            y.backward(seed: seed)
                            return y
                        }
                    }
                    return (y.detached(), xi.grad!, wi.grad!, bi.grad!, rm, rv)
                }
                let ref = run(false, threads: 1)
                for threads in [1, 2] {
                    let got = run(true, threads: threads)
                    let label = "\(shape) training \(training) threads \(threads)"
                    XCTAssertLessThan(maxDiff(got.0, ref.0), 1e-5, "output " + label)
                    XCTAssertLessThan(maxDiff(got.1, ref.1), 1e-4, "dx " + label)
                    XCTAssertLessThan(maxDiff(got.2, ref.2), 1e-3, "dweight " + label)
                    XCTAssertLessThan(maxDiff(got.3, ref.3), 1e-3, "dbias " + label)
                    XCTAssertLessThan(maxDiff(got.4, ref.4), 1e-6, "running mean " + label)
                    XCTAssertLessThan(maxDiff(got.5, ref.5), 1e-5, "running var " + label)
                }
            }
        }
    }

    /// One-pass statistics stay accurate when the mean dwarfs the spread.
    func testLargeMeanStatistics() {
        var rng = SplitMix(seed: 3)
        let shape = [4, 3, 20, 30]
        let x = rng.tensor(shape, -0.01, 0.01)
        for i in 0..<x.count { x.data[i] += (i / 600) % 3 == 1 ? 300 : -7 }
        let w = Tensor(repeating: 1, shape: [3]), b = Tensor(repeating: 0.5, shape: [3])
        let rm1 = Tensor(zeros: [3]), rv1 = Tensor(repeating: 1, shape: [3])
        let rm2 = Tensor(zeros: [3]), rv2 = Tensor(repeating: 1, shape: [3])
        let fused = NN.batchNormRelu(x, weight: w, bias: b, runningMean: rm1, runningVar: rv1, training: true)
        let ref = NN.batchNorm2d(x, weight: w, bias: b, runningMean: rm2, runningVar: rv2, training: true).relu()
        // x·scale ≈ 5e4 with scale ≈ 1/std ≈ 170: both sides round at ~4e-3 there.
        XCTAssertLessThan(maxDiff(fused, ref), 1.5e-2)
        XCTAssertLessThan(maxDiff(rm1, rm2), 1e-4)
        for ch in 0..<3 { XCTAssertEqual(rv1.data[ch], rv2.data[ch], accuracy: 1e-3 * rv2.data[ch] + 1e-9) }
    }

    func testFiniteDifferences() {
        var rng = SplitMix(seed: 9)
        let c = 3
        // Values away from the ReLU kink are not guaranteed, so use a tolerance-checked sample.
        let x = rng.tensor([2, c, 5, 6], -2, 2)
        let w = rng.tensor([c], 0.5, 1.5), b = rng.tensor([c], 0.2, 0.6)
        for training in [true, false] {
            let rm = rng.tensor([c], -0.1, 0.1), rv = rng.tensor([c], 0.5, 1.5)
            GradCheck(h: 1e-3, rtol: 2e-2, atol: 2e-3).check([x, w, b]) { t in
                // Running statistics change on every training call; use copies so that each
                // evaluation sees the same ones (they do not enter the training-mode output).
                NN.batchNormRelu(t[0], weight: t[1], bias: t[2], runningMean: rm.copy(), runningVar: rv.copy(), training: training)
            }
        }
    }
}
