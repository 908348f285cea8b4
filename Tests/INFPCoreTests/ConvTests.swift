import XCTest
@testable import INFPCore

final class ConvTests: XCTestCase {
    // MARK: naive references (double accumulation)

    static func naiveConv(_ x: Tensor, _ w: Tensor, _ b: Tensor?, stride: Int, padding: Int, dilation: Int) -> [Double] {
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (k, r, s) = (w.shape[0], w.shape[2], w.shape[3])
        let ho = (h + 2 * padding - dilation * (r - 1) - 1) / stride + 1
        let wo = (wd + 2 * padding - dilation * (s - 1) - 1) / stride + 1
        var out = [Double](repeating: 0, count: n * k * ho * wo)
        for ni in 0..<n { for ki in 0..<k { for oh in 0..<ho { for ow in 0..<wo {
            var acc = Double(b?.data[ki] ?? 0)
            for ci in 0..<c { for kr in 0..<r { for ks in 0..<s {
                let ih = oh * stride - padding + kr * dilation, iw = ow * stride - padding + ks * dilation
                if ih < 0 || ih >= h || iw < 0 || iw >= wd { continue }
                let xi: Int = ((ni * c + ci) * h + ih) * wd + iw
                let wi: Int = ((ki * c + ci) * r + kr) * s + ks
                acc += Double(x.data[xi]) * Double(w.data[wi])
            } } }
            out[((ni * k + ki) * ho + oh) * wo + ow] = acc
        } } } }
        return out
    }

    static func naiveConvTranspose(_ x: Tensor, _ w: Tensor) -> [Double] {
        let (n, ci, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let co = w.shape[1]
        var out = [Double](repeating: 0, count: n * co * 4 * h * wd)
        for ni in 0..<n { for c in 0..<ci { for i in 0..<h { for j in 0..<wd {
            let v = Double(x.data[((ni * ci + c) * h + i) * wd + j])
            for o in 0..<co { for a in 0..<2 { for b in 0..<2 {
                let oi: Int = ((ni * co + o) * 2 * h + 2 * i + a) * 2 * wd + 2 * j + b
                let wi: Int = ((c * co + o) * 2 + a) * 2 + b
                out[oi] += v * Double(w.data[wi])
            } } }
        } } } }
        return out
    }

    static func naiveLinear(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> [Double] {
        let fin = w.shape[1], fout = w.shape[0], rows = x.count / fin
        var out = [Double](repeating: 0, count: rows * fout)
        for r in 0..<rows { for o in 0..<fout {
            var acc = Double(b?.data[o] ?? 0)
            for i in 0..<fin { acc += Double(x.data[r * fin + i]) * Double(w.data[o * fin + i]) }
            out[r * fout + o] = acc
        } }
        return out
    }

    func assertClose(_ got: Tensor, _ want: [Double], tol: Double = 1e-4, _ what: String,
                     file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, what, file: file, line: line)
        var worst = 0.0
        for i in 0..<min(got.count, want.count) {
            worst = max(worst, abs(Double(got.data[i]) - want[i]) / max(1, abs(want[i])))
        }
        XCTAssertLessThanOrEqual(worst, tol, "\(what): max error \(worst)", file: file, line: line)
    }

    // (n, c, h, w, k, r, s, stride, padding, dilation)
    static let convCases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
        (1, 3, 9, 11, 4, 3, 3, 1, 1, 1),
        (3, 3, 9, 11, 5, 3, 3, 1, 1, 1),
        (3, 4, 10, 9, 6, 3, 3, 2, 1, 1),
        (1, 5, 8, 12, 3, 3, 3, 2, 0, 1),
        (3, 4, 12, 10, 5, 3, 3, 1, 2, 2),
        (1, 4, 13, 14, 6, 3, 3, 1, 4, 4),
        (3, 2, 9, 9, 3, 3, 3, 1, 0, 2),
        (3, 6, 7, 8, 5, 1, 1, 1, 0, 1),
        (1, 6, 7, 8, 5, 1, 1, 2, 0, 1),
        (3, 6, 7, 8, 5, 1, 1, 1, 1, 1),
        (3, 3, 8, 9, 4, 3, 2, 2, 2, 1),
        (1, 3, 7, 7, 2, 5, 5, 1, 2, 1),
        (3, 2, 5, 6, 3, 3, 3, 3, 4, 2),
        // wide rows: the vector paths of stride-2 gathers and scatters
        (3, 3, 7, 41, 4, 3, 3, 2, 1, 1),
        (1, 3, 6, 40, 4, 1, 1, 2, 0, 1),
        (3, 2, 5, 45, 3, 3, 3, 2, 2, 2),
    ]

    // MARK: forward

