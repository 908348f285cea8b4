import CINFP
import INFPCore

/// Copies caller videos (checked against the model's frame size) into engine videos.
func readVideos(_ videos: UnsafePointer<infp_video>?, _ count: Int64, _ config: ModelConfig) throws -> [Video] {
    guard count >= 1, count <= 1_000_000 else { throw APIError.invalid("n_videos is \(count); give at least one video") }
    let list = try require(videos, "videos")
    // All the videos are copied: their total must fit before the first copy is made.
    var bytes = 0
    for i in 0..<Int(count) {
        let frames = max(0, min(list[i].frames, 10_000_000))
        bytes = try checkedAdd(bytes, try checkedMul(Int(frames), config.height * config.width * 3, "videos' size"), "videos' size")
    }
    try ensureAllocatable(floats: bytes / 4)
    return try (0..<Int(count)).map { try readVideo(list + $0, config, "videos[\($0)]") }
}

func readVideo(_ p: UnsafePointer<infp_video>, _ config: ModelConfig, _ name: String) throws -> Video {
    let v = p.pointee
    guard v.height == Int64(config.height), v.width == Int64(config.width) else {
        throw APIError.shape("\(name) is \(v.height)×\(v.width); the model needs \(config.height)×\(config.width) frames (resize them first)")
    }
    guard v.frames >= 1, v.frames <= 10_000_000 else { throw APIError.invalid("\(name).frames is \(v.frames)") }
    let pixels = try require(v.pixels, "\(name).pixels")
    let n = try checkedMul(Int(v.frames), config.height * config.width * 3, "\(name) size")
    try ensureAllocatable(floats: n / 4)
    return Video(frames: Int(v.frames), height: config.height, width: config.width,
                 pixels: Array(UnsafeBufferPointer(start: pixels, count: n)))
}

/// A video whose frames 4..n−1 get one output each (scores, predictions): checked against the
/// model's frame size, long enough, and with `count` (named `countName`) equal to n − 4.
func readScoredVideo(_ video: UnsafePointer<infp_video>?, _ config: ModelConfig, count: Int64, _ countName: String) throws -> Video {
    let v = try readVideo(try require(video, "video"), config, "video")
    let t = config.frames
    guard v.frames > t else { throw APIError.shape("the video has \(v.frames) frames; scoring needs at least \(t + 1)") }
    guard count == Int64(v.frames - t) else {
        throw APIError.shape("\(countName) is \(count); a video of \(v.frames) frames gives \(v.frames - t) outputs (frames \(t)..\(v.frames - 1))")
    }
    return v
}

@_cdecl("infp_fit_default_params")
public func infp_fit_default_params() -> infp_fit_params {
    infp_fit_params(size: MemoryLayout<infp_fit_params>.size, epochs: 0, batch_size: 0, learning_rate: 0,
                    milestones: (0, 0, 0, 0, 0, 0, 0, 0), n_milestones: -1, gamma: 0, seed: 0,
                    checkpoint_every: 0, checkpoint_path: nil, resume_path: nil, progress: nil, on_step: nil, user: nil,
                    max_minutes: 0, schedule: 0, warmup: 0.05, final_lr_factor: 0.01, ema_decay: 0, bn_batches: 0)
}

