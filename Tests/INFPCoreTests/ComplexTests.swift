import Foundation
import XCTest
@testable import INFPCore

final class ComplexTests: XCTestCase {
    func testValues() {
        // 3 + 4i, −1 + 0i, 0 − 2i, 0 + 0i
        let z = Tensor(shape: [2, 2, 2], values: [3, 4, -1, 0, 0, -2, 0, 0])
        XCTAssertEqual(Complex.abs(z).shape, [2, 2])
        XCTAssertEqual(Complex.abs(z).scalars, [5, 1, 2, 0])
        let a = Complex.angle(z).scalars
        XCTAssertEqual(a[0], atan2f(4, 3)); XCTAssertEqual(a[1], .pi, accuracy: 1e-6)
        XCTAssertEqual(a[2], -.pi / 2, accuracy: 1e-6); XCTAssertEqual(a[3], 0)
        XCTAssertEqual(Complex.real(z).scalars, [3, -1, 0, 0])
        XCTAssertEqual(Complex.imag(z).scalars, [4, 0, -2, 0])
        XCTAssertEqual(Complex.make(real: Complex.real(z), imag: Complex.imag(z)).scalars, z.scalars)

        let p = Complex.polar(magnitude: Tensor(shape: [2], values: [2, 3]), phase: Tensor(shape: [2], values: [.pi / 2, 0]))
        XCTAssertEqual(p.shape, [2, 2])
        XCTAssertEqual(p.data[0], 0, accuracy: 1e-6); XCTAssertEqual(p.data[1], 2, accuracy: 1e-6)
        XCTAssertEqual(p.data[2], 3); XCTAssertEqual(p.data[3], 0)

        // (1 + 2i)(3 − i) = 5 + 5i; i·i = −1.
        let m = Complex.multiply(Tensor(shape: [2, 2], values: [1, 2, 0, 1]), Tensor(shape: [2, 2], values: [3, -1, 0, 1]))
        XCTAssertEqual(m.scalars, [5, 5, -1, 0])
    }

    func testPolarOfAbsAngleIsIdentity() {
        var rng = SplitMix(seed: 31)
        let z = rng.tensor([3, 5, 2])
        let back = Complex.polar(magnitude: Complex.abs(z), phase: Complex.angle(z))
        for i in 0..<z.count { XCTAssertEqual(back.data[i], z.data[i], accuracy: 1e-6) }
    }

    func testGradients() {
        var rng = SplitMix(seed: 32)
        // Magnitudes bounded away from 0 (abs, angle are not smooth there), and phases away from
        // the branch cut of atan2 on the negative real axis (re > 0.1 keeps |angle| < π/2 + margin).
        let z = Tensor(shape: [4, 5, 2], values: (0..<20).flatMap { _ -> [Float] in
            [rng.uniform(0.2, 1), rng.uniform(-1, 1) * (rng.next() % 2 == 0 ? 1 : 3)] })
        GradCheck().check([z]) { Complex.abs($0[0]) }
        GradCheck().check([z]) { Complex.angle($0[0]) }
        // Negative real parts are fine for angle as long as im stays away from 0.
        let w = Tensor(shape: [6, 2], values: [-0.7, 0.5, -0.3, -0.9, 0.1, 0.8, -1, 0.3, 0.5, -0.4, -0.2, -0.6])
        GradCheck().check([w]) { Complex.angle($0[0]) }
        GradCheck().check([w]) { Complex.abs($0[0]) }

        let m = rng.tensor([3, 4], 0.1, 2), p = rng.tensor([3, 4], -4, 4)
        GradCheck().check([m, p]) { Complex.polar(magnitude: $0[0], phase: $0[1]) }
        GradCheck().check([m, p]) { Complex.make(real: $0[0], imag: $0[1]) }
        GradCheck().check([z]) { Complex.real($0[0]) }
        GradCheck().check([z]) { Complex.imag($0[0]) }
        let a = rng.tensor([2, 3, 2]), b = rng.tensor([2, 3, 2])
        GradCheck().check([a, b]) { Complex.multiply($0[0], $0[1]) }
        GradCheck().check([a]) { Complex.multiply($0[0], $0[0]) }  // both operands the same tensor
    }

