import Glibc

/// How a training run goes (INFP-SPEC §4 defaults: the released recipe).
public struct TrainingOptions: Equatable {
    public var epochs = 150
    public var batchSize = 8
    public var schedule = LearningRateSchedule()
    public var seed: UInt64 = 0
    /// Keep an exponential moving average of the weights (decay per step, e.g. 0.999; 0 = off)
    /// and leave it in the model when the run ends.
    public var emaDecay: Float = 0
    /// When the run ends, re-estimate BatchNorm running statistics over this many batches of
    /// training clips (0 = keep the running averages of training).
    public var batchNormBatches = 0
    /// Save a checkpoint (weights, optimizer, progress) every this many epochs; 0 = never.
    public var checkpointEvery = 0
    public var checkpointPath: String? = nil
    /// Stop after the step that exceeds this many minutes of training (0 = no limit). The run
    /// then ends normally, with a checkpoint if checkpoints are on.
    public var maxMinutes: Double = 0

    public init() {}
}

/// What the trainer reports after each step.
public struct TrainingProgress {
    public var epoch: Int            // 0-based epoch in progress
    public var epochs: Int
    public var step: Int             // 1-based step within the epoch
    public var stepsPerEpoch: Int
    public var loss: Float           // this step's loss
    public var epochMeanLoss: Float  // mean over the epoch so far
    public var clipsPerSecond: Double
    public var learningRate: Float
    /// Fraction of the whole run done, in [0, 1].
    public var done: Float { Float(epoch * stepsPerEpoch + step) / Float(max(1, epochs * stepsPerEpoch)) }
}

public struct TrainingError: Error, CustomStringConvertible {
    public enum Kind { case cancelled, invalid }
    public let kind: Kind
    public let description: String
}

/// Trains a model with Adam on clips of normal videos, resumable exactly from its checkpoints.
public final class Trainer {
    public let model: INFPModel
    public let optimizer: Adam
    public var options: TrainingOptions
    /// Epochs completed so far.
    public private(set) var epoch = 0
    /// Dropout masks come from here; saved with checkpoints so a resumed run continues the stream.
    var dropoutRng: Rng
    /// Training time (seconds) the run had used before this trainer resumed it.
    var elapsedBefore: Double = 0
    /// When the run in progress started, shifted back by `elapsedBefore`; nil between runs.
    private var runStart: Double?

    public init(model: INFPModel, options: TrainingOptions = TrainingOptions()) {
        self.model = model
        self.options = options
        optimizer = Adam(parameters: model.store.parameters, learningRate: options.schedule.rate(epoch: 0, progress: 0))
        dropoutRng = Rng(seed: options.seed &+ 0x5EED)
        if options.emaDecay > 0 { averageWeights = WeightAverage(parameters: model.store.parameters, decay: options.emaDecay) }
    }

    /// One optimizer step on a batch, training mode. Returns the loss.
    @discardableResult
    public func step(clips: Tensor, targets: Tensor) -> Float {
        let loss: Float = withGradients {
            var ctx = ForwardContext(training: true, rng: dropoutRng)
            let l = Loss.forConfig(model.config, model.forward(clips, &ctx), targets)
            dropoutRng = ctx.rng
            l.backward()
            return l.item
        }
        optimizer.update()
        averageWeights?.update()
        return loss
    }

    /// The weight average of the run, when `options.emaDecay` > 0.
    var averageWeights: WeightAverage?

    /// The clip order of an epoch depends only on the seed and the epoch, so that a resumed
    /// run sees exactly the batches the uninterrupted run would have.
    func epochOrder(_ clips: [ClipIndex], epoch e: Int) -> [ClipIndex] {
        var order = clips
        var rng = Rng(seed: options.seed &+ UInt64(e + 1) &* 0x9E3779B97F4A7C15)
        rng.shuffle(&order)
        return order
    }