    func testConvForwardAgainstNaive() {
        var rng = SplitMix(seed: 21)
        for (ci, cfg) in Self.convCases.enumerated() {
            let (n, c, h, w, k, r, s, st, pad, dil) = cfg
            let x = rng.tensor([n, c, h, w]), wt = rng.tensor([k, c, r, s])
            for withBias in [false, true] {
                let b: Tensor? = withBias ? rng.tensor([k]) : nil
                let want = Self.naiveConv(x, wt, b, stride: st, padding: pad, dilation: dil)
                for threads in [1, 2] {
                    let y = Parallel.withThreads(threads) {
                        NN.conv2d(x, weight: wt, bias: b, stride: st, padding: pad, dilation: dil)
                    }
                    let ho = (h + 2 * pad - dil * (r - 1) - 1) / st + 1, wo = (w + 2 * pad - dil * (s - 1) - 1) / st + 1
                    XCTAssertEqual(y.shape, [n, k, ho, wo])
                    assertClose(y, want, "case \(ci) \(cfg) bias \(withBias) threads \(threads)")
                }
            }
        }
    }

    func testConvBanded() {
        // Tiny band cap: many bands per sample, in both paths.
        let saved = ConvGeometry.bandCap
        ConvGeometry.bandCap = 64
        defer { ConvGeometry.bandCap = saved }
        var rng = SplitMix(seed: 22)
        let x = rng.tensor([3, 3, 11, 9]), wt = rng.tensor([4, 3, 3, 3]), b = rng.tensor([4])
        let want = Self.naiveConv(x, wt, b, stride: 1, padding: 1, dilation: 1)
        for threads in [1, 2] {
            let y = Parallel.withThreads(threads) { NN.conv2d(x, weight: wt, bias: b, padding: 1) }
            assertClose(y, want, "banded threads \(threads)")
            Parallel.withThreads(threads) {
                GradCheck().check([x, wt, b]) { NN.conv2d($0[0], weight: $0[1], bias: $0[2], padding: 1) }
                GradCheck().check([x, wt]) { NN.conv2d($0[0], weight: $0[1], bias: nil, stride: 2, padding: 2, dilation: 2) }
            }
        }
    }

    func testConvTransposeAgainstNaive() {
        var rng = SplitMix(seed: 23)
        for (n, ci, co, h, w) in [(1, 3, 2, 4, 5), (3, 5, 4, 3, 7), (2, 1, 1, 1, 1), (1, 16, 8, 9, 6)] {
            let x = rng.tensor([n, ci, h, w]), wt = rng.tensor([ci, co, 2, 2])
            let want = Self.naiveConvTranspose(x, wt)
            for threads in [1, 2] {
                let y = Parallel.withThreads(threads) { NN.convTranspose2x2(x, weight: wt) }
                XCTAssertEqual(y.shape, [n, co, 2 * h, 2 * w])
                assertClose(y, want, "convT \(n),\(ci),\(co),\(h),\(w) threads \(threads)")
            }
        }
    }

    func testLinearAgainstNaive() {
        var rng = SplitMix(seed: 24)
        for shape in [[7], [4, 7], [2, 3, 7], [300, 7]] {
            let x = rng.tensor(shape), wt = rng.tensor([5, 7]), b = rng.tensor([5])
            for bias in [nil, b] {
                let want = Self.naiveLinear(x, wt, bias)
                for threads in [1, 2] {
                    let y = Parallel.withThreads(threads) { NN.linear(x, weight: wt, bias: bias) }
                    XCTAssertEqual(y.shape, Array(shape.dropLast()) + [5])
                    assertClose(y, want, "linear \(shape) bias \(bias != nil) threads \(threads)")
                }
            }
        }
    }

    // MARK: gradients

    func testConvGradients() {
        var rng = SplitMix(seed: 25)
        let cases: [(Int, Int, Int, Int, Int, Int, Int, Int, Int)] = [
            // (n, c, h, w, k, r, stride, padding, dilation)
            (1, 2, 5, 6, 3, 3, 1, 1, 1),
            (3, 2, 5, 5, 2, 3, 1, 1, 1),
            (2, 2, 7, 6, 3, 3, 2, 1, 1),
            (3, 2, 7, 7, 2, 3, 1, 2, 2),
            (3, 2, 9, 8, 3, 3, 1, 4, 4),
            (1, 2, 6, 7, 3, 3, 1, 0, 1),
            (1, 3, 6, 5, 2, 1, 1, 0, 1),
            (3, 3, 6, 5, 2, 1, 1, 0, 1),
            (2, 3, 6, 5, 2, 1, 2, 0, 1),
            (3, 2, 5, 39, 2, 3, 2, 1, 1),
            (2, 2, 4, 37, 2, 1, 2, 0, 1),
        ]
        // dx by col2im (never flip) and, for stride 1, as a convolution with flipped weights.
        let saved = ConvGeometry.flipRatio
        defer { ConvGeometry.flipRatio = saved }
        for flip in [0, 1 << 20] {
            ConvGeometry.flipRatio = flip
            for (n, c, h, w, k, r, st, pad, dil) in cases {
                let x = rng.tensor([n, c, h, w]), wt = rng.tensor([k, c, r, r]), b = rng.tensor([k])
                for threads in [1, 2] {
                    Parallel.withThreads(threads) {
                        GradCheck().check([x, wt, b]) { NN.conv2d($0[0], weight: $0[1], bias: $0[2], stride: st, padding: pad, dilation: dil) }
                        GradCheck().check([x, wt]) { NN.conv2d($0[0], weight: $0[1], bias: nil, stride: st, padding: pad, dilation: dil) }
                    }
                }
            }
        }
    }