/// Training options from the caller's params, with the documented defaults for zeros.
func trainingOptions(_ p: infp_fit_params) throws -> TrainingOptions {
    var o = TrainingOptions()
    guard p.epochs >= 0, p.epochs <= 1_000_000 else { throw APIError.invalid("epochs is \(p.epochs)") }
    if p.epochs > 0 { o.epochs = Int(p.epochs) }
    guard p.batch_size == 0 || (p.batch_size >= 2 && p.batch_size <= 4096) else {
        throw APIError.invalid("batch_size is \(p.batch_size); use 0 (default 8) or 2..4096 (BatchNorm needs at least 2)")
    }
    if p.batch_size > 0 { o.batchSize = Int(p.batch_size) }
    guard p.learning_rate >= 0, p.learning_rate.isFinite else { throw APIError.invalid("learning_rate is \(p.learning_rate)") }
    if p.learning_rate > 0 { o.schedule.baseRate = p.learning_rate }
    guard p.gamma >= 0, p.gamma.isFinite else { throw APIError.invalid("gamma is \(p.gamma)") }
    if p.gamma > 0 { o.schedule.gamma = p.gamma }
    guard p.n_milestones >= -1, p.n_milestones <= 8 else { throw APIError.invalid("n_milestones is \(p.n_milestones); use -1 (default) or 0..8") }
    if p.n_milestones >= 0 {
        let all = withUnsafeBytes(of: p.milestones) { Array($0.bindMemory(to: Int32.self)) }
        o.schedule.milestones = all.prefix(Int(p.n_milestones)).map(Int.init)
    }
    o.seed = p.seed
    guard p.checkpoint_every >= 0 else { throw APIError.invalid("checkpoint_every is \(p.checkpoint_every)") }
    o.checkpointEvery = Int(p.checkpoint_every)
    o.checkpointPath = try p.checkpoint_path.map { try readPath($0, "checkpoint_path") }
    guard p.max_minutes >= 0, p.max_minutes.isFinite else { throw APIError.invalid("max_minutes is \(p.max_minutes)") }
    o.maxMinutes = Double(p.max_minutes)
    let kinds: [ScheduleKind] = [.multistep, .cosine, .onecycle]
    guard p.schedule >= 0, Int(p.schedule) < kinds.count else {
        throw APIError.invalid("schedule is \(p.schedule); use INFP_SCHEDULE_MULTISTEP (0), INFP_SCHEDULE_COSINE (1) or INFP_SCHEDULE_ONECYCLE (2)")
    }
    o.schedule.kind = kinds[Int(p.schedule)]
    o.schedule.warmup = p.warmup
    o.schedule.finalFactor = p.final_lr_factor
    o.emaDecay = p.ema_decay
    guard p.bn_batches >= 0, p.bn_batches <= 1_000_000 else { throw APIError.invalid("bn_batches is \(p.bn_batches); use 0 (off) or a number of batches") }
    o.batchNormBatches = Int(p.bn_batches)
    do { try o.schedule.validate() } catch let e as TrainingError { throw APIError.invalid(e.description) }
    guard o.emaDecay.isFinite, o.emaDecay >= 0, o.emaDecay < 1 else {
        throw APIError.invalid("ema_decay is \(o.emaDecay); use 0 (off) or a decay in (0, 1) such as 0.998")
    }
    if o.checkpointEvery > 0 && o.checkpointPath == nil {
        throw APIError.invalid("checkpoint_every is \(o.checkpointEvery) but checkpoint_path is NULL")
    }
    return o
}

@_cdecl("infp_model_fit")
public func infp_model_fit(_ model: OpaquePointer?, _ videos: UnsafePointer<infp_video>?, _ nVideos: Int64,
                           _ params: UnsafePointer<infp_fit_params>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let p = try readParams(params, defaults: infp_fit_default_params(), "params")
        let options = try trainingOptions(p)
        try ensureAllocatable(floats: try checkedMul(options.batchSize, h.model.trainingFloatsPerClip, "a training batch's memory"))
        let list = try readVideos(videos, nVideos, h.model.config)
        try h.lock.writing {
            if h.model.calibration != nil {
                log(.warning, "infp_model_fit: the model's calibration predates this training; calibrate again (infp_model_calibrate) before relying on alerts")
            }
            let trainer = Trainer(model: h.model, options: options)
            if let resume = p.resume_path {
                let path = try readPath(resume, "resume_path")
                try translatingErrors {
                    let file = try SafeTensors.read(path)
                    try trainer.resume(from: file, source: path)  // checked first: the model changes only if both load
                    try h.model.loadState(from: file, source: path)
                }
                trainer.options.epochs = options.epochs
                log(.info, "resuming the run of \(path) at epoch \(trainer.epoch + 1) of \(options.epochs)")
            }
            do {
                _ = try h.run {
                    try trainer.fit(list) { s in
                        if let cb = p.on_step {
                            var stats = infp_train_stats(size: MemoryLayout<infp_train_stats>.size, epoch: Int32(s.epoch),
                                                         epochs: Int32(s.epochs), step: Int32(s.step), steps_per_epoch: Int32(s.stepsPerEpoch),
                                                         loss: s.loss, epoch_mean_loss: s.epochMeanLoss,
                                                         clips_per_second: Float(s.clipsPerSecond), learning_rate: s.learningRate)
                            if !cb(&stats, p.user) { return false }
                        }
                        if let progress = p.progress, !progress(s.done, p.user) { return false }
                        return true
                    }
                }
            } catch let e as TrainingError {
                throw e.kind == .cancelled ? APIError.cancelled(e.description) : APIError.invalid(e.description)
            } catch {
                throw apiError(error)
            }
        }
    }
}

