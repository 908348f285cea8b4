import XCTest
@testable import INFPCore

final class ArithmeticTests: XCTestCase {
    func testBroadcastAddValues() {
        let a = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let b = Tensor(shape: [3], values: [10, 20, 30])
        XCTAssertEqual((a + b).scalars, [11, 22, 33, 14, 25, 36])
        let c = Tensor(shape: [2, 1], values: [100, 200])
        XCTAssertEqual((a * c).scalars, [100, 200, 300, 800, 1000, 1200])
    }

    func testBinaryGradients() {
        var rng = SplitMix(seed: 7)
        let a = rng.tensor([2, 3, 4]), b = rng.tensor([3, 1]), c = rng.tensor([2, 3, 4], 0.5, 2)
        GradCheck().check([a, b]) { $0[0] + $0[1] }
        GradCheck().check([a, b]) { $0[0] - $0[1] }
        GradCheck().check([a, b]) { $0[0] * $0[1] }
        GradCheck().check([a, c]) { $0[0] / $0[1] }
        GradCheck().check([a]) { 3 - $0[0] * 2 + 1 }
    }

    func testReductionsAndShapes() {
        var rng = SplitMix(seed: 8)
        let a = rng.tensor([2, 3, 4, 5])
        XCTAssertEqual(a.sum(axes: [2, 3]).shape, [2, 3, 1, 1])
        GradCheck().check([a]) { $0[0].mean(axes: [2, 3]) }
        GradCheck().check([a]) { $0[0].sum(axes: [0]) }
        GradCheck().check([a]) { $0[0].mean() }
        GradCheck().check([a]) { $0[0].permuted([0, 2, 3, 1]) }
        GradCheck().check([a]) { $0[0].reshaped([6, -1]) * $0[0].reshaped([6, -1]) }
        let p = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]).permuted([1, 0])
        XCTAssertEqual(p.scalars, [1, 4, 2, 5, 3, 6])
    }

    /// Large element-wise and broadcast ops run in row chunks over the threads: same values as
    /// one thread, for broadcasts along leading, middle and trailing dimensions.
    func testThreadedElementwiseMatchesOneThread() {
        var rng = SplitMix(seed: 3)
        let x = rng.tensor([2, 64, 30, 40])
        let others = [rng.tensor([2, 64, 1, 1]), rng.tensor([64, 1, 40]), rng.tensor([2, 1, 30, 40]), rng.tensor([40]), x]
        for o in others {
            let one = Parallel.withThreads(1) { [(x * o).scalars, (o + x).scalars, (x * 0.5 + 1).scalars] }
            let two = Parallel.withThreads(2) { [(x * o).scalars, (o + x).scalars, (x * 0.5 + 1).scalars] }
            XCTAssertEqual(one, two, "\(o.shape)")
            // Spot check against the definition.
            let y = x * o, st = Broadcast.strides(of: o.shape, in: x.shape)
            for i in stride(from: 0, to: x.count, by: 997) {
                var rem = i, off = 0
                for d in stride(from: 3, through: 0, by: -1) { off += (rem % x.shape[d]) * st[d]; rem /= x.shape[d] }
                XCTAssertEqual(y.data[i], x.data[i] * o.data[off])
            }
        }
    }
}
