import Foundation
import XCTest
@testable import INFPCore

/// FFT forward values against a naive O(n²) DFT in double precision, round trips, and
/// finite-difference checks of the adjoints (spec §2.6) on non-Hermitian spectra.
final class FFTTests: XCTestCase {
    // (shape, axes) covering last axes, non-last axes, loops before/between/after the FFT axes,
    // even and odd sizes on both axes, and degenerate sizes 1 and 2.
    static let cases: [([Int], (Int, Int))] = [
        ([4, 6], (0, 1)),
        ([5, 7], (0, 1)),
        ([3, 4, 5], (0, 1)),        // loop after the FFT axes
        ([2, 3, 4, 3], (1, 2)),     // (B, P, Q, D) as in the trajectory filter
        ([4, 2, 5], (0, 2)),        // loop between the FFT axes
        ([2, 2, 6, 3], (0, 3)),     // loops between, odd last size
        ([2, 3, 1], (1, 2)),        // n1 = 1
        ([1, 2, 2], (1, 2)),
        ([6, 2], (0, 1)),           // n1 = 2: only DC and Nyquist
    ]

    // MARK: Naive references (double precision)

    /// Multi-index helpers over a row-major shape.
    static func unravel(_ flat: Int, _ shape: [Int]) -> [Int] {
        var idx = [Int](repeating: 0, count: shape.count), rem = flat
        for d in stride(from: shape.count - 1, through: 0, by: -1) { idx[d] = rem % shape[d]; rem /= shape[d] }
        return idx
    }
    static func ravel(_ idx: [Int], _ shape: [Int]) -> Int {
        var flat = 0
        for d in 0..<shape.count { flat = flat * shape[d] + idx[d] }
        return flat
    }

    static func scale(_ norm: FFTNorm, _ n: Int, inverse: Bool) -> Double {
        switch norm {
        case .backward: return inverse ? 1 / Double(n) : 1
        case .ortho: return 1 / Double(n).squareRoot()
        }
    }

    /// X[k0, k1] = s Σ_j x[j] e^{−2πi(k0 j0/n0 + k1 j1/n1)}, k1 < n1/2 + 1.
    static func naiveRfft2(_ x: Tensor, _ axes: (Int, Int), _ norm: FFTNorm) -> [Double] {
        let (a0, a1) = axes
        let n0 = x.shape[a0], n1 = x.shape[a1]
        var oShape = x.shape; oShape[a1] = n1 / 2 + 1
        let s = scale(norm, n0 * n1, inverse: false)
        var out = [Double](repeating: 0, count: oShape.reduce(1, *) * 2)
        for o in 0..<(out.count / 2) {
            var idx = unravel(o, oShape)
            let k0 = idx[a0], k1 = idx[a1]
            var re = 0.0, im = 0.0
            for j0 in 0..<n0 {
                for j1 in 0..<n1 {
                    idx[a0] = j0; idx[a1] = j1
                    let v = Double(x.data[ravel(idx, x.shape)])
                    let th = -2 * Double.pi * (Double(k0 * j0) / Double(n0) + Double(k1 * j1) / Double(n1))
                    re += v * cos(th); im += v * sin(th)
                }
            }
            out[2 * o] = s * re; out[2 * o + 1] = s * im
        }
        return out
    }

    /// y[j] = s Re Σ_{k0, k1 < h} c(k1) Y[k] e^{+2πi(k0 j0/n0 + k1 j1/n1)}, c = 1 for the DC and
    /// (even n1) Nyquist columns, 2 otherwise: the C2R convention of FFTW and torch.
    static func naiveIrfft2(_ z: Tensor, _ axes: (Int, Int), _ n1: Int, _ norm: FFTNorm) -> [Double] {
        let (a0, a1) = axes
        let zShape = Array(z.shape.dropLast())
        var oShape = zShape; oShape[a1] = n1
        let n0 = oShape[a0], h = zShape[a1]
        let s = scale(norm, n0 * n1, inverse: true)
        var out = [Double](repeating: 0, count: oShape.reduce(1, *))
        for o in 0..<out.count {
            var idx = unravel(o, oShape)
            let j0 = idx[a0], j1 = idx[a1]
            var acc = 0.0
            for k0 in 0..<n0 {
                for k1 in 0..<h {
                    idx[a0] = k0; idx[a1] = k1
                    let f = ravel(idx, zShape)
                    let re = Double(z.data[2 * f]), im = Double(z.data[2 * f + 1])
                    let c: Double = (k1 == 0 || (n1 % 2 == 0 && k1 == n1 / 2)) ? 1 : 2
                    let th = 2 * Double.pi * (Double(k0 * j0) / Double(n0) + Double(k1 * j1) / Double(n1))
                    acc += c * (re * cos(th) - im * sin(th))
                }
            }
            out[o] = s * acc
        }
        return out
    }

