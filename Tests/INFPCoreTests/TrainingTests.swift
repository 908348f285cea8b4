import XCTest
import Glibc
@testable import INFPCore

final class TrainingTests: XCTestCase {
    /// A moving square on a gradient background: `n` frames at the tiny size.
    func movingSquare(_ n: Int, phase: Int = 0, h: Int = 32, w: Int = 48) -> Video { movingSquareVideo(n, phase: phase, h: h, w: w) }

    func tinyConfig() -> ModelConfig { var c = ModelConfig.tiny; c.dropout = true; return c }

    func weights(_ m: INFPModel) -> [Float] { m.store.parameters.flatMap { $0.tensor.scalars } }

    func testClipSamplerFollowsTheReleasedLoader() {
        let clips = ClipSampler.trainingClips([movingSquare(12), movingSquare(103)])
        // 12 frames: starts 0..9 step 1 (12//5*5 = 10), all fit. 103 frames: 0,2,..,98, and 98+5 <= 103.
        XCTAssertEqual(clips.filter { $0.video == 0 }.map { $0.start }, Array(0..<8))
        XCTAssertEqual(clips.filter { $0.video == 1 }.map { $0.start }, Array(stride(from: 0, to: 100, by: 2)))
    }

    func testTrainingReducesLossAndIsDeterministic() throws {
        let videos = [movingSquare(14), movingSquare(14, phase: 5)]
        var opts = TrainingOptions(); opts.epochs = 4; opts.batchSize = 4; opts.schedule.baseRate = 1e-3
        let a = Trainer(model: try INFPModel(config: tinyConfig(), seed: 9), options: opts)
        let lossesA = try Parallel.withThreads(2) { try a.fit(videos) }
        XCTAssertLessThan(lossesA.last!, lossesA.first!, "loss should fall: \(lossesA)")
        let b = Trainer(model: try INFPModel(config: tinyConfig(), seed: 9), options: opts)
        let lossesB = try Parallel.withThreads(2) { try b.fit(videos) }
        XCTAssertEqual(lossesA, lossesB)
        XCTAssertEqual(weights(a.model), weights(b.model))
    }

    func testResumeContinuesExactly() throws {
        let videos = [movingSquare(14), movingSquare(14, phase: 5)]
        var opts = TrainingOptions(); opts.epochs = 2; opts.batchSize = 4; opts.schedule = .multistep(baseRate: 1e-3, milestones: [1], gamma: 0.5)
        let straight = Trainer(model: try INFPModel(config: tinyConfig(), seed: 3), options: opts)
        try straight.fit(videos)

        let path = "/tmp/infp-resume-\(getpid()).safetensors"
        defer { unlink(path) }
        var half = opts; half.epochs = 1; half.checkpointEvery = 1; half.checkpointPath = path
        try Trainer(model: try INFPModel(config: tinyConfig(), seed: 3), options: half).fit(videos)
        let (model, file) = try INFPModel.load(from: path)
        let resumed = Trainer(model: model, options: opts)
        try resumed.resume(from: file, source: path)
        XCTAssertEqual(resumed.epoch, 1)
        try resumed.fit(videos)
        XCTAssertEqual(weights(resumed.model), weights(straight.model))
    }

    func testCancelStopsTraining() throws {
        var opts = TrainingOptions(); opts.epochs = 3; opts.batchSize = 2
        let t = Trainer(model: try INFPModel(config: .tiny), options: opts)
        var calls = 0
        XCTAssertThrowsError(try t.fit([movingSquare(12)]) { _ in calls += 1; return calls < 2 }) {
            XCTAssertEqual(($0 as? TrainingError)?.kind, .cancelled)
        }
        XCTAssertEqual(calls, 2)
    }

    func testVideoPredictionEqualsClipPrediction() throws {
        let model = try INFPModel(config: .tiny, seed: 4)
        let v = movingSquare(11)
        let frames = Tensor(uninitialized: [11, 3, 32, 48])
        for f in 0..<11 { v.writeFrame(f, to: frames.data + f * 3 * 32 * 48) }
        let byVideo = model.predictVideo(frames, batchSize: 3)
        let (clips, _) = ClipSampler.batch([v], (0..<7).map { ClipIndex(video: 0, start: $0) }[...])
        var ctx = ForwardContext(training: false)
        let byClip = model.forward(clips, &ctx)
        XCTAssertEqual(byVideo.shape, byClip.shape)
        for i in 0..<byClip.count { XCTAssertEqual(byVideo.data[i], byClip.data[i], accuracy: 1e-4) }
    }

    func testAdamMatchesHandComputedSteps() {
        let p = Tensor(shape: [2], values: [1, -2]); p.requiresGrad = true
        let adam = Adam(parameters: [("p", p)], learningRate: 0.1)
        var m: [Double] = [0, 0], v: [Double] = [0, 0], x: [Double] = [1, -2]
        for step in 1...3 {
            let g: [Double] = [0.5 * Double(step), -1.5]
            p.grad = Tensor(shape: [2], values: g.map { Float($0) })
            adam.update()
            for i in 0..<2 {
                m[i] = 0.9 * m[i] + 0.1 * g[i]; v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
                let mh = m[i] / (1 - Glibc.pow(0.9, Double(step))), vh = v[i] / (1 - Glibc.pow(0.999, Double(step)))
                x[i] -= 0.1 * mh / (vh.squareRoot() + 1e-8)
            }
            XCTAssertEqual(Double(p.data[0]), x[0], accuracy: 1e-5)
            XCTAssertEqual(Double(p.data[1]), x[1], accuracy: 1e-5)
            XCTAssertNil(p.grad)
        }
        XCTAssertEqual(LearningRateSchedule().rate(epoch: 99, progress: 0), 2e-4)
        XCTAssertEqual(LearningRateSchedule().rate(epoch: 100, progress: 0), 1e-4)
        XCTAssertEqual(LearningRateSchedule().rate(epoch: 120, progress: 0), 5e-5)
    }
}
