import XCTest
@testable import INFPCore

/// Finite-difference gradient checking for ops on float32 tensors.
///
/// The loss is L = Σ f(inputs) · R with a fixed random R, evaluated in double precision.
/// Every element of every input (up to `maxElements` per input, chosen at random) is
/// perturbed by ±h and the central difference compared with the analytic gradient:
/// |fd − an| ≤ atol + rtol · max(|fd|, |an|). With h = 1e-2 the truncation error of smooth
/// ops is ~1e-4 relative; a wrong gradient (missing factor, transposed index) is off by O(1).
struct GradCheck {
    var h: Float = 1e-2
    var rtol: Float = 1e-2
    var atol: Float = 1e-3
    var maxElements = 400

    func check(_ inputs: [Tensor], file: StaticString = #filePath, line: UInt = #line,
               _ f: ([Tensor]) -> Tensor) {
        var rng = SplitMix(seed: 1234)
        for x in inputs { x.requiresGrad = true; x.grad = nil }
        let probe = GradMode.with(enabled: false) { f(inputs) }
        let r = Tensor(shape: probe.shape, values: (0..<probe.count).map { _ in rng.uniform(-1, 1) })

        func loss() -> Double {
            let y = GradMode.with(enabled: false) { f(inputs) }
            var acc = 0.0
            for i in 0..<y.count { acc += Double(y.data[i]) * Double(r.data[i]) }
            return acc
        }

        withGradients { f(inputs).backward(seed: r) }
        for (k, x) in inputs.enumerated() {
            guard let grad = x.grad else { XCTFail("input \(k) got no gradient", file: file, line: line); continue }
            XCTAssertEqual(grad.shape, x.shape, file: file, line: line)
            var indices = Array(0..<x.count)
            if indices.count > maxElements { indices = (0..<maxElements).map { _ in Int(rng.next() % UInt64(x.count)) } }
            var failures = 0
            for i in indices {
                let saved = x.data[i]
                x.data[i] = saved + h; let lp = loss()
                x.data[i] = saved - h; let lm = loss()
                x.data[i] = saved
                let fd = Float((lp - lm) / Double(2 * h))
                let an = grad.data[i]
                if abs(fd - an) > atol + rtol * max(abs(fd), abs(an)) {
                    failures += 1
                    if failures <= 5 { XCTFail("input \(k)[\(i)]: finite difference \(fd), analytic \(an)", file: file, line: line) }
                }
            }
            x.requiresGrad = false; x.grad = nil
        }
    }
}

/// Small deterministic random numbers for tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    mutating func uniform(_ lo: Float, _ hi: Float) -> Float {
        lo + (hi - lo) * Float(next() >> 40) / Float(1 << 24)
    }
    mutating func tensor(_ shape: [Int], _ lo: Float = -1, _ hi: Float = 1) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, values: (0..<n).map { _ in uniform(lo, hi) })
    }
}