    func assertClose(_ t: Tensor, _ ref: [Double], tol: Double, _ msg: String, line: UInt = #line) {
        XCTAssertEqual(t.count, ref.count, msg, line: line)
        var worst = 0.0, at = 0
        for i in 0..<min(t.count, ref.count) {
            let e = Swift.abs(Double(t.data[i]) - ref[i])
            if e > worst { worst = e; at = i }
        }
        XCTAssertLessThanOrEqual(worst, tol, "\(msg): element \(at) off by \(worst)", line: line)
    }

    static func halfShape(_ shape: [Int], _ a1: Int) -> [Int] {
        var s = shape; s[a1] = shape[a1] / 2 + 1; return s + [2]
    }

    // MARK: Forward values

    func testRfft2HandWorked() {
        // [[1, 2], [3, 4]]: X00 = 10, X01 = (1−2)+(3−4) = −2, X10 = (1+2)−(3+4) = −4, X11 = 0.
        let x = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        let z = FFT.rfft2(x, axes: (0, 1), norm: .backward)
        XCTAssertEqual(z.shape, [2, 2, 2])
        XCTAssertEqual(z.scalars, [10, 0, -2, 0, -4, 0, 0, 0])
        // Ortho on the same input: divide by √4 = 2.
        XCTAssertEqual(FFT.rfft2(x, axes: (0, 1), norm: .ortho).scalars, [5, 0, -1, 0, -2, 0, 0, 0])

        // Impulse at (j0, j1) = (0, 1) in a 3×4 grid: X[k0, k1] = e^{−2πi k1/4} = 1, −i, −1.
        var v = [Float](repeating: 0, count: 12); v[1] = 1
        let imp = FFT.rfft2(Tensor(shape: [3, 4], values: v), axes: (0, 1), norm: .backward)
        XCTAssertEqual(imp.shape, [3, 3, 2])
        let expect: [Float] = [1, 0, 0, -1, -1, 0]
        for k0 in 0..<3 { for i in 0..<6 { XCTAssertEqual(imp.data[k0 * 6 + i], expect[i], accuracy: 1e-6) } }
    }

    func testIrfft2HandWorked() {
        // Only the DC bin, = 1 + 5i in a (2, 4) grid: the imaginary part is ignored, y = 1/8 everywhere.
        var v = [Float](repeating: 0, count: 2 * 3 * 2); v[0] = 1; v[1] = 5
        let y = FFT.irfft2(Tensor(shape: [2, 3, 2], values: v), axes: (0, 1), lastSize: 4, norm: .backward)
        XCTAssertEqual(y.shape, [2, 4])
        for i in 0..<8 { XCTAssertEqual(y.data[i], 0.125, accuracy: 1e-7) }
        // Nyquist column (k1 = 2) with imaginary part only, at k0 = 0: ignored too.
        v = [Float](repeating: 0, count: 12); v[5] = 3
        let y2 = FFT.irfft2(Tensor(shape: [2, 3, 2], values: v), axes: (0, 1), lastSize: 4, norm: .backward)
        for i in 0..<8 { XCTAssertEqual(y2.data[i], 0, accuracy: 1e-7) }
        // But Im of the DC column at k0 = 1 is not ignored in 2-D: with Y[1, 0] = i in a (4, 4)
        // grid, y[j0, j1] = Re(i·e^{2πi j0/4})/16 = −sin(π j0/2)/16.
        v = [Float](repeating: 0, count: 4 * 3 * 2); v[3 * 2 + 1] = 1
        let y3 = FFT.irfft2(Tensor(shape: [4, 3, 2], values: v), axes: (0, 1), lastSize: 4, norm: .backward)
        for j0 in 0..<4 { for j1 in 0..<4 {
            XCTAssertEqual(y3.data[j0 * 4 + j1], Float(-sin(Double.pi * Double(j0) / 2) / 16), accuracy: 1e-7)
        } }
    }

    func testRfft2MatchesNaiveDFT() {
        var rng = SplitMix(seed: 11)
        for (shape, axes) in Self.cases {
            let x = rng.tensor(shape)
            for norm in [FFTNorm.backward, .ortho] {
                let z = FFT.rfft2(x, axes: axes, norm: norm)
                XCTAssertEqual(z.shape, Self.halfShape(shape, axes.1))
                assertClose(z, Self.naiveRfft2(x, axes, norm), tol: 1e-5 * Double(shape.reduce(1, *)).squareRoot() + 1e-5,
                            "rfft2 \(shape) \(axes) \(norm)")
            }
        }
    }