    /// Trains from the current epoch up to `options.epochs` on the training clips of `videos`
    /// (all at the model's frame size). `onStep` may return false to stop (TrainingError
    /// .cancelled; the model keeps the weights of the last completed step).
    /// Returns the mean loss of each epoch run.
    @discardableResult
    public func fit(_ videos: [Video], onStep: (TrainingProgress) -> Bool = { _ in true }) throws -> [Float] {
        let cfg = model.config
        if let bad = videos.firstIndex(where: { $0.height != cfg.height || $0.width != cfg.width }) {
            throw TrainingError(kind: .invalid, description: "video \(bad) is \(videos[bad].height)×\(videos[bad].width); the model needs \(cfg.height)×\(cfg.width)")
        }
        let clips = ClipSampler.trainingClips(videos)
        let b = options.batchSize
        guard b >= 2 else { throw TrainingError(kind: .invalid, description: "batch_size must be at least 2 (BatchNorm needs more than one value per channel), got \(b)") }
        guard clips.count >= b else {
            throw TrainingError(kind: .invalid, description: "the videos give \(clips.count) training clips, fewer than one batch of \(b): add footage or lower batch_size")
        }
        try options.schedule.validate()
        guard options.emaDecay.isFinite, options.emaDecay >= 0, options.emaDecay < 1 else {
            throw TrainingError(kind: .invalid, description: "ema_decay is \(options.emaDecay); use 0 (off) or a decay in (0, 1) such as 0.998")
        }
        guard options.batchNormBatches >= 0 else {
            throw TrainingError(kind: .invalid, description: "bn_batches is \(options.batchNormBatches); use 0 (off) or a number of batches")
        }
        let stepsPerEpoch = clips.count / b  // drop_last
        var epochLosses: [Float] = []
        // A resumed run goes on with the time it had already used (its time budget and the
        // time-based schedule progress continue instead of starting over).
        let runStart = Trainer.now() - elapsedBefore
        self.runStart = runStart
        defer { elapsedBefore = Trainer.now() - runStart; self.runStart = nil }
        var outOfTime = false
        // Progress through the run for the schedule: steps done or time used, whichever is further.
        let totalSteps = Double(max(1, options.epochs * stepsPerEpoch))
        func progress(epoch e: Int, step s: Int) -> Double {
            let byStep = Double(e * stepsPerEpoch + s) / totalSteps
            guard options.maxMinutes > 0 else { return byStep }
            return max(byStep, (Trainer.now() - runStart) / (options.maxMinutes * 60))
        }
        while epoch < options.epochs && !outOfTime {
            let e = epoch
            let order = epochOrder(clips, epoch: e)
            var sum: Double = 0
            let started = Trainer.now()
            for s in 0..<stepsPerEpoch {
                optimizer.learningRate = options.schedule.rate(epoch: e, progress: progress(epoch: e, step: s))
                let (x, y) = ClipSampler.batch(videos, order[s * b..<(s + 1) * b])
                let loss = step(clips: x, targets: y)
                sum += Double(loss)
                let elapsed = max(1e-9, Trainer.now() - started)
                let progress = TrainingProgress(epoch: e, epochs: options.epochs, step: s + 1, stepsPerEpoch: stepsPerEpoch,
                                                loss: loss, epochMeanLoss: Float(sum / Double(s + 1)),
                                                clipsPerSecond: Double((s + 1) * b) / elapsed, learningRate: optimizer.learningRate)
                if !onStep(progress) {
                    throw TrainingError(kind: .cancelled, description: "training cancelled at epoch \(e + 1), step \(s + 1)")
                }
                if options.maxMinutes > 0 && Trainer.now() - runStart > options.maxMinutes * 60 {
                    outOfTime = true
                    epochLosses.append(Float(sum / Double(s + 1)))
                    break
                }
            }
            if outOfTime {
                // A partial epoch: progress stays at the last whole epoch, weights are kept.
                if options.checkpointEvery > 0, let path = options.checkpointPath { try save(to: path) }
                break
            }
            epochLosses.append(Float(sum / Double(stepsPerEpoch)))
            epoch = e + 1
            if options.checkpointEvery > 0, epoch % options.checkpointEvery == 0 || epoch == options.epochs,
               let path = options.checkpointPath {
                try save(to: path)
            }
        }
        finish(videos, clips)
        return epochLosses
    }

