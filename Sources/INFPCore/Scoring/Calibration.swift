import Glibc

/// A live-alert threshold fixed on normal footage.
///
/// The field's protocol (INFP-SPEC §5) normalises scores per video with the video's own minimum
/// and maximum, which needs the whole video: no good for live alerts. A live detector instead
/// compares each frame's score with the scores of normal footage, as a z-score in units of
/// their spread (0 is a typical normal frame, higher is more anomalous):
///
///     method "psnr":   anomaly score = (mean − psnr) / std      (mean, std of normal PSNRs, dB)
///     method "memory": anomaly score = (score − mean) / std     (of normal memory scores)
///
/// `mean` and `std` are the mean and the sample standard deviation (n − 1) of the per-frame raw
/// scores (frames 4..n−1 of every normal video). The threshold is the (1 − false_alarm_rate)
/// quantile of the normal frames' anomaly scores (linear interpolation between order
/// statistics, NumPy's default), so that about that fraction of normal frames score above it.
/// A frame "exceeds" when its anomaly score > threshold; alerts need `min_event_frames`
/// exceeding frames in a row (AlertState), which lowers the false-alarm rate of alerts further.
///
/// Calibrate on normal footage that was neither trained on nor remembered (the model predicts
/// its training videos better than new ones, and the memory holds its own footage exactly),
/// from the same camera and lighting as the line.
public struct Calibration: Equatable {
    /// The raw score: "psnr" (the paper's) or "memory" (NormalMemory, the default when the
    /// model has a memory).
    public var method: String = "psnr"
    /// Mean and sample standard deviation of the raw score over the normal frames.
    public var mean: Double
    public var std: Double
    /// Frames (scores) and videos the statistics come from.
    public var frames: Int
    public var videos: Int
    /// The per-frame false-alarm rate asked for.
    public var falseAlarmRate: Double
    /// Threshold on the anomaly score (z units).
    public var threshold: Double

    public static let methods = ["psnr", "memory"]
    /// Key of the checkpoint's `__metadata__` entry.
    public static let metadataKey = "infp_calibration"
    /// Smallest spread used as divisor, so that a perfectly constant normal score does not
    /// divide by zero.
    public static let minimumStd = 1e-6

    public init(method: String = "psnr", mean: Double, std: Double, frames: Int, videos: Int, falseAlarmRate: Double, threshold: Double) {
        self.method = method; self.mean = mean; self.std = std; self.frames = frames; self.videos = videos
        self.falseAlarmRate = falseAlarmRate; self.threshold = threshold
    }

    public init(psnrMean: Double, psnrStd: Double, frames: Int, videos: Int, falseAlarmRate: Double, threshold: Double) {
        self.init(method: "psnr", mean: psnrMean, std: psnrStd, frames: frames, videos: videos,
                  falseAlarmRate: falseAlarmRate, threshold: threshold)
    }

    /// The PSNR statistics of a "psnr" calibration (dB).
    public var psnrMean: Double { mean }
    public var psnrStd: Double { std }

    /// The anomaly score of a frame's raw score (PSNR in dB for "psnr"): higher = more anomalous.
    public func anomalyScore(raw: Double) -> Double {
        let spread = max(std, Calibration.minimumStd)
        return method == "psnr" ? (mean - raw) / spread : (raw - mean) / spread
    }

    /// The anomaly score of a frame's PSNR (dB), for a "psnr" calibration.
    public func anomalyScore(psnr: Double) -> Double { anomalyScore(raw: psnr) }

    public struct InputError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Statistics and threshold from the per-frame PSNRs of normal videos (one array per video).
    public static func fit(psnr perVideo: [[Double]], falseAlarmRate: Double) throws -> Calibration {
        try fit(scores: perVideo, method: "psnr", falseAlarmRate: falseAlarmRate)
    }

    /// Statistics and threshold from the per-frame raw scores of normal videos.
    public static func fit(scores perVideo: [[Double]], method: String, falseAlarmRate: Double) throws -> Calibration {
        guard methods.contains(method) else { throw InputError(description: "method is '\(method)'; use one of \(methods.joined(separator: ", "))") }
        guard falseAlarmRate > 0, falseAlarmRate < 1, falseAlarmRate.isFinite else {
            throw InputError(description: "false_alarm_rate is \(falseAlarmRate); it must be in (0, 1), e.g. 0.01")
        }
        let all = perVideo.flatMap { $0 }
        guard all.count >= 2 else {
            throw InputError(description: "calibration needs at least 2 scored frames of normal footage, got \(all.count) (a video of n frames gives n − 4)")
        }
        guard all.allSatisfy({ $0.isFinite }) else {
            throw InputError(description: "a normal frame's \(method) score is not finite")
        }
        let n = Double(all.count)
        let mean = all.reduce(0, +) / n
        let variance = all.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        // Scores that do not vary (a frozen or constant video) give no scale: every later
        // rounding difference would be a huge z-score, and every frame would alert.
        guard variance.squareRoot() > 1e-6 * max(1, abs(mean)) else {
            throw InputError(description: "the normal footage's \(method) scores do not vary (all ≈ \(mean)): calibration needs normal footage with its natural variation, not a frozen or constant video")
        }
        var c = Calibration(method: method, mean: mean, std: variance.squareRoot(), frames: all.count,
                            videos: perVideo.filter { !$0.isEmpty }.count, falseAlarmRate: falseAlarmRate, threshold: 0)
        c.threshold = quantile(all.map { c.anomalyScore(raw: $0) }, 1 - falseAlarmRate)
        return c
    }

