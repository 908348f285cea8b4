import XCTest
import Glibc
@testable import INFPCore

/// Shared helpers of the layer-op tests (LayerOpsTests, LayerOpsNormPoolTests).
enum LayerRef {
    /// Compares float results with double-precision references: |a − e| ≤ tol·max(1, |e|).
    static func assertClose(_ actual: [Float], _ expected: [Double], tol: Double = 1e-5,
                            file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(actual.count, expected.count, "count", file: file, line: line)
        var failures = 0
        for (i, (a, e)) in zip(actual, expected).enumerated()
        where Swift.abs(Double(a) - e) > tol * Swift.max(1, Swift.abs(e)) {
            failures += 1
            if failures <= 5 { XCTFail("[\(i)]: \(a) vs expected \(e)", file: file, line: line) }
        }
    }

    /// Values with |v| in [0.1, 1.1), random sign: away from the kinks of relu/abs at 0.
    static func awayFromZero(_ rng: inout SplitMix, _ shape: [Int]) -> Tensor {
        let t = rng.tensor(shape)
        for i in 0..<t.count { let v = t.data[i]; t.data[i] = (v < 0 ? -1 : 1) * (0.1 + Swift.abs(v)) }
        return t
    }
}

/// Activations, softmax, concat/slice/pad, spatial and temporal shifts.
final class LayerOpsTests: XCTestCase {
    // MARK: Activations

    func testActivationValues() {
        let values: [Float] = [-3, -1.5, -0.2, 0, 0.3, 1, 2.5]
        let x = Tensor(shape: [7], values: values)
        let d = values.map(Double.init)
        XCTAssertEqual(x.relu().scalars, [0, 0, 0, 0, 0.3, 1, 2.5])
        LayerRef.assertClose(x.leakyRelu(0.1).scalars, d.map { $0 > 0 ? $0 : 0.1 * $0 })
        LayerRef.assertClose(x.gelu().scalars, d.map { 0.5 * $0 * (1 + erf($0 / 2.0.squareRoot())) })
        LayerRef.assertClose(x.sigmoid().scalars, d.map { 1 / (1 + Glibc.exp(-$0)) })
        LayerRef.assertClose(x.exp().scalars, d.map { Glibc.exp($0) })
        LayerRef.assertClose(x.abs().scalars, d.map { Swift.abs($0) })
        LayerRef.assertClose(x.square().scalars, d.map { $0 * $0 })
        LayerRef.assertClose(x.cos().scalars, d.map { Glibc.cos($0) })
        LayerRef.assertClose(x.sin().scalars, d.map { Glibc.sin($0) })
        let pos: [Float] = [0.01, 0.5, 1, 2, 7]
        let p = Tensor(shape: [5], values: pos), pd = pos.map(Double.init)
        LayerRef.assertClose(p.log().scalars, pd.map { Glibc.log($0) })
        LayerRef.assertClose(p.sqrt().scalars, pd.map { $0.squareRoot() })
        LayerRef.assertClose(p.pow(2.5).scalars, pd.map { Glibc.pow($0, 2.5) })
        LayerRef.assertClose(p.pow(-0.5).scalars, pd.map { Glibc.pow($0, -0.5) })
        // Sigmoid must not overflow at the extremes.
        let big = Tensor(shape: [2], values: [-200, 200]).sigmoid().scalars
        XCTAssertEqual(big[0], 0, accuracy: 1e-30)
        XCTAssertEqual(big[1], 1)
        XCTAssertEqual(Tensor(shape: [1], values: [0]).gelu().item, 0)
    }

    func testActivationGradients() {
        var rng = SplitMix(seed: 11)
        let kinked = LayerRef.awayFromZero(&rng, [3, 4, 5])
        let smooth = rng.tensor([3, 4, 5], -3, 3)
        let positive = rng.tensor([3, 4, 5], 0.5, 2)
        GradCheck().check([kinked]) { $0[0].relu() }
        GradCheck().check([kinked]) { $0[0].leakyRelu(0.1) }
        GradCheck().check([kinked]) { $0[0].abs() }
        GradCheck().check([smooth]) { $0[0].gelu() }
        GradCheck().check([smooth]) { $0[0].sigmoid() }
        GradCheck().check([rng.tensor([3, 4, 5])]) { $0[0].exp() }
        GradCheck().check([smooth]) { $0[0].square() }
        GradCheck().check([smooth]) { $0[0].cos() }
        GradCheck().check([smooth]) { $0[0].sin() }
        GradCheck().check([positive]) { $0[0].log() }
        GradCheck().check([positive]) { $0[0].sqrt() }
        GradCheck().check([positive]) { $0[0].pow(2.5) }
        GradCheck().check([positive]) { $0[0].pow(-1.5) }
        // Composition: gradients accumulate through chained activations.
        GradCheck().check([smooth]) { $0[0].sigmoid().square() + $0[0].gelu() }
    }

