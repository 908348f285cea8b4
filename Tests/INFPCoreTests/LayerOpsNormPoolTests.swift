import XCTest
import Glibc
@testable import INFPCore

/// Pooling, batch normalisation, dropout and the SSIM Gaussian filter.
final class LayerOpsNormPoolTests: XCTestCase {
    /// Distinct values k·0.05 (k = 0..<n, shuffled, shifted to straddle 0): no ties within
    /// ±h = 0.01 of each other, so every pooling argmax is stable under finite differences.
    func distinct(_ shape: [Int], _ rng: inout SplitMix) -> Tensor {
        let n = shape.reduce(1, *)
        var v = (0..<n).map { Float($0) * 0.05 - Float(n) * 0.025 }
        for i in stride(from: n - 1, to: 0, by: -1) { v.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
        return Tensor(shape: shape, values: v)
    }

    // MARK: Max pooling

    func naiveMaxPool(_ x: Tensor) -> (values: [Float], argmax: [Int]) {
        let h = x.shape[x.rank - 2], w = x.shape[x.rank - 1], planes = x.count / (h * w)
        let ho = (h + 2 - 3) / 2 + 1, wo = (w + 2 - 3) / 2 + 1
        var vals: [Float] = [], args: [Int] = []
        for p in 0..<planes {
            for oi in 0..<ho {
                for oj in 0..<wo {
                    var best = -Float.infinity, at = -1
                    for di in 0..<3 {
                        for dj in 0..<3 {
                            let i = 2 * oi - 1 + di, j = 2 * oj - 1 + dj
                            guard i >= 0, i < h, j >= 0, j < w else { continue }
                            let v = x.data[p * h * w + i * w + j]
                            if v > best { best = v; at = p * h * w + i * w + j }
                        }
                    }
                    vals.append(best); args.append(at)
                }
            }
        }
        return (vals, args)
    }

    func testMaxPoolValues() {
        let x = Tensor(shape: [1, 1, 4, 4], values: (1...16).map(Float.init))
        let y = NN.maxPool3x3s2p1(x)
        XCTAssertEqual(y.shape, [1, 1, 2, 2])
        XCTAssertEqual(y.scalars, [6, 8, 14, 16])
        // Negative inputs: padding acts as −∞, never as 0.
        let neg = Tensor(shape: [1, 1, 2, 2], values: [-4, -3, -2, -1])
        XCTAssertEqual(NN.maxPool3x3s2p1(neg).scalars, [-1])
        var rng = SplitMix(seed: 61)
        for (h, w) in [(1, 1), (2, 3), (5, 7), (6, 4), (8, 8), (9, 2)] {
            let t = rng.tensor([2, 3, h, w])
            let out = NN.maxPool3x3s2p1(t)
            XCTAssertEqual(out.shape, [2, 3, (h - 1) / 2 + 1, (w - 1) / 2 + 1])
            XCTAssertEqual(out.scalars, naiveMaxPool(t).values, "\(h)×\(w)")
        }
    }

    func testMaxPoolGradient() {
        var rng = SplitMix(seed: 62)
        for (h, w) in [(4, 4), (5, 7), (6, 3)] {
            GradCheck().check([distinct([2, 2, h, w], &rng)]) { NN.maxPool3x3s2p1($0[0]) }
        }
        // Ties: the gradient goes to the first maximum in row-major window order, and
        // overlapping windows accumulate.
        let x = Tensor(repeating: 1, shape: [1, 1, 3, 3])
        x.requiresGrad = true
        withGradients { NN.maxPool3x3s2p1(x).backward() }
        // Windows: (0,0) rows 0-1 cols 0-1 → (0,0); (0,1) rows 0-1 cols 1-2 → (0,1);
        // (1,0) rows 1-2 cols 0-1 → (1,0); (1,1) rows 1-2 cols 1-2 → (1,1).
        XCTAssertEqual(x.grad?.scalars, [1, 1, 0, 1, 1, 0, 0, 0, 0])
        // Gradient routed to the naive argmax, summed over overlapping windows.
        let t = distinct([2, 3, 7, 6], &rng)
        t.requiresGrad = true
        let seed = rng.tensor([2, 3, 4, 3])
        withGradients { NN.maxPool3x3s2p1(t).backward(seed: seed) }
        var expected = [Float](repeating: 0, count: t.count)
        for (o, a) in naiveMaxPool(t).argmax.enumerated() { expected[a] += seed.data[o] }
        XCTAssertEqual(t.grad?.scalars, expected)
    }

    // MARK: Average pooling

    func testAvgPool() {
        let x = Tensor(shape: [1, 1, 4, 4], values: (1...16).map(Float.init))
        XCTAssertEqual(NN.avgPool2x2(x).scalars, [3.5, 5.5, 11.5, 13.5])
        var rng = SplitMix(seed: 63)
        for (h, w) in [(2, 2), (5, 7), (6, 4), (3, 9)] {
            let t = rng.tensor([2, 3, h, w])
            let out = NN.avgPool2x2(t)
            XCTAssertEqual(out.shape, [2, 3, h / 2, w / 2])
            var ref: [Double] = []
            for p in 0..<6 {
                for i in 0..<(h / 2) {
                    for j in 0..<(w / 2) {
                        var s = 0.0
                        for di in 0..<2 { for dj in 0..<2 { s += Double(t.data[p * h * w + (2 * i + di) * w + 2 * j + dj]) } }
                        ref.append(s / 4)
                    }
                }
            }
            LayerRef.assertClose(out.scalars, ref, tol: 1e-6)
            GradCheck().check([t]) { NN.avgPool2x2($0[0]) }
        }
    }

    // MARK: Batch normalisation

    /// Reference batch norm in Double: output, batch mean, biased and unbiased variance.
    func naiveBatchNorm(_ x: Tensor, _ w: [Float], _ b: [Float], mean rm: [Float]?, variance rv: [Float]?,
                        eps: Double = 1e-5) -> (y: [Double], mean: [Double], biased: [Double], unbiased: [Double]) {
        let n = x.shape[0], c = x.shape[1], hw = x.count / (n * c), m = Double(n * hw)
        var y = [Double](repeating: 0, count: x.count)
        var means: [Double] = [], biased: [Double] = [], unbiased: [Double] = []
        for ch in 0..<c {
            let idx = (0..<n).flatMap { s in (0..<hw).map { (s * c + ch) * hw + $0 } }
            let mu = idx.reduce(0.0) { $0 + Double(x.data[$1]) } / m
            let ss = idx.reduce(0.0) { let d = Double(x.data[$1]) - mu; return $0 + d * d }
            means.append(mu); biased.append(ss / m); unbiased.append(ss / (m - 1))
            let useMean = rm.map { Double($0[ch]) } ?? mu, useVar = rv.map { Double($0[ch]) } ?? ss / m
            for i in idx { y[i] = Double(w[ch]) * (Double(x.data[i]) - useMean) / (useVar + eps).squareRoot() + Double(b[ch]) }
        }
        return (y, means, biased, unbiased)
    }

    func testBatchNormHandWorked() {
        // N=2, C=1, 1×1: x = [1, 3] → mean 2, biased var 1, unbiased var 2.
        let x = Tensor(shape: [2, 1, 1, 1], values: [1, 3])
        let w = Tensor(shape: [1], values: [2]), b = Tensor(shape: [1], values: [0.5])
        let rm = Tensor(zeros: [1]), rv = Tensor(repeating: 1, shape: [1])
        let y = NN.batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: true)
        let s = 1 / (1 + 1e-5).squareRoot()
        LayerRef.assertClose(y.scalars, [-2 * s + 0.5, 2 * s + 0.5], tol: 1e-6)
        LayerRef.assertClose(rm.scalars, [0.2], tol: 1e-7)   // 0.9·0 + 0.1·2
        LayerRef.assertClose(rv.scalars, [1.1], tol: 1e-7)   // 0.9·1 + 0.1·2 (unbiased)
        // Eval uses the running statistics: (x − 0.2)/√(1.1 + eps)·2 + 0.5.
        let e = NN.batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: false)
        let es = 1 / (1.1 + 1e-5).squareRoot()
        LayerRef.assertClose(e.scalars, [2 * 0.8 * es + 0.5, 2 * 2.8 * es + 0.5], tol: 1e-6)
        LayerRef.assertClose(rm.scalars, [0.2], tol: 1e-7)   // eval leaves them alone
    }

    func testBatchNormTrainingValuesAndRunningStats() {
        var rng = SplitMix(seed: 71)
        let x = rng.tensor([3, 4, 5, 6], -2, 3)
        let w = rng.tensor([4], 0.5, 1.5), b = rng.tensor([4])
        let rm0 = rng.tensor([4]), rv0 = rng.tensor([4], 0.5, 2)
        let rm = rm0.copy(), rv = rv0.copy()
        let y = NN.batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: true,
                               momentum: 0.1, eps: 1e-5)
        let ref = naiveBatchNorm(x, w.scalars, b.scalars, mean: nil, variance: nil)
        LayerRef.assertClose(y.scalars, ref.y, tol: 2e-6)
        LayerRef.assertClose(rm.scalars, (0..<4).map { 0.9 * Double(rm0.data[$0]) + 0.1 * ref.mean[$0] }, tol: 1e-6)
        LayerRef.assertClose(rv.scalars, (0..<4).map { 0.9 * Double(rv0.data[$0]) + 0.1 * ref.unbiased[$0] }, tol: 1e-6)
        // A second step (as the backbone does once per frame) compounds the update.
        _ = NN.batchNorm2d(x, weight: w, bias: b, runningMean: rm, runningVar: rv, training: true, momentum: 0.3)
        LayerRef.assertClose(rm.scalars, (0..<4).map { 0.7 * (0.9 * Double(rm0.data[$0]) + 0.1 * ref.mean[$0]) + 0.3 * ref.mean[$0] }, tol: 1e-6)
        // With unit weight and zero bias each channel is standardised.
        let z = NN.batchNorm2d(x, weight: Tensor(repeating: 1, shape: [4]), bias: Tensor(zeros: [4]),
                               runningMean: Tensor(zeros: [4]), runningVar: Tensor(zeros: [4]), training: true)
        let stats = naiveBatchNorm(z, [1, 1, 1, 1], [0, 0, 0, 0], mean: nil, variance: nil)
        for ch in 0..<4 {
            XCTAssertEqual(stats.mean[ch], 0, accuracy: 1e-6)
            XCTAssertEqual(stats.biased[ch], 1, accuracy: 1e-4)
        }
        // Eval against the reference with running statistics; eps is honoured.
        let e = NN.batchNorm2d(x, weight: w, bias: b, runningMean: rm0, runningVar: rv0, training: false, eps: 1e-3)
        LayerRef.assertClose(e.scalars, naiveBatchNorm(x, w.scalars, b.scalars, mean: rm0.scalars, variance: rv0.scalars, eps: 1e-3).y, tol: 2e-6)
    }

    func testBatchNormGradients() {
        var rng = SplitMix(seed: 72)
        let x = rng.tensor([3, 4, 3, 2], -2, 3)
        let w = rng.tensor([4], 0.5, 1.5), b = rng.tensor([4])
        let rm = rng.tensor([4]), rv = rng.tensor([4], 0.5, 2)
        GradCheck().check([x, w, b]) {
            NN.batchNorm2d($0[0], weight: $0[1], bias: $0[2], runningMean: rm.copy(), runningVar: rv.copy(), training: true)
        }
        GradCheck().check([x, w, b]) {
            NN.batchNorm2d($0[0], weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: false)
        }
        // Rank 2 (N, C) and a small spatial batch; x alone, then parameters alone.
        GradCheck().check([rng.tensor([5, 3])]) {
            NN.batchNorm2d($0[0], weight: w.slice(axis: 0, range: 0..<3), bias: b.slice(axis: 0, range: 0..<3),
                           runningMean: Tensor(zeros: [3]), runningVar: Tensor(repeating: 1, shape: [3]), training: true)
        }
        GradCheck().check([w, b]) {
            NN.batchNorm2d(x, weight: $0[0], bias: $0[1], runningMean: rm.copy(), runningVar: rv.copy(), training: true)
        }
        // Composed with a smooth nonlinearity, so the gradient is not just a linear map's.
        GradCheck().check([x, w, b]) {
            NN.batchNorm2d($0[0], weight: $0[1], bias: $0[2], runningMean: rm.copy(), runningVar: rv.copy(), training: true).sigmoid()
        }
    }

    func testBatchNormParallelMatchesSerial() {
        var rng = SplitMix(seed: 73)
        let x = rng.tensor([2, 8, 64, 64])
        let w = rng.tensor([8], 0.5, 1.5), b = rng.tensor([8])
        func run() -> ([Float], [Float], [Float]) {
            let xi = x.copy(), wi = w.copy(), bi = b.copy()
            xi.requiresGrad = true; wi.requiresGrad = true
            let rm = Tensor(zeros: [8]), rv = Tensor(repeating: 1, shape: [8])
            let y = withGradients { () -> Tensor in
                let y = NN.batchNorm2d(xi, weight: wi, bias: bi, runningMean: rm, runningVar: rv, training: true)
                y.backward(seed: x)
                return y
            }
            return (y.scalars, xi.grad!.scalars, wi.grad!.scalars + rm.scalars + rv.scalars)
        }
        let serial = run(), parallel = Parallel.withThreads(2) { run() }
        XCTAssertEqual(serial.0, parallel.0)
        XCTAssertEqual(serial.1, parallel.1)
        XCTAssertEqual(serial.2, parallel.2)
    }

    // MARK: Dropout2d

    func testDropoutMaskStatistics() {
        var rng = Rng(seed: 81)
        let x = Tensor(repeating: 1, shape: [100, 100, 2, 3])
        let y = NN.dropout2d(x, p: 0.3, training: true, rng: &rng)
        var dropped = 0
        for plane in 0..<10_000 {
            let vals = Array(y.scalars[(plane * 6)..<(plane * 6 + 6)])
            if vals[0] == 0 {
                dropped += 1
                XCTAssertEqual(vals, [Float](repeating: 0, count: 6))
            } else {
                for v in vals { XCTAssertEqual(v, 1 / 0.7, accuracy: 1e-6) }
            }
        }
        // Binomial(10000, 0.3): standard deviation 0.0046.
        XCTAssertEqual(Double(dropped) / 10_000, 0.3, accuracy: 0.02)
        // The expectation is preserved.
        XCTAssertEqual(Double(y.sum().item) / Double(x.count), 1, accuracy: 0.03)
        // The same seed gives the same mask; the draw advances the generator.
        var r1 = Rng(seed: 5), r2 = Rng(seed: 5)
        XCTAssertEqual(NN.dropout2d(x, p: 0.5, training: true, rng: &r1).scalars,
                       NN.dropout2d(x, p: 0.5, training: true, rng: &r2).scalars)
        XCTAssertNotEqual(r1.state, Rng(seed: 5).state)
    }

    func testDropoutIdentityAndExtremes() {
        var rng = Rng(seed: 82)
        var split = SplitMix(seed: 83)
        let x = split.tensor([2, 3, 4, 4])
        let state = rng.state
        XCTAssertTrue(NN.dropout2d(x, p: 0.5, training: false, rng: &rng) === x)
        XCTAssertTrue(NN.dropout2d(x, p: 0, training: true, rng: &rng) === x)
        XCTAssertEqual(rng.state, state, "identity must not consume random numbers")
        XCTAssertEqual(NN.dropout2d(x, p: 1, training: true, rng: &rng).scalars, [Float](repeating: 0, count: x.count))
    }

    func testDropoutGradientFollowsMask() {
        var split = SplitMix(seed: 84)
        let x = split.tensor([4, 6, 3, 3])
        x.requiresGrad = true
        var rng = Rng(seed: 85)
        let seed = split.tensor([4, 6, 3, 3])
        let y = withGradients { () -> Tensor in
            let y = NN.dropout2d(x, p: 0.4, training: true, rng: &rng)
            y.backward(seed: seed)
            return y
        }
        var zeroPlanes = 0
        for plane in 0..<24 {
            let kept = y.data[plane * 9] != 0
            if !kept { zeroPlanes += 1 }
            for k in 0..<9 {
                let i = plane * 9 + k
                let mask: Float = kept ? 1 / 0.6 : 0
                XCTAssertEqual(y.data[i], x.data[i] * mask, accuracy: 1e-6)
                XCTAssertEqual(x.grad!.data[i], seed.data[i] * mask, accuracy: 1e-6)
            }
        }
        XCTAssertTrue(zeroPlanes > 0 && zeroPlanes < 24, "mask should mix kept and dropped channels")
        // Finite differences with a fixed mask (fresh generator per evaluation).
        GradCheck().check([split.tensor([3, 5, 2, 2])]) {
            var r = Rng(seed: 86)
            return NN.dropout2d($0[0], p: 0.3, training: true, rng: &r)
        }
    }

    // MARK: Gaussian window and separable filter

    func testGaussianWindow() {
        let g = NN.gaussianWindow(size: 11, sigma: 1.5)
        let raw = (0..<11).map { Glibc.exp(-Double(($0 - 5) * ($0 - 5)) / (2 * 1.5 * 1.5)) }
        LayerRef.assertClose(g, raw.map { $0 / raw.reduce(0, +) }, tol: 1e-7)
        XCTAssertEqual(Double(g.reduce(0, +)), 1, accuracy: 1e-6)
        XCTAssertEqual(g[5], g.max())
        // Even size: centred at floor(n/2) = 2, so the window is not symmetric.
        let e = NN.gaussianWindow(size: 4, sigma: 1.5)
        let rawE = (0..<4).map { Glibc.exp(-Double(($0 - 2) * ($0 - 2)) / 4.5) }
        LayerRef.assertClose(e, rawE.map { $0 / rawE.reduce(0, +) }, tol: 1e-7)
        XCTAssertEqual(NN.gaussianWindow(size: 1, sigma: 1.5), [1])
    }

    func testSeparableFilterValues() {
        var rng = SplitMix(seed: 91)
        let kernel: [Float] = [0.1, -0.4, 0.7, 0.2]  // asymmetric: checks correlation order
        let x = rng.tensor([2, 3, 6, 7])
        let y = NN.separableFilter(x, kernel: kernel)
        XCTAssertEqual(y.shape, [2, 3, 3, 4])
        var ref: [Double] = []
        for p in 0..<6 {
            for i in 0..<3 {
                for j in 0..<4 {
                    var s = 0.0
                    for a in 0..<4 {
                        for b in 0..<4 {
                            s += Double(kernel[a]) * Double(kernel[b]) * Double(x.data[p * 42 + (i + a) * 7 + j + b])
                        }
                    }
                    ref.append(s)
                }
            }
        }
        LayerRef.assertClose(y.scalars, ref, tol: 1e-6)
        // The SSIM window over an 11×11 image gives a single value per channel; constants stay constant.
        let c = Tensor(repeating: 0.7, shape: [1, 2, 11, 12])
        let f = NN.separableFilter(c, kernel: NN.gaussianWindow(size: 11, sigma: 1.5))
        XCTAssertEqual(f.shape, [1, 2, 1, 2])
        for v in f.scalars { XCTAssertEqual(v, 0.7, accuracy: 1e-6) }
    }

    func testSeparableFilterGradients() {
        var rng = SplitMix(seed: 92)
        GradCheck().check([rng.tensor([2, 2, 6, 7])]) { NN.separableFilter($0[0], kernel: [0.1, -0.4, 0.7, 0.2]) }
        GradCheck().check([rng.tensor([1, 2, 11, 13])]) {
            NN.separableFilter($0[0], kernel: NN.gaussianWindow(size: 11, sigma: 1.5))
        }
        // SSIM-style composition: filter of a product of two inputs.
        let a = rng.tensor([1, 2, 8, 8]), b = rng.tensor([1, 2, 8, 8])
        GradCheck().check([a, b]) { NN.separableFilter($0[0] * $0[1], kernel: NN.gaussianWindow(size: 5, sigma: 1.5)) }
    }
}