    /// The end of a run (after its last checkpoint, which keeps the raw weights so that a
    /// resumed run continues exactly): the weight average goes into the model, then BatchNorm
    /// statistics are re-estimated for the weights the model will be evaluated with.
    func finish(_ videos: [Video], _ clips: [ClipIndex]) {
        averageWeights?.copyToModel()
        let b = options.batchSize
        let batches = min(options.batchNormBatches, clips.count / b)
        guard batches > 0 else { return }
        // A fixed, seed-dependent sample of training clips (not the last epoch's order).
        var order = clips
        var rng = Rng(seed: options.seed ^ 0xB47C_4E57)
        rng.shuffle(&order)
        BatchNormReestimation.run(model, batches: (0..<batches).map { ClipSampler.batch(videos, order[$0 * b..<($0 + 1) * b]).0 })
    }

    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }

    // MARK: checkpoints with training state

    /// Weights plus optimizer moments (`optim.*` tensors) and progress
    /// (`__metadata__["infp_training"]`: epoch, seed, batch size, schedule, dropout stream).
    public func save(to path: String) throws {
        let progress = JSON.object([
            ("epoch", .number(Double(epoch))), ("epochs", .number(Double(options.epochs))),
            ("batch_size", .number(Double(options.batchSize))), ("seed", .string(String(options.seed))),
            ("learning_rate", .number(Double(options.schedule.baseRate))),
            ("schedule", .string(options.schedule.kind.rawValue)),
            ("warmup", .number(Double(options.schedule.warmup))),
            ("final_lr_factor", .number(Double(options.schedule.finalFactor))),
            ("ema_decay", .number(Double(options.emaDecay))),
            ("bn_batches", .number(Double(options.batchNormBatches))),
            ("milestones", .array(options.schedule.milestones.map { .number(Double($0)) })),
            ("gamma", .number(Double(options.schedule.gamma))),
            ("dropout_rng", .string(String(dropoutRng.state))),
            ("elapsed_seconds", .number(runStart.map { Trainer.now() - $0 } ?? elapsedBefore)),
        ])
        try model.save(to: path, extra: optimizer.stateTensors() + (averageWeights?.stateTensors() ?? []), metadata: [("infp_training", progress.serialized)])
    }

    /// Restores optimizer state and progress from a checkpoint written by `save` whose weights
    /// were loaded into `model`. The run's options (seed, batch size, schedule) come from the
    /// checkpoint; `epochs` stays as given, so a run can be extended.
    public func resume(from file: SafeTensors.File, source: String) throws {
        guard let text = file.metadata("infp_training"), let p = try? JSON.parse(text),
              let e = p["epoch"]?.int, let b = p["batch_size"]?.int,
              let seed = p["seed"]?.string.flatMap({ UInt64($0) }),
              let rate = p["learning_rate"]?.number, let ms = p["milestones"]?.array?.compactMap({ $0.int }),
              let gamma = p["gamma"]?.number, let rng = p["dropout_rng"]?.string.flatMap({ UInt64($0) }) else {
            throw FileError.format("'\(source)' holds no training progress (infp_training): it was saved without optimizer state")
        }
        func bad(_ field: String, _ value: Any) -> FileError {
            .format("'\(source)' holds training progress with an impossible \(field) (\(value))")
        }
        guard e >= 0, e <= 1_000_000 else { throw bad("epoch", e) }
        guard b >= 2, b <= 4096 else { throw bad("batch_size", b) }
        guard rate.isFinite, rate >= 0, gamma.isFinite, gamma > 0 else { throw bad("learning rate or gamma", "\(rate), \(gamma)") }
        guard ms.count <= 8, ms.allSatisfy({ $0 >= 0 }) else { throw bad("milestones", ms) }
        let ema = p["ema_decay"]?.number ?? 0, bn = p["bn_batches"]?.int ?? 0
        let elapsed = p["elapsed_seconds"]?.number ?? 0  // absent before budgets resumed their time
        guard elapsed.isFinite, elapsed >= 0 else { throw bad("elapsed_seconds", elapsed) }
        guard ema.isFinite, ema >= 0, ema < 1 else { throw bad("ema_decay", ema) }
        guard bn >= 0, bn <= 1_000_000 else { throw bad("bn_batches", bn) }
        try optimizer.loadState(from: file, source: source)
        epoch = e
        options.batchSize = b
        options.seed = seed
        // Checkpoints written before schedules other than multistep existed hold none of these.
        let kind = p["schedule"]?.string.flatMap { ScheduleKind(rawValue: $0) } ?? .multistep
        options.schedule = LearningRateSchedule(kind: kind, baseRate: Float(rate), milestones: ms, gamma: Float(gamma),
                                                warmup: Float(p["warmup"]?.number ?? 0.05),
                                                finalFactor: Float(p["final_lr_factor"]?.number ?? 0.01))
        do { try options.schedule.validate() } catch { throw FileError.format("'\(source)' holds an invalid schedule: \(error)") }
        options.emaDecay = Float(ema)
        options.batchNormBatches = bn
        averageWeights = nil
        if options.emaDecay > 0 {
            let average = WeightAverage(parameters: model.store.parameters, decay: options.emaDecay)
            if try average.loadState(from: file, source: source) { averageWeights = average }
            else { throw FileError.format("'\(source)' was saved with ema_decay \(options.emaDecay) but holds no weight average (optim.ema.*)") }
        }
        dropoutRng = Rng(seed: 0)
        dropoutRng.state = rng
        elapsedBefore = elapsed
    }
}