    func testReluGradientIsZeroAtAndBelowZero() {
        let x = Tensor(shape: [4], values: [-1, 0, 0.5, 2])
        x.requiresGrad = true
        withGradients { x.relu().backward() }
        XCTAssertEqual(x.grad?.scalars, [0, 0, 1, 1])
        let y = Tensor(shape: [3], values: [-2, 0, 3])
        y.requiresGrad = true
        withGradients { y.abs().backward() }
        XCTAssertEqual(y.grad?.scalars, [-1, 0, 1])
    }

    func testParallelElementwiseMatchesSerial() {
        var rng = SplitMix(seed: 12)
        let x = rng.tensor([3, 70_001])  // several chunks of 2^15
        let serial = x.gelu().scalars, serialRelu = x.relu().scalars
        let (parallel, parallelRelu) = Parallel.withThreads(2) { (x.gelu().scalars, x.relu().scalars) }
        XCTAssertEqual(serial, parallel)
        XCTAssertEqual(serialRelu, parallelRelu)
        // starRelu's parameter gradients are summed in fixed chunks: same with 1 or 2 threads.
        func grads() -> [Float] {
            let s = Tensor(shape: [1], values: [1.3]), b = Tensor(shape: [1], values: [0.2])
            s.requiresGrad = true; b.requiresGrad = true
            withGradients { NN.starRelu(x, scale: s, bias: b).backward() }
            return [s.grad!.item, b.grad!.item]
        }
        let g1 = grads(), g2 = Parallel.withThreads(2) { grads() }
        XCTAssertEqual(g1, g2)
        let expected = (0..<x.count).reduce(0.0) { acc, i in let v = Swift.max(0, Double(x.data[i])); return acc + v * v }
        XCTAssertEqual(Double(g1[0]), expected, accuracy: 1e-6 * expected)
        XCTAssertEqual(g1[1], Float(x.count))
    }

    func testStarRelu() {
        let x = Tensor(shape: [5], values: [-2, -0.5, 0, 0.5, 2])
        let s = Tensor(shape: [1], values: [0.8]), b = Tensor(shape: [1], values: [-0.3])
        LayerRef.assertClose(NN.starRelu(x, scale: s, bias: b).scalars, [-0.3, -0.3, -0.3, 0.8 * 0.25 - 0.3, 0.8 * 4 - 0.3])
        var rng = SplitMix(seed: 13)
        let xs = LayerRef.awayFromZero(&rng, [2, 3, 4])
        GradCheck().check([xs, s, b]) { NN.starRelu($0[0], scale: $0[1], bias: $0[2]) }
        // Only the parameters needing gradients get them.
        GradCheck().check([s]) { NN.starRelu(xs, scale: $0[0], bias: b) }
    }

    // MARK: Softmax

    func naiveSoftmax(_ x: Tensor, axis a: Int) -> [Double] {
        let shape = x.shape
        let n = shape[a], inner = shape[(a + 1)...].reduce(1, *), outer = shape[..<a].reduce(1, *)
        var out = [Double](repeating: 0, count: x.count)
        for o in 0..<outer {
            for i in 0..<inner {
                let idx = (0..<n).map { o * n * inner + $0 * inner + i }
                let m = idx.map { Double(x.data[$0]) }.max()!
                let total = idx.reduce(0.0) { $0 + Glibc.exp(Double(x.data[$1]) - m) }
                for j in idx { out[j] = Glibc.exp(Double(x.data[j]) - m) / total }
            }
        }
        return out
    }

    func testSoftmaxValuesAndGradients() {
        var rng = SplitMix(seed: 21)
        let x = rng.tensor([2, 3, 4, 5], -3, 3)
        for axis in 0..<4 {
            LayerRef.assertClose(x.softmax(axis: axis).scalars, naiveSoftmax(x, axis: axis), tol: 1e-6)
            GradCheck().check([x]) { $0[0].softmax(axis: axis) }
        }
        LayerRef.assertClose(x.softmax(axis: -1).scalars, naiveSoftmax(x, axis: 3), tol: 1e-6)
        // Hand-worked: softmax([0, ln 3]) = [1/4, 3/4]; stable for huge logits.
        LayerRef.assertClose(Tensor(shape: [2], values: [0, Float(Glibc.log(3.0))]).softmax(axis: 0).scalars, [0.25, 0.75])
        let huge = Tensor(shape: [1, 3], values: [1000, 1001, 1002]).softmax(axis: 1)
        let e = [Glibc.exp(-2.0), Glibc.exp(-1.0), 1]
        LayerRef.assertClose(huge.scalars, e.map { $0 / e.reduce(0, +) }, tol: 1e-6)
        // Gradient of a softmax summed along its axis is zero.
        let y = rng.tensor([3, 4])
        y.requiresGrad = true
        withGradients { y.softmax(axis: 1).backward() }
        for v in y.grad!.scalars { XCTAssertEqual(v, 0, accuracy: 1e-6) }
    }