@_cdecl("infp_model_train_step")
public func infp_model_train_step(_ model: OpaquePointer?, _ clips: UnsafePointer<Float>?, _ clipsShape: UnsafePointer<Int64>?,
                                  _ targets: UnsafePointer<Float>?, _ targetsShape: UnsafePointer<Int64>?,
                                  _ learningRate: Float, _ loss: UnsafeMutablePointer<Float>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let cs = try clipShape(clipsShape, h.model.config, "clips_shape")
        guard cs[0] >= 2 else { throw APIError.shape("a training batch needs at least 2 clips (BatchNorm batch statistics), got \(cs[0])") }
        let ts = try frameShape(targetsShape, batch: cs[0], h.model.config, "targets_shape")
        let x = try require(clips, "clips"), g = try require(targets, "targets"), out = try require(loss, "loss")
        guard learningRate >= 0, learningRate.isFinite else { throw APIError.invalid("learning_rate is \(learningRate)") }
        try ensureAllocatable(floats: try checkedMul(cs[0], h.model.trainingFloatsPerClip, "the batch's training memory"))
        try h.lock.writing {
            let trainer = h.stepTrainer ?? Trainer(model: h.model)
            h.stepTrainer = trainer
            trainer.optimizer.learningRate = learningRate > 0 ? learningRate : 2e-4
            let xt = tensor(copying: x, shape: cs), gt = tensor(copying: g, shape: ts)
            try requireFinite(xt, "clips"); try requireFinite(gt, "targets")
            let value = h.run { trainer.step(clips: xt, targets: gt) }
            guard value.isFinite else { throw APIError.invalid("the loss is not finite (\(value)): check the inputs for NaN or infinite values") }
            out.pointee = value
        }
    }
}

@_cdecl("infp_model_score")
public func infp_model_score(_ model: OpaquePointer?, _ video: UnsafePointer<infp_video>?, _ psnr: UnsafeMutablePointer<Float>?,
                             _ nPSNR: Int64) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let v = try readScoredVideo(video, h.model.config, count: nPSNR, "n_psnr")
        let out = try require(psnr, "psnr")
        let scores = try h.lock.reading { h.run { h.model.score(v) } }
        for (i, s) in scores.enumerated() { out[i] = Float(s) }
    }
}

@_cdecl("infp_model_predict_video")
public func infp_model_predict_video(_ model: OpaquePointer?, _ video: UnsafePointer<infp_video>?,
                                     _ frames: UnsafeMutablePointer<Float>?, _ nFrames: Int64) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let v = try readScoredVideo(video, h.model.config, count: nFrames, "n_frames")
        let out = try require(frames, "frames")
        try h.lock.reading { h.run { h.model.predictVideo(v, into: out) } }
    }
}

// MARK: metrics

func readLabelsAndScores(_ labels: UnsafePointer<Int32>?, _ scores: UnsafePointer<Double>?, _ n: Int64) throws -> ([Int], [Double]) {
    guard n >= 1, n <= Int64(maxElements) else { throw APIError.invalid("n is \(n)") }
    let l = try require(labels, "labels"), s = try require(scores, "scores")
    try ensureAllocatable(floats: try checkedMul(Int(n), 16, "the curve's working memory"))  // labels, scores, order, curve: ~64 bytes each
    return ((0..<Int(n)).map { Int(l[$0]) }, Array(UnsafeBufferPointer(start: s, count: Int(n))))
}

func metricError(_ error: Error) -> Error {
    if let e = error as? ROC.InputError { return APIError.invalid(e.description) }
    return error
}

@_cdecl("infp_roc_auc")
public func infp_roc_auc(_ labels: UnsafePointer<Int32>?, _ scores: UnsafePointer<Double>?, _ n: Int64,
                         _ auc: UnsafeMutablePointer<Double>?) -> infp_status {
    guarded {
        let (l, s) = try readLabelsAndScores(labels, scores, n)
        let out = try require(auc, "auc")
        do { out.pointee = try ROC.auc(labels: l, scores: s) } catch { throw metricError(error) }
    }
}

