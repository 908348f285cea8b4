import XCTest
@testable import INFPCore

/// Losses and FFTs against the PyTorch reference (Tests/golden/loss_cases and fft_cases,
/// written in float64 by tools/make_goldens.py).
final class LossAndFFTGoldenTests: XCTestCase {
    func relativeError(_ a: Tensor, _ b: Tensor) -> Float {
        XCTAssertEqual(a.shape, b.shape)
        var diff: Float = 0, scale: Float = 0
        for i in 0..<min(a.count, b.count) { diff = max(diff, abs(a.data[i] - b.data[i])); scale = max(scale, abs(b.data[i])) }
        return diff / max(scale, 1e-12)
    }

    func testLossCases() throws {
        let f = try SafeTensors.read(GoldenTests.golden + "/loss_cases.safetensors")
        func t(_ n: String) -> Tensor { try! f.tensor(f.entry(n)!) }
        for k in 0..<3 {
            let pred = t("case\(k).pred"), target = t("case\(k).target"), alpha = t("case\(k).paper_alpha").item
            for (kind, expectedLoss, expectedGrad) in [("official", t("case\(k).loss_official"), t("case\(k).grad_official")),
                                                       ("paper", t("case\(k).loss_paper"), t("case\(k).grad_paper"))] {
                pred.requiresGrad = true; pred.grad = nil
                let loss = withGradients { () -> Tensor in
                    let l = kind == "official" ? Loss.official(pred, target) : Loss.paper(pred, target, alpha: alpha)
                    l.backward()
                    return l
                }
                XCTAssertEqual(loss.item, expectedLoss.item, accuracy: 1e-5 * max(1, abs(expectedLoss.item)), "case \(k) \(kind) loss")
                XCTAssertLessThanOrEqual(relativeError(pred.grad!, expectedGrad), 1e-3, "case \(k) \(kind) gradient")
            }
        }
    }

    func testFFTCases() throws {
        let f = try SafeTensors.read(GoldenTests.golden + "/fft_cases.safetensors")
        func t(_ n: String) -> Tensor { try! f.tensor(f.entry(n)!) }
        var checked = 0
        for tag in ["even", "odd", "bpqd", "bpqd_odd"] {
            let axes = tag.hasPrefix("bpqd") ? (1, 2) : (2, 3)
            for (normName, norm) in [("backward", FFTNorm.backward), ("ortho", FFTNorm.ortho)] {
                let p = "rfft2.\(tag).\(normName)."
                let x = t(p + "x"); x.requiresGrad = true
                let out = withGradients { () -> Tensor in
                    let y = FFT.rfft2(x, axes: axes, norm: norm)
                    y.backward(seed: t(p + "R"))
                    return y
                }
                XCTAssertLessThanOrEqual(relativeError(out, t(p + "out")), 1e-5, p + "out")
                XCTAssertLessThanOrEqual(relativeError(x.grad!, t(p + "grad_x")), 1e-5, p + "grad_x")

                let q = "irfft2.\(tag).\(normName)."
                let z = t(q + "z"); z.requiresGrad = true
                let n1 = t(q + "out").shape[axes.1]
                let y = withGradients { () -> Tensor in
                    let y = FFT.irfft2(z, axes: axes, lastSize: n1, norm: norm)
                    y.backward(seed: t(q + "R"))
                    return y
                }
                XCTAssertLessThanOrEqual(relativeError(y, t(q + "out")), 1e-5, q + "out")
                XCTAssertLessThanOrEqual(relativeError(z.grad!, t(q + "grad_z")), 1e-5, q + "grad_z")
                checked += 1
            }
        }
        XCTAssertEqual(checked, 8)
    }
}