    // MARK: Concat, slice, pad

    func testConcatSlicePadValues() {
        let a = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        let b = Tensor(shape: [2, 1], values: [5, 6])
        let c = Tensor(shape: [1, 2], values: [7, 8])
        let ab = Tensor.concat([a, b], axis: 1)
        XCTAssertEqual(ab.shape, [2, 3])
        XCTAssertEqual(ab.scalars, [1, 2, 5, 3, 4, 6])
        XCTAssertEqual(Tensor.concat([a, c], axis: 0).scalars, [1, 2, 3, 4, 7, 8])
        XCTAssertEqual(Tensor.concat([c, a], axis: -2).scalars, [7, 8, 1, 2, 3, 4])
        XCTAssertEqual(ab.slice(axis: 1, range: 1..<3).scalars, [2, 5, 4, 6])
        XCTAssertEqual(ab.slice(axis: 0, range: 1..<2).scalars, [3, 4, 6])
        XCTAssertEqual(ab.slice(axis: -1, range: 0..<0).shape, [2, 0])
        let padded = a.pad2d(top: 1, bottom: 0, left: 0, right: 2)
        XCTAssertEqual(padded.shape, [3, 4])
        XCTAssertEqual(padded.scalars, [0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0])

        // Concat of (N, C_k, H, W) along channels against direct indexing.
        var rng = SplitMix(seed: 31)
        let parts = [rng.tensor([2, 3, 4, 5]), rng.tensor([2, 1, 4, 5]), rng.tensor([2, 2, 4, 5])]
        let cat = Tensor.concat(parts, axis: 1)
        XCTAssertEqual(cat.shape, [2, 6, 4, 5])
        let channelOf = [(0, 0), (0, 1), (0, 2), (1, 0), (2, 0), (2, 1)]
        for n in 0..<2 {
            for (ch, (k, kc)) in channelOf.enumerated() {
                for s in 0..<20 {
                    XCTAssertEqual(cat.data[(n * 6 + ch) * 20 + s], parts[k].data[(n * parts[k].shape[1] + kc) * 20 + s])
                }
            }
        }
        // Slicing undoes concatenation.
        XCTAssertEqual(cat.slice(axis: 1, range: 3..<4).scalars, parts[1].scalars)
        XCTAssertEqual(cat.slice(axis: 1, range: 4..<6).scalars, parts[2].scalars)

        // Padding against direct indexing (rank 4, all sides).
        let x = rng.tensor([2, 3, 4, 5])
        let p = x.pad2d(top: 1, bottom: 2, left: 3, right: 1)
        XCTAssertEqual(p.shape, [2, 3, 7, 9])
        for plane in 0..<6 {
            for i in 0..<7 {
                for j in 0..<9 {
                    let si = i - 1, sj = j - 3
                    let e: Float = (0..<4).contains(si) && (0..<5).contains(sj) ? x.data[plane * 20 + si * 5 + sj] : 0
                    XCTAssertEqual(p.data[plane * 63 + i * 9 + j], e)
                }
            }
        }
    }

    func testConcatSlicePadGradients() {
        var rng = SplitMix(seed: 32)
        let a = rng.tensor([2, 3, 4]), b = rng.tensor([2, 1, 4]), c = rng.tensor([2, 2, 4])
        GradCheck().check([a, b, c]) { Tensor.concat($0, axis: 1) }
        GradCheck().check([a, rng.tensor([1, 3, 4])]) { Tensor.concat($0, axis: 0) }
        GradCheck().check([a, rng.tensor([2, 3, 2])]) { Tensor.concat($0, axis: 2) }
        // The same tensor twice: both gradients accumulate.
        GradCheck().check([a]) { Tensor.concat([$0[0], $0[0].square()], axis: 1) }
        GradCheck().check([a]) { $0[0].slice(axis: 1, range: 1..<3) }
        GradCheck().check([a]) { $0[0].slice(axis: 2, range: 0..<1) }
        GradCheck().check([a]) { $0[0].slice(axis: 0, range: 1..<2) }
        GradCheck().check([rng.tensor([2, 2, 3, 4])]) { $0[0].pad2d(top: 2, bottom: 1, left: 0, right: 3) }
        GradCheck().check([rng.tensor([3, 4])]) { $0[0].pad2d(top: 0, bottom: 1, left: 1, right: 0) }
    }