    /// Bins (k0, k1) with k0 ∈ {0, n0/2}, k1 ∈ {0, n1/2} (even sizes) are real: their imaginary
    /// part must be exactly +0 so that angle() there is 0 or +π, never −π.
    func testSelfConjugateBinsArePositiveZero() {
        var rng = SplitMix(seed: 16)
        let x = rng.tensor([2, 4, 6, 3], -1, 0)  // negative values: the DC bin is negative
        let z = FFT.rfft2(x, axes: (1, 2), norm: .ortho)
        for b in 0..<2 { for k0 in [0, 2] { for k1 in [0, 3] { for d in 0..<3 {
            let im = z.data[(((b * 4 + k0) * 4 + k1) * 3 + d) * 2 + 1]
            XCTAssertTrue(im == 0 && im.sign == .plus, "Im at (\(k0), \(k1)) is \(im)")
        } } } }
        XCTAssertEqual(Complex.angle(z).scalars[0], .pi, accuracy: 1e-6)
    }

    func testIrfft2MatchesNaiveOnNonHermitianInput() {
        var rng = SplitMix(seed: 12)
        for (shape, axes) in Self.cases {
            // A random half spectrum: nonzero imaginary parts everywhere, also at DC/Nyquist.
            let z = rng.tensor(Self.halfShape(shape, axes.1))
            for norm in [FFTNorm.backward, .ortho] {
                let before = z.scalars
                let y = FFT.irfft2(z, axes: axes, lastSize: shape[axes.1], norm: norm)
                XCTAssertEqual(z.scalars, before, "irfft2 must not modify its input")
                XCTAssertEqual(y.shape, shape)
                assertClose(y, Self.naiveIrfft2(z, axes, shape[axes.1], norm), tol: 1e-5,
                            "irfft2 \(shape) \(axes) \(norm)")
            }
        }
    }

    func testRoundTrip() {
        var rng = SplitMix(seed: 13)
        for (shape, axes) in Self.cases + [([3, 16, 15, 2], (1, 2))] {
            let x = rng.tensor(shape)
            for norm in [FFTNorm.backward, .ortho] {
                let y = FFT.irfft2(FFT.rfft2(x, axes: axes, norm: norm), axes: axes, lastSize: shape[axes.1], norm: norm)
                assertClose(y, x.scalars.map(Double.init), tol: 1e-5, "round trip \(shape) \(axes) \(norm)")
            }
        }
    }

    /// Ortho rfft2 preserves energy when each interior column is counted twice (Parseval).
    func testOrthoParseval() {
        var rng = SplitMix(seed: 14)
        let x = rng.tensor([6, 7])
        let z = FFT.rfft2(x, axes: (0, 1), norm: .ortho)
        var ex = 0.0, ez = 0.0
        for v in x.scalars { ex += Double(v * v) }
        for k0 in 0..<6 { for k1 in 0..<4 {
            let i = (k0 * 4 + k1) * 2
            ez += (k1 == 0 ? 1 : 2) * Double(z.data[i] * z.data[i] + z.data[i + 1] * z.data[i + 1])
        } }
        XCTAssertEqual(ex, ez, accuracy: 1e-4)
    }