    func testConvGradientsSingleInput() {
        // Only one of x / weight needs a gradient (the other paths of backward).
        var rng = SplitMix(seed: 26)
        let x = rng.tensor([3, 2, 6, 5]), wt = rng.tensor([3, 2, 3, 3])
        let saved = ConvGeometry.flipRatio
        defer { ConvGeometry.flipRatio = saved }
        for flip in [0, 1 << 20] {
            ConvGeometry.flipRatio = flip
            for threads in [1, 2] {
                Parallel.withThreads(threads) {
                    GradCheck().check([x]) { NN.conv2d($0[0], weight: wt, bias: nil, padding: 1) }
                    GradCheck().check([wt]) { NN.conv2d(x, weight: $0[0], bias: nil, padding: 1) }
                }
            }
        }
    }

    func testConvTransposeGradients() {
        var rng = SplitMix(seed: 27)
        for (n, ci, co, h, w) in [(1, 3, 2, 3, 4), (3, 2, 3, 3, 3)] {
            let x = rng.tensor([n, ci, h, w]), wt = rng.tensor([ci, co, 2, 2])
            for threads in [1, 2] {
                Parallel.withThreads(threads) {
                    GradCheck().check([x, wt]) { NN.convTranspose2x2($0[0], weight: $0[1]) }
                }
            }
        }
    }

    func testLinearGradients() {
        var rng = SplitMix(seed: 28)
        let x = rng.tensor([2, 3, 6]), wt = rng.tensor([4, 6]), b = rng.tensor([4])
        let x1 = rng.tensor([6])
        for threads in [1, 2] {
            Parallel.withThreads(threads) {
                GradCheck().check([x, wt, b]) { NN.linear($0[0], weight: $0[1], bias: $0[2]) }
                GradCheck().check([x, wt]) { NN.linear($0[0], weight: $0[1], bias: nil) }
                GradCheck().check([x1, wt, b]) { NN.linear($0[0], weight: $0[1], bias: $0[2]) }
            }
        }
    }

    // MARK: threads

    /// Forward and backward with 2 threads match 1 thread (to 1e-6 relative).
    func testThreadCountsAgree() {
        var rng = SplitMix(seed: 29)
        func run(_ threads: Int, _ f: ([Tensor]) -> Tensor, _ inputs: [Tensor]) -> [[Float]] {
            for t in inputs { t.requiresGrad = true; t.grad = nil }
            defer { for t in inputs { t.requiresGrad = false; t.grad = nil } }
            return Parallel.withThreads(threads) {
                let y = withGradients { f(inputs) }
                let seed = Tensor(shape: y.shape, values: (0..<y.count).map { Float($0 % 7) - 3 })
                y.backward(seed: seed)
                return [y.scalars] + inputs.map { $0.grad!.scalars }
            }
        }
        func compare(_ a: [[Float]], _ b: [[Float]], _ what: String) {
            for (u, v) in zip(a, b) {
                XCTAssertEqual(u.count, v.count)
                let scale = max(1, u.map { abs($0) }.max() ?? 0)
                var worst: Float = 0
                for (p, q) in zip(u, v) { worst = max(worst, abs(p - q)) }
                XCTAssertLessThanOrEqual(worst / scale, 1e-6, what)
            }
        }
        for n in [1, 3, 4] {
            for (c, k, h, w, r, st, pad, dil) in [(8, 16, 20, 18, 3, 1, 1, 1), (16, 8, 14, 18, 3, 2, 1, 1),
                                                  (8, 16, 14, 10, 3, 1, 4, 4), (16, 24, 14, 18, 1, 1, 0, 1)] {
                let x = rng.tensor([n, c, h, w]), wt = rng.tensor([k, c, r, r]), b = rng.tensor([k])
                let f: ([Tensor]) -> Tensor = { NN.conv2d($0[0], weight: $0[1], bias: $0[2], stride: st, padding: pad, dilation: dil) }
                compare(run(1, f, [x, wt, b]), run(2, f, [x, wt, b]), "conv n \(n) c \(c) k \(k) r \(r)")
            }
            let x = rng.tensor([n, 24, 7, 9]), wt = rng.tensor([24, 12, 2, 2])
            let ft: ([Tensor]) -> Tensor = { NN.convTranspose2x2($0[0], weight: $0[1]) }
            compare(run(1, ft, [x, wt]), run(2, ft, [x, wt]), "convT n \(n)")
            let xl = rng.tensor([n, 40, 30]), wl = rng.tensor([50, 30]), bl = rng.tensor([50])
            let fl: ([Tensor]) -> Tensor = { NN.linear($0[0], weight: $0[1], bias: $0[2]) }
            compare(run(1, fl, [xl, wl, bl]), run(2, fl, [xl, wl, bl]), "linear n \(n)")
        }
    }
}
