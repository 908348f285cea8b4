import XCTest
@testable import INFPCore

/// The trajectory filter's inference path (pwconv2 on the spectrum, split-complex inverse FFT)
/// against its differentiable path, which the golden and gradient tests cover.
final class FilterFastPathTests: XCTestCase {
    func testInferencePathMatchesDifferentiablePath() {
        // (channels, height, width): even and odd sizes on both FFT axes, both filter modes.
        let cases: [(Int, Int, Int, ModelConfig.FilterMode)] = [
            (8, 12, 10, .official), (6, 9, 7, .official), (8, 12, 10, .spatial), (5, 7, 6, .spatial), (4, 2, 4, .official),
            (32, 32, 36, .official)]  // the last one large enough to split the transforms over threads
        for (c, h, w, mode) in cases {
            var cfg = ModelConfig.tiny
            cfg.filterMode = mode
            let filter = TrajectoryFilter(Scope(store: ParameterStore(seed: 1)), channels: c, height: h, width: w, cfg)
            var rng = SplitMix(seed: 9)
            // Non-trivial parameters: complex weights of order 1, StarReLU away from (1, 0).
            filter.complexWeights.assign(rng.tensor(filter.complexWeights.shape))
            filter.act1.scale.data[0] = 0.8; filter.act1.bias.data[0] = -0.1
            for threads in [1, 2] {
                let x = rng.tensor([2, c, h, w])
                let (fast, reference) = Parallel.withThreads(threads) {
                    (filter(x), withGradients { filter(x) })
                }
                XCTAssertEqual(fast.shape, reference.shape)
                var scale: Float = 0, worst: Float = 0
                for i in 0..<fast.count {
                    scale = max(scale, Swift.abs(reference.data[i]))
                    worst = max(worst, Swift.abs(fast.data[i] - reference.data[i]))
                }
                XCTAssertLessThan(worst, 1e-5 * max(1, scale), "\(c)×\(h)×\(w) \(mode), \(threads) threads")
            }
        }
    }
}