    /// The q-quantile of `values` with linear interpolation between order statistics
    /// (NumPy's default, "linear"): position h = (n − 1)·q.
    public static func quantile(_ values: [Double], _ q: Double) -> Double {
        precondition(!values.isEmpty, "quantile of nothing")
        let s = values.sorted()
        let h = Double(s.count - 1) * q
        let lo = Int(h.rounded(.down)), hi = min(lo + 1, s.count - 1)
        return s[lo] + (h - Double(lo)) * (s[hi] - s[lo])
    }

    /// Checks the fields of a calibration given by a caller.
    public func validate() throws {
        guard Calibration.methods.contains(method) else {
            throw InputError(description: "method is '\(method)'; use one of \(Calibration.methods.joined(separator: ", "))")
        }
        guard mean.isFinite else { throw InputError(description: "psnr_mean (the mean of the raw score) is \(mean)") }
        guard std.isFinite, std >= 0 else { throw InputError(description: "psnr_std (the spread of the raw score) is \(std); it must be >= 0") }
        guard threshold.isFinite else { throw InputError(description: "threshold is \(threshold)") }
        guard falseAlarmRate.isFinite, falseAlarmRate >= 0, falseAlarmRate < 1 else {
            throw InputError(description: "false_alarm_rate is \(falseAlarmRate); it must be in [0, 1)")
        }
        guard frames >= 0, videos >= 0 else { throw InputError(description: "n_frames and n_videos must be >= 0") }
    }

    // MARK: JSON (the checkpoint's __metadata__["infp_calibration"])

    public var json: JSON {
        .object([("method", .string(method)), ("psnr_mean", .number(mean)), ("psnr_std", .number(std)),
                 ("n_frames", .number(Double(frames))), ("n_videos", .number(Double(videos))),
                 ("false_alarm_rate", .number(falseAlarmRate)), ("threshold", .number(threshold)),
                 ("score", .string(method == "psnr" ? "(psnr_mean - psnr) / psnr_std"
                                                    : "(memory_score - psnr_mean) / psnr_std (psnr_* hold the memory score's statistics)"))])
    }

    public static func parse(_ text: String) throws -> Calibration {
        let j = try JSON.parse(text)
        guard j.object != nil else { throw InputError(description: "the calibration must be a JSON object") }
        func number(_ k: String) throws -> Double {
            guard let v = j[k]?.number else { throw InputError(description: "the calibration has no number '\(k)'") }
            return v
        }
        func int(_ k: String) throws -> Int {
            guard let v = j[k]?.int else { throw InputError(description: "the calibration has no whole number '\(k)'") }
            return v
        }
        var c = Calibration(psnrMean: try number("psnr_mean"), psnrStd: try number("psnr_std"), frames: try int("n_frames"),
                            videos: try int("n_videos"), falseAlarmRate: try number("false_alarm_rate"),
                            threshold: try number("threshold"))
        if let m = j["method"] {
            guard let s = m.string else { throw InputError(description: "the calibration's 'method' is not a string") }
            c.method = s
        }
        try c.validate()
        return c
    }
}

extension INFPModel {
    /// Calibrates the model on normal videos (batch scoring) and returns the calibration; the
    /// caller stores it (`model.calibration = …`) under its own locking. `method` nil means
    /// "memory" when the model has a memory of normal footage, else "psnr".
    public func calibrate(normal videos: [Video], falseAlarmRate: Double, method: String? = nil) throws -> Calibration {
        let chosen = method ?? (memory != nil ? "memory" : "psnr")
        guard Calibration.methods.contains(chosen) else {
            throw Calibration.InputError(description: "method is '\(chosen)'; use one of \(Calibration.methods.joined(separator: ", "))")
        }
        if chosen == "memory" && memory == nil {
            throw Calibration.InputError(description: "the 'memory' score needs a memory of normal footage: call infp_model_remember (Python: model.remember) first")
        }
        var perVideo: [[Double]] = []
        for v in videos where v.frames > config.frames {
            perVideo.append(chosen == "psnr" ? score(v) : try anomalyScores(v, options: ScoreOptions(method: .memory)))
        }
        return try Calibration.fit(scores: perVideo, method: chosen, falseAlarmRate: falseAlarmRate)
    }
}