    // MARK: Spatial shift

    func testShiftedValues() {
        let x = Tensor(shape: [1, 1, 3, 3], values: [1, 2, 3, 4, 5, 6, 7, 8, 9])
        XCTAssertEqual(NN.shifted(x, dy: 1, dx: 0).scalars, [4, 5, 6, 7, 8, 9, 0, 0, 0])
        XCTAssertEqual(NN.shifted(x, dy: 0, dx: -1).scalars, [0, 1, 2, 0, 4, 5, 0, 7, 8])
        XCTAssertEqual(NN.shifted(x, dy: -1, dx: 2).scalars, [0, 0, 0, 3, 0, 0, 6, 0, 0])
        XCTAssertEqual(NN.shifted(x, dy: 0, dx: 0).scalars, x.scalars)
        XCTAssertEqual(NN.shifted(x, dy: 3, dx: 0).scalars, [Float](repeating: 0, count: 9))
        XCTAssertEqual(NN.shifted(x, dy: 0, dx: -5).scalars, [Float](repeating: 0, count: 9))

        var rng = SplitMix(seed: 41)
        let y = rng.tensor([2, 3, 5, 6])
        for (dy, dx) in [(-2, -2), (2, -2), (-2, 2), (2, 2), (1, -3), (0, 4), (-5, 0)] {
            let s = NN.shifted(y, dy: dy, dx: dx)
            XCTAssertEqual(s.shape, y.shape)
            // Reference: zero-pad by 6 then crop at offset (6 + dy, 6 + dx).
            let padded = y.pad2d(top: 6, bottom: 6, left: 6, right: 6)
            let crop = padded.slice(axis: 2, range: (6 + dy)..<(6 + dy + 5)).slice(axis: 3, range: (6 + dx)..<(6 + dx + 6))
            XCTAssertEqual(s.scalars, crop.scalars, "shift (\(dy), \(dx))")
        }
    }

    func testShiftedGradients() {
        var rng = SplitMix(seed: 42)
        let y = rng.tensor([2, 2, 5, 6])
        for (dy, dx) in [(-2, -2), (2, -2), (-2, 2), (2, 2), (0, 1), (7, 0)] {
            GradCheck().check([y]) { NN.shifted($0[0], dy: dy, dx: dx) }
        }
    }

    // MARK: Temporal shift

    func naiveTSM(_ x: Tensor, frames t: Int, foldDiv: Int) -> [Float] {
        let b = x.shape[0], c = x.shape[1], hw = x.count / (b * c)
        let per = c / t, fold = per / foldDiv
        var out = [Float](repeating: 0, count: x.count)
        for n in 0..<b {
            for f in 0..<t {
                for k in 0..<per {
                    for s in 0..<hw {
                        let o = ((n * c) + f * per + k) * hw + s
                        if k < fold {
                            out[o] = f < t - 1 ? x.data[((n * c) + (f + 1) * per + k) * hw + s] : 0
                        } else {
                            out[o] = x.data[o]
                        }
                    }
                }
            }
        }
        return out
    }

    func testTemporalShiftValues() {
        // B=1, C=4, T=2: fold = (4/2)/2 = 1; frame 0 channel 0 takes frame 1 channel 0.
        let x = Tensor(shape: [1, 4, 1, 1], values: [1, 2, 3, 4])
        XCTAssertEqual(NN.temporalShift(x, frames: 2, foldDiv: 2).scalars, [3, 2, 0, 4])
        var rng = SplitMix(seed: 51)
        for (c, t, div) in [(16, 4, 2), (32, 4, 8), (64, 4, 16), (8, 4, 8), (12, 3, 1), (8, 1, 2)] {
            let y = rng.tensor([2, c, 3, 2])
            XCTAssertEqual(NN.temporalShift(y, frames: t, foldDiv: div).scalars, naiveTSM(y, frames: t, foldDiv: div),
                           "C \(c), T \(t), div \(div)")
        }
    }

    func testTemporalShiftGradients() {
        var rng = SplitMix(seed: 52)
        GradCheck().check([rng.tensor([2, 16, 3, 2])]) { NN.temporalShift($0[0], frames: 4, foldDiv: 2) }
        GradCheck().check([rng.tensor([2, 12, 2, 2])]) { NN.temporalShift($0[0], frames: 3, foldDiv: 1) }
        GradCheck().check([rng.tensor([1, 32, 2, 3])]) { NN.temporalShift($0[0], frames: 4, foldDiv: 8) }
    }
}
