import XCTest
import Glibc
@testable import INFPCore

/// Schedules, weight averaging and BatchNorm re-estimation (training on a budget).
final class BudgetTrainingTests: XCTestCase {
    func movingSquare(_ n: Int, phase: Int = 0) -> Video { movingSquareVideo(n, phase: phase) }
    func tinyConfig() -> ModelConfig { var c = ModelConfig.tiny; c.dropout = false; return c }

    func testCosineScheduleWarmsUpThenAnneals() {
        let s = LearningRateSchedule(kind: .cosine, baseRate: 1e-3, warmup: 0.1, finalFactor: 0.01)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0), 1e-5, accuracy: 1e-9)        // 1 % of the base at the first step
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.05), 5e-4, accuracy: 1e-9)     // halfway through warm-up
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.1), 1e-3, accuracy: 1e-9)      // peak
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.55), 1e-3 * (0.01 + 0.99 * 0.5), accuracy: 1e-9)  // cosine midpoint
        XCTAssertEqual(s.rate(epoch: 0, progress: 1), 1e-5, accuracy: 1e-9)        // final factor
        XCTAssertEqual(s.rate(epoch: 0, progress: 2), 1e-5, accuracy: 1e-9)        // clamped
        var last = Float.infinity
        for i in 10...100 { let r = s.rate(epoch: 0, progress: Double(i) / 100); XCTAssertLessThanOrEqual(r, last); last = r }
    }

    func testOneCycleMatchesPyTorchShape() {
        let s = LearningRateSchedule(kind: .onecycle, baseRate: 1e-3)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0), 4e-5, accuracy: 1e-10)       // base / 25
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.15), (4e-5 + 1e-3) / 2, accuracy: 1e-9)
        XCTAssertEqual(s.rate(epoch: 0, progress: 0.3), 1e-3, accuracy: 1e-9)
        XCTAssertEqual(s.rate(epoch: 0, progress: 1), 4e-9, accuracy: 1e-12)       // base / 25 / 1e4
    }

    func testMultistepIgnoresProgressAndBadSettingsAreNamed() {
        XCTAssertEqual(LearningRateSchedule().rate(epoch: 119, progress: 0.9), 1e-4)
        for (bad, field) in [(LearningRateSchedule(kind: .cosine, warmup: 1), "warmup"),
                             (LearningRateSchedule(kind: .cosine, finalFactor: -1), "final_lr_factor"),
                             (LearningRateSchedule(baseRate: .nan), "learning_rate")] {
            XCTAssertThrowsError(try bad.validate()) { XCTAssertTrue("\($0)".contains(field), "\($0)") }
        }
    }

    func testWeightAverageFollowsTheFormula() {
        let p = Tensor(shape: [2], values: [1, 2])
        let avg = WeightAverage(parameters: [("w", p)], decay: 0.5)
        p.data[0] = 3; p.data[1] = 4
        avg.update()  // n = 1: d = min(0.5, 2/11) = 2/11
        let d1: Float = 2.0 / 11
        XCTAssertEqual(avg.averages[0].data[0], d1 * 1 + (1 - d1) * 3, accuracy: 1e-6)
        p.data[0] = 5
        avg.update()  // n = 2: d = 3/12 = 0.25
        let a0 = d1 * 1 + (1 - d1) * 3
        XCTAssertEqual(avg.averages[0].data[0], 0.25 * a0 + 0.75 * 5, accuracy: 1e-6)
        avg.copyToModel()
        XCTAssertEqual(p.data[0], 0.25 * a0 + 0.75 * 5, accuracy: 1e-6)
    }

    /// Re-estimation over one batch leaves exactly that batch's statistics (unbiased variance),
    /// whatever the running statistics were before; over two equal batches the same.
    func testBatchNormReestimationAveragesBatchStatistics() throws {
        let model = try INFPModel(config: tinyConfig(), seed: 4)
        let videos = [movingSquare(14), movingSquare(14, phase: 5)]
        let clips = ClipSampler.trainingClips(videos)
        let (x, _) = ClipSampler.batch(videos, clips[0..<4])
        let bns: [BatchNorm2d] = model.store.entries.compactMap { if case let .counter(b) = $0.slot { return b }; return nil }
        // Reference: from zero/one running statistics with momentum 0.1 and k updates per pass,
        // one pass leaves 0.1·Σ 0.9^(k−1−j)·B_j; re-estimation inverts that to the weighted mean.
        for bn in bns { for i in 0..<bn.runningMean.count { bn.runningMean.data[i] = 7; bn.runningVar.data[i] = 9 } }
        BatchNormReestimation.run(model, batches: [x])
        let once = bns.map { ($0.runningMean.scalars, $0.runningVar.scalars) }
        // The same batch twice averages to the same values.
        for bn in bns { for i in 0..<bn.runningMean.count { bn.runningMean.data[i] = -3; bn.runningVar.data[i] = 0.5 } }
        BatchNormReestimation.run(model, batches: [x, x])
        for (i, bn) in bns.enumerated() {
            for j in 0..<bn.runningMean.count {
                XCTAssertEqual(bn.runningMean.data[j], once[i].0[j], accuracy: 1e-4 * max(1, abs(once[i].0[j])))
                XCTAssertEqual(bn.runningVar.data[j], once[i].1[j], accuracy: 1e-4 * max(1, abs(once[i].1[j])))
            }
        }
        // And the values are the batch statistics: a layer fed once per pass (the decoder's)
        // matches a direct computation from a fresh model's training forward.
        let fresh = try INFPModel(config: tinyConfig(), seed: 4)
        let freshBNs: [BatchNorm2d] = fresh.store.entries.compactMap { if case let .counter(b) = $0.slot { return b }; return nil }
        var ctx = ForwardContext(training: true)
        let before = freshBNs.map { $0.numBatchesTracked }
        _ = fresh.forward(x, &ctx)
        var checked = 0
        for (i, bn) in freshBNs.enumerated() where bn.numBatchesTracked - before[i] == 1 {
            // From (0, 1): running = 0.1·B → B = running / 0.1 (mean), var: 0.9 + 0.1·B.
            for j in 0..<bn.runningMean.count {
                XCTAssertEqual(once[i].0[j], bn.runningMean.data[j] / 0.1, accuracy: 1e-3 * max(1, abs(once[i].0[j])))
                XCTAssertEqual(once[i].1[j], (bn.runningVar.data[j] - 0.9) / 0.1, accuracy: 1e-3 * max(1, abs(once[i].1[j])))
            }
            checked += 1
        }
        XCTAssertGreaterThan(checked, 0)
    }

    /// EMA, BN re-estimation and a cosine schedule survive a checkpoint: 2 epochs straight
    /// equal 1 epoch + save + resume + 1 epoch, and the model ends with the averaged weights.
    func testBudgetOptionsResumeExactly() throws {
        let videos = [movingSquare(14), movingSquare(14, phase: 5)]
        var opts = TrainingOptions(); opts.epochs = 2; opts.batchSize = 4
        opts.schedule = LearningRateSchedule(kind: .cosine, baseRate: 1e-3, warmup: 0.2)
        opts.emaDecay = 0.9; opts.batchNormBatches = 2
        let straight = Trainer(model: try INFPModel(config: tinyConfig(), seed: 3), options: opts)
        try straight.fit(videos)

        let path = "/tmp/infp-budget-resume-\(getpid()).safetensors"
        defer { unlink(path) }
        var first = opts; first.checkpointEvery = 1; first.checkpointPath = path
        let a = Trainer(model: try INFPModel(config: tinyConfig(), seed: 3), options: first)
        a.options.epochs = 2
        // Stop after epoch 1 by cancelling at the first step of epoch 2.
        XCTAssertThrowsError(try a.fit(videos) { $0.epoch < 1 })
        let (model, file) = try INFPModel.load(from: path)
        XCTAssertNotNil(file.entry("optim.ema_updates"))
        let resumed = Trainer(model: model, options: TrainingOptions())
        try resumed.resume(from: file, source: path)
        resumed.options.epochs = 2
        XCTAssertEqual(resumed.options.schedule, opts.schedule)
        XCTAssertEqual(resumed.options.emaDecay, 0.9)
        try resumed.fit(videos)
        let w = { (m: INFPModel) in m.store.parameters.flatMap { $0.tensor.scalars } }
        XCTAssertEqual(w(resumed.model), w(straight.model))
        // The model holds the average, not the last step's weights.
        XCTAssertEqual(w(straight.model), straight.averageWeights!.averages.flatMap { $0.scalars })
    }

    /// A resumed run keeps the time it had used: its budget goes on instead of starting over.
    func testResumedRunKeepsTheTimeItUsed() throws {
        let videos = [movingSquare(14), movingSquare(14, phase: 5)]
        let path = "/tmp/infp-budget-time-\(getpid()).safetensors"
        defer { unlink(path) }
        var opts = TrainingOptions(); opts.epochs = 3; opts.batchSize = 4
        opts.checkpointEvery = 1; opts.checkpointPath = path
        let a = Trainer(model: try INFPModel(config: tinyConfig(), seed: 3), options: opts)
        XCTAssertThrowsError(try a.fit(videos) { $0.epoch < 1 })  // stop after epoch 1
        let (model, file) = try INFPModel.load(from: path)
        let used = try XCTUnwrap(JSON.parse(file.metadata("infp_training")!)["elapsed_seconds"]?.number)
        XCTAssertGreaterThan(used, 0)
        let resumed = Trainer(model: model, options: TrainingOptions())
        try resumed.resume(from: file, source: path)
        XCTAssertEqual(resumed.elapsedBefore, used)
        // A budget the first part already used up: the resumed run stops after one step.
        resumed.options.maxMinutes = used / 2 / 60
        var steps = 0
        _ = try resumed.fit(videos) { _ in steps += 1; return true }
        XCTAssertEqual(steps, 1)
    }
}