    /// torch's convention: abs and angle have zero gradient at the origin.
    func testGradientsAtOrigin() {
        let z = Tensor(shape: [2, 2], values: [0, 0, 3, 4])
        z.requiresGrad = true
        withGradients { Complex.abs(z).backward() }
        XCTAssertEqual(z.grad!.scalars, [0, 0, 0.6, 0.8])
        z.zeroGrad()
        withGradients { Complex.angle(z).backward() }
        XCTAssertEqual(z.grad!.scalars[0], 0); XCTAssertEqual(z.grad!.scalars[1], 0)
        XCTAssertEqual(z.grad!.scalars[2], -4 / 25, accuracy: 1e-7); XCTAssertEqual(z.grad!.scalars[3], 3 / 25, accuracy: 1e-7)
    }

    func testWeightedBasesValuesAndGradients() {
        var rng = SplitMix(seed: 33)
        let (B, N, M, P, Q) = (2, 3, 5, 3, 4)
        let r = rng.tensor([B, N, M]), w = rng.tensor([P, Q, N, 2])
        let k = Complex.weightedBases(routing: r, weights: w)
        XCTAssertEqual(k.shape, [B, P, Q, M, 2])
        for b in 0..<B { for p in 0..<P { for q in 0..<Q { for m in 0..<M { for c in 0..<2 {
            var acc = 0.0
            for n in 0..<N { acc += Double(r.data[(b * N + n) * M + m]) * Double(w.data[((p * Q + q) * N + n) * 2 + c]) }
            XCTAssertEqual(Double(k.data[(((b * P + p) * Q + q) * M + m) * 2 + c]), acc, accuracy: 1e-5)
        } } } } }
        GradCheck().check([r, w]) { Complex.weightedBases(routing: $0[0], weights: $0[1]) }
        // Only one input differentiated at a time also works.
        GradCheck().check([w]) { Complex.weightedBases(routing: r, weights: $0[0]) }
        GradCheck().check([r]) { Complex.weightedBases(routing: $0[0], weights: w) }
    }

    /// The threaded split over P·Q (per-chunk partial sums for dr) gives the same results.
    func testWeightedBasesThreaded() {
        var rng = SplitMix(seed: 36)
        let r = rng.tensor([2, 4, 7]), w = rng.tensor([16, 9, 4, 2]), seed = rng.tensor([2, 16, 9, 7, 2])
        func run(_ threads: Int) -> [[Float]] {
            Parallel.withThreads(threads) {
                r.requiresGrad = true; w.requiresGrad = true
                defer { r.requiresGrad = false; w.requiresGrad = false; r.grad = nil; w.grad = nil }
                let k = withGradients { () -> Tensor in
                    let k = Complex.weightedBases(routing: r, weights: w)
                    k.backward(seed: seed)
                    return k
                }
                return [k.scalars, r.grad!.scalars, w.grad!.scalars]
            }
        }
        let one = run(1), two = run(2)
        XCTAssertEqual(one[0], two[0])
        XCTAssertEqual(one[2], two[2])
        for (a, b) in zip(one[1], two[1]) { XCTAssertEqual(a, b, accuracy: 1e-4) }
    }

    /// The trajectory filter's spectral path (spec §2.5): irfft2(rfft2(Z) · K) with ortho norm
    /// over non-last axes (1, 2) of a (B, P, Q, M) tensor.
    func testDynamicFilterChainGradients() {
        var rng = SplitMix(seed: 34)
        let (B, P, Q, M, N) = (2, 4, 5, 3, 2)
        let z = rng.tensor([B, P, Q, M]), r = rng.tensor([B, N, M]), w = rng.tensor([P, Q / 2 + 1, N, 2])
        GradCheck().check([z, r, w]) { t in
            let zf = FFT.rfft2(t[0], axes: (1, 2), norm: .ortho)
            let k = Complex.weightedBases(routing: t[1], weights: t[2])
            return FFT.irfft2(Complex.multiply(zf, k), axes: (1, 2), lastSize: Q, norm: .ortho)
        }
    }

    /// The frequency branch of the fusion module (spec §2.3, polar mode) with smooth stand-ins
    /// for the two processes: irfft2(polar(m + m², p)) of rfft2(x), backward norm.
    func testPolarFrequencyBranchGradients() {
        var rng = SplitMix(seed: 35)
        for shape in [[2, 3, 4, 6], [1, 2, 5, 5]] {
            let x = rng.tensor(shape)
            GradCheck().check([x]) { t in
                let xf = FFT.rfft2(t[0], axes: (2, 3), norm: .backward)
                let m = Complex.abs(xf), p = Complex.angle(xf)
                let m2 = m + m * m * 0.1
                return FFT.irfft2(Complex.polar(magnitude: m2, phase: p), axes: (2, 3), lastSize: shape[3], norm: .backward)
            }
        }
    }
}
