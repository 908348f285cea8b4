import XCTest
@testable import INFPCore

/// Winograd F(2×2, 3×3) against the im2col path (forward, both gradients) and finite differences.
final class WinogradConvTests: XCTestCase {
    private func withWinograd<T>(_ on: Bool, _ body: () -> T) -> T {
        let (c, k, t) = (ConvGeometry.winogradMinChannels, ConvGeometry.winogradMinOutputs, ConvGeometry.winogradMinTilesPerThread)
        ConvGeometry.winogradMinChannels = on ? 1 : Int.max
        ConvGeometry.winogradMinOutputs = on ? 1 : Int.max
        ConvGeometry.winogradMinTilesPerThread = on ? 1 : Int.max
        defer { ConvGeometry.winogradMinChannels = c; ConvGeometry.winogradMinOutputs = k; ConvGeometry.winogradMinTilesPerThread = t }
        return body()
    }

    private func relErr(_ a: Tensor, _ b: Tensor) -> Float {
        var m: Float = 0, s: Float = 0
        for i in 0..<a.count { m = max(m, abs(a.data[i] - b.data[i])); s = max(s, abs(b.data[i])) }
        return m / max(s, 1e-12)
    }

    func testTakenOnlyWhereItApplies() {
        let g3 = ConvGeometry(x: [8, 64, 32, 32], weight: [64, 64, 3, 3], stride: 1, padding: 1, dilation: 1)
        XCTAssertTrue(Parallel.withThreads(2) { g3.usesWinograd })
        // Too few tiles per thread for wide GEMMs.
        XCTAssertFalse(Parallel.withThreads(2) {
            ConvGeometry(x: [1, 64, 9, 9], weight: [64, 64, 3, 3], stride: 1, padding: 1, dilation: 1).usesWinograd })
        XCTAssertFalse(ConvGeometry(x: [1, 64, 9, 9], weight: [64, 64, 3, 3], stride: 2, padding: 1, dilation: 1).usesWinograd)
        XCTAssertFalse(ConvGeometry(x: [1, 64, 9, 9], weight: [64, 64, 3, 3], stride: 1, padding: 2, dilation: 2).usesWinograd)
        XCTAssertFalse(ConvGeometry(x: [1, 64, 9, 9], weight: [64, 64, 1, 1], stride: 1, padding: 0, dilation: 1).usesWinograd)
        XCTAssertFalse(ConvGeometry(x: [1, 8, 9, 9], weight: [8, 8, 3, 3], stride: 1, padding: 1, dilation: 1).usesWinograd)
    }

    func testForwardAndGradientsMatchIm2col() {
        var rng = SplitMix(seed: 21)
        // (n, c, k, h, w, padding, bias)
        let cases: [(Int, Int, Int, Int, Int, Int, Bool)] = [
            (1, 3, 5, 7, 9, 1, true), (2, 4, 3, 8, 8, 1, false), (3, 5, 6, 5, 11, 0, true),
            (2, 6, 4, 6, 7, 2, false), (1, 2, 2, 3, 3, 1, true), (3, 7, 9, 14, 18, 1, true),
            (1, 16, 8, 1, 1, 1, false), (2, 3, 4, 2, 5, 2, true), (2, 20, 33, 9, 10, 1, true),
            (3, 35, 17, 7, 13, 1, false),
        ]
        for (n, c, k, h, w, pad, hasBias) in cases {
            let x = rng.tensor([n, c, h, w]), wt = rng.tensor([k, c, 3, 3])
            let b: Tensor? = hasBias ? rng.tensor([k]) : nil
            let g = ConvGeometry(x: x.shape, weight: wt.shape, stride: 1, padding: pad, dilation: 1)
            let seed = rng.tensor([n, k, g.ho, g.wo])
            func run(_ on: Bool, threads: Int) -> [Tensor] {
                withWinograd(on) {
                    Parallel.withThreads(threads) {
                        let xi = x.copy(), wi = wt.copy(), bi = b?.copy()
                        for t in [xi, wi] + (bi.map { [$0] } ?? []) { t.requiresGrad = true }
                        let y = withGradients { () -> Tensor in
                            let y = NN.conv2d(xi, weight: wi, bias: bi, padding: pad)
                            y.backward(seed: seed)
                            return y
                        }
                        return [y.detached(), xi.grad!, wi.grad!] + (bi.map { [$0.grad!] } ?? [])
                    }
                }
            }
            let ref = run(false, threads: 1)
            for (threads, cap) in [(1, ConvGeometry.bandCap), (2, ConvGeometry.bandCap), (2, 16 * (c + k) * 3)] {
                // A small cap cuts the tiles into pieces of 3 (pieces cross tile rows and samples).
                let saved = ConvGeometry.bandCap
                ConvGeometry.bandCap = cap
                defer { ConvGeometry.bandCap = saved }
                let got = run(true, threads: threads)
                for (i, name) in ["output", "dx", "dw", "dbias"].prefix(got.count).enumerated() {
                    XCTAssertEqual(got[i].shape, ref[i].shape)
                    XCTAssertLessThan(relErr(got[i], ref[i]), 2e-6, "\(name) n\(n) c\(c) k\(k) \(h)×\(w) pad \(pad) threads \(threads)")
                }
            }
        }
    }

    func testFlippedInputGradientUsesWinogradAndMatchesFiniteDifferences() {
        var rng = SplitMix(seed: 4)
        let x = rng.tensor([2, 3, 6, 7]), wt = rng.tensor([3, 3, 3, 3]), b = rng.tensor([3])
        XCTAssertTrue(ConvGeometry(x: x.shape, weight: wt.shape, stride: 1, padding: 1, dilation: 1).prefersFlippedBackward)
        withWinograd(true) {
            GradCheck().check([x, wt, b]) { t in NN.conv2d(t[0], weight: t[1], bias: t[2], padding: 1) }
        }
    }
}

/// The `tiny` goldens with every 3×3 stride-1 undilated convolution (forward, input and
/// weight gradients) forced through Winograd F(2×2, 3×3) (the tiny model is below the
/// thresholds, so GoldenTests itself runs im2col).
final class WinogradGoldenTests: XCTestCase {
    private func forced(_ name: String) throws {
        let saved = (ConvGeometry.winogradMinChannels, ConvGeometry.winogradMinOutputs, ConvGeometry.winogradMinTilesPerThread)
        ConvGeometry.winogradMinChannels = 1
        ConvGeometry.winogradMinOutputs = 1
        ConvGeometry.winogradMinTilesPerThread = 1
        defer { (ConvGeometry.winogradMinChannels, ConvGeometry.winogradMinOutputs, ConvGeometry.winogradMinTilesPerThread) = saved }
        try GoldenTests(name: "WinogradGoldenTests.\(name)", testClosure: { _ in }).check(name)
    }

    func testDefault() throws { try forced("default") }
    func testNoFusion() throws { try forced("nofusion") }
}