@_cdecl("infp_roc_curve")
public func infp_roc_curve(_ labels: UnsafePointer<Int32>?, _ scores: UnsafePointer<Double>?, _ n: Int64,
                           _ fpr: UnsafeMutablePointer<Double>?, _ tpr: UnsafeMutablePointer<Double>?,
                           _ thresholds: UnsafeMutablePointer<Double>?, _ capacity: Int64,
                           _ nPoints: UnsafeMutablePointer<Int64>?) -> infp_status {
    guarded {
        let (l, s) = try readLabelsAndScores(labels, scores, n)
        let f = try require(fpr, "fpr"), t = try require(tpr, "tpr"), th = try require(thresholds, "thresholds")
        let count = try require(nPoints, "n_points")
        guard capacity >= n + 1 else { throw APIError.shape("capacity is \(capacity); the curve may have up to n + 1 = \(n + 1) points") }
        do {
            let c = try ROC.curve(labels: l, scores: s)
            for i in 0..<c.fpr.count { f[i] = c.fpr[i]; t[i] = c.tpr[i]; th[i] = c.thresholds[i] }
            count.pointee = Int64(c.fpr.count)
        } catch { throw metricError(error) }
    }
}

func readPerVideo(_ psnr: UnsafePointer<UnsafePointer<Double>?>?, _ psnrCounts: UnsafePointer<Int64>?,
                  _ labels: UnsafePointer<UnsafePointer<Int32>?>?, _ labelCounts: UnsafePointer<Int64>?,
                  _ n: Int64) throws -> ([[Double]], [[Int]]) {
    guard n >= 1, n <= 10_000_000 else { throw APIError.invalid("n_videos is \(n)") }
    let p = try require(psnr, "psnr"), pc = try require(psnrCounts, "psnr_counts")
    let l = try require(labels, "labels"), lc = try require(labelCounts, "label_counts")
    var total = 0
    for v in 0..<Int(n) {
        guard pc[v] >= 0, lc[v] >= 0, pc[v] <= Int64(maxElements), lc[v] <= Int64(maxElements) else {
            throw APIError.invalid("video \(v): negative or huge counts (\(pc[v]), \(lc[v]))")
        }
        total = try checkedAdd(total, Int(pc[v] + lc[v]), "the frame count")
    }
    try ensureAllocatable(floats: try checkedMul(total, 16, "the curve's working memory"))
    var scores: [[Double]] = [], marks: [[Int]] = []
    for v in 0..<Int(n) {
        let sp = try require(p[v], "psnr[\(v)]"), lp = try require(l[v], "labels[\(v)]")
        scores.append(Array(UnsafeBufferPointer(start: sp, count: Int(pc[v]))))
        marks.append((0..<Int(lc[v])).map { Int(lp[$0]) })
    }
    return (scores, marks)
}

@_cdecl("infp_frame_auc")
public func infp_frame_auc(_ psnr: UnsafePointer<UnsafePointer<Double>?>?, _ psnrCounts: UnsafePointer<Int64>?,
                           _ labels: UnsafePointer<UnsafePointer<Int32>?>?, _ labelCounts: UnsafePointer<Int64>?,
                           _ n: Int64, _ auc: UnsafeMutablePointer<Double>?) -> infp_status {
    guarded {
        let (s, l) = try readPerVideo(psnr, psnrCounts, labels, labelCounts, n)
        let out = try require(auc, "auc")
        do { out.pointee = try FrameEvaluation.frameAUC(psnr: s, labels: l) } catch { throw metricError(error) }
    }
}

@_cdecl("infp_macro_auc")
public func infp_macro_auc(_ psnr: UnsafePointer<UnsafePointer<Double>?>?, _ psnrCounts: UnsafePointer<Int64>?,
                           _ labels: UnsafePointer<UnsafePointer<Int32>?>?, _ labelCounts: UnsafePointer<Int64>?,
                           _ n: Int64, _ auc: UnsafeMutablePointer<Double>?) -> infp_status {
    guarded {
        let (s, l) = try readPerVideo(psnr, psnrCounts, labels, labelCounts, n)
        let out = try require(auc, "auc")
        do { out.pointee = try FrameEvaluation.macroAUC(psnr: s, labels: l) } catch { throw metricError(error) }
    }
}