    /// Sizes that exercise FFTW's non-trivial codelets and the plan cache under threads.
    func testLargerSizesAndConcurrentUse() {
        var rng = SplitMix(seed: 15)
        let x = rng.tensor([2, 24, 30, 3])
        let ref = FFT.rfft2(x, axes: (1, 2), norm: .ortho).scalars
        let naive = Self.naiveRfft2(x, (1, 2), .ortho)
        assertClose(Tensor(shape: Self.halfShape(x.shape, 2), values: ref), naive, tol: 1e-4, "rfft2 24×30")
        var results = [[Float]](repeating: [], count: 8)
        let lock = NSLock()
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            // Different shapes per thread so that several plans are made concurrently.
            let shape = [1 + i % 3, 10 + i, 12, 3]
            let xi = SplitMix(seed: UInt64(i)).tensorCopy(shape)
            let z = FFT.rfft2(xi, axes: (1, 2), norm: .ortho)
            let y = FFT.irfft2(z, axes: (1, 2), lastSize: 12, norm: .ortho)
            var worst: Float = 0
            for k in 0..<xi.count { worst = max(worst, Swift.abs(xi.data[k] - y.data[k])) }
            let r = i % 2 == 0 ? FFT.rfft2(x, axes: (1, 2), norm: .ortho).scalars : [worst]
            lock.lock(); results[i] = r; lock.unlock()
        }
        for i in 0..<8 {
            if i % 2 == 0 { XCTAssertEqual(results[i], ref) } else { XCTAssertLessThan(results[i][0], 1e-5) }
        }
    }

    /// Transforms large enough to be split over threads (the longest loop cut into chunks with
    /// their own plans) give what one thread gives, for loops before, between and after the axes.
    func testThreadedTransformsMatchOneThread() {
        let cases: [([Int], (Int, Int))] = [([1, 16, 40, 101], (1, 2)), ([3, 70, 30, 40], (2, 3)), ([33, 30, 3, 40], (1, 3))]
        for (shape, axes) in cases {
            var rng = SplitMix(seed: 21)
            let x = rng.tensor(shape)
            let n1 = shape[axes.1]
            func run(_ threads: Int) -> ([Float], [Float]) {
                Parallel.withThreads(threads) {
                    let z = FFT.rfft2(x, axes: axes, norm: .ortho)
                    return (z.scalars, FFT.irfft2(z, axes: axes, lastSize: n1, norm: .ortho).scalars)
                }
            }
            let one = run(1), two = run(2)
            for (a, b) in [(one.0, two.0), (one.1, two.1)] {
                XCTAssertEqual(a.count, b.count)
                var worst: Float = 0
                for i in 0..<a.count { worst = max(worst, Swift.abs(a[i] - b[i])) }
                XCTAssertLessThan(worst, 1e-5, "\(shape) axes \(axes)")
            }
            // And the round trip still holds.
            for i in 0..<x.count { XCTAssertEqual(two.1[i], x.data[i], accuracy: 1e-5) }
        }
    }

    // MARK: Gradients (exact adjoints)

    func testRfft2Gradients() {
        var rng = SplitMix(seed: 21)
        for (shape, axes) in Self.cases {
            let x = rng.tensor(shape)
            for norm in [FFTNorm.backward, .ortho] {
                GradCheck().check([x]) { FFT.rfft2($0[0], axes: axes, norm: norm) }
            }
        }
    }

    func testIrfft2GradientsOnNonHermitianInput() {
        var rng = SplitMix(seed: 22)
        for (shape, axes) in Self.cases {
            let z = rng.tensor(Self.halfShape(shape, axes.1))
            for norm in [FFTNorm.backward, .ortho] {
                GradCheck().check([z]) { FFT.irfft2($0[0], axes: axes, lastSize: shape[axes.1], norm: norm) }
            }
        }
    }

    /// The adjoint identities <rfft2(x), G> = <x, rfft2ᵀ(G)> and <irfft2(Z), g> = <Z, irfft2ᵀ(g)>
    /// checked directly in double precision on larger random tensors, all elements at once.
    func testAdjointIdentities() {
        var rng = SplitMix(seed: 23)
        for (shape, axes) in Self.cases + [([2, 9, 10, 3], (1, 2)), ([8, 8], (0, 1))] {
            for norm in [FFTNorm.backward, .ortho] {
                let x = rng.tensor(shape), G = rng.tensor(Self.halfShape(shape, axes.1))
                x.requiresGrad = true
                withGradients { FFT.rfft2(x, axes: axes, norm: norm).backward(seed: G) }
                let lhs = dot(FFT.rfft2(x, axes: axes, norm: norm), G), rhs = dot(x, x.grad!)
                XCTAssertEqual(lhs, rhs, accuracy: 1e-4 * max(1, Swift.abs(lhs)), "rfft2ᵀ \(shape) \(axes) \(norm)")

                let z = rng.tensor(Self.halfShape(shape, axes.1)), g = rng.tensor(shape)
                z.requiresGrad = true
                withGradients { FFT.irfft2(z, axes: axes, lastSize: shape[axes.1], norm: norm).backward(seed: g) }
                let l2 = dot(FFT.irfft2(z, axes: axes, lastSize: shape[axes.1], norm: norm), g), r2 = dot(z, z.grad!)
                XCTAssertEqual(l2, r2, accuracy: 1e-4 * max(1, Swift.abs(l2)), "irfft2ᵀ \(shape) \(axes) \(norm)")
            }
        }
    }

    private func dot(_ a: Tensor, _ b: Tensor) -> Double {
        var acc = 0.0
        for i in 0..<a.count { acc += Double(a.data[i]) * Double(b.data[i]) }
        return acc
    }
}

extension SplitMix {
    /// `tensor` on a copy, for use inside concurrent closures.
    func tensorCopy(_ shape: [Int]) -> Tensor {
        var r = self
        return r.tensor(shape)
    }
}
