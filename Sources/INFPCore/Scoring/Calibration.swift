import Glibc

/// A live-alert threshold fixed on normal footage.
///
/// The field's protocol (INFP-SPEC §5) normalises PSNR per video with the video's own minimum
/// and maximum, which needs the whole video: no good for live alerts. A live detector instead
/// compares each frame's PSNR with the PSNR of normal footage:
///
///     anomaly score  z = (psnr_mean − psnr) / psnr_std
///
/// a z-score in units of the normal PSNR spread: 0 is a typical normal frame, higher is more
/// anomalous (a prediction that is worse than usual), negative is better than usual.
/// `psnr_mean` and `psnr_std` are the mean and the sample standard deviation (n − 1) of the
/// per-frame PSNRs (frames 4..n−1 of every normal video, as `INFPModel.score`). The threshold
/// is the (1 − false_alarm_rate) quantile of the normal frames' z-scores (linear
/// interpolation between order statistics, NumPy's default), so that about that fraction of
/// normal frames score above it. A frame "exceeds" when z > threshold; alerts need
/// `min_event_frames` exceeding frames in a row (AlertState), which lowers the false-alarm
/// rate of alerts further.
///
/// Calibrate on normal footage that was not used for training (the model predicts its
/// training videos better than new ones), from the same camera and lighting as the line.
public struct Calibration: Equatable {
    /// What the score is computed from; only "psnr" so far.
    public var method: String = "psnr"
    public var psnrMean: Double
    public var psnrStd: Double
    /// Frames (scores) and videos the statistics come from.
    public var frames: Int
    public var videos: Int
    /// The per-frame false-alarm rate asked for.
    public var falseAlarmRate: Double
    /// Threshold on the anomaly score (z units).
    public var threshold: Double

    /// Key of the checkpoint's `__metadata__` entry.
    public static let metadataKey = "infp_calibration"
    /// Smallest PSNR spread used as divisor (dB), so that a perfectly constant normal PSNR
    /// does not divide by zero.
    public static let minimumStd = 1e-6

    public init(psnrMean: Double, psnrStd: Double, frames: Int, videos: Int, falseAlarmRate: Double, threshold: Double) {
        self.psnrMean = psnrMean; self.psnrStd = psnrStd; self.frames = frames; self.videos = videos
        self.falseAlarmRate = falseAlarmRate; self.threshold = threshold
    }

    /// The anomaly score of a frame's PSNR (dB): higher = more anomalous.
    public func anomalyScore(psnr: Double) -> Double {
        (psnrMean - psnr) / max(psnrStd, Calibration.minimumStd)
    }

    public struct InputError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Statistics and threshold from the per-frame PSNRs of normal videos (one array per video).
    public static func fit(psnr perVideo: [[Double]], falseAlarmRate: Double) throws -> Calibration {
        guard falseAlarmRate > 0, falseAlarmRate < 1, falseAlarmRate.isFinite else {
            throw InputError(description: "false_alarm_rate is \(falseAlarmRate); it must be in (0, 1), e.g. 0.01")
        }
        let all = perVideo.flatMap { $0 }
        guard all.count >= 2 else {
            throw InputError(description: "calibration needs at least 2 scored frames of normal footage, got \(all.count) (a video of n frames gives n − 4)")
        }
        guard all.allSatisfy({ $0.isFinite }) else {
            throw InputError(description: "a normal frame's PSNR is not finite")
        }
        let n = Double(all.count)
        let mean = all.reduce(0, +) / n
        let variance = all.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        var c = Calibration(psnrMean: mean, psnrStd: variance.squareRoot(), frames: all.count,
                            videos: perVideo.filter { !$0.isEmpty }.count, falseAlarmRate: falseAlarmRate, threshold: 0)
        c.threshold = quantile(all.map { c.anomalyScore(psnr: $0) }, 1 - falseAlarmRate)
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
        guard method == "psnr" else { throw InputError(description: "method is '\(method)'; only 'psnr' is known") }
        guard psnrMean.isFinite else { throw InputError(description: "psnr_mean is \(psnrMean)") }
        guard psnrStd.isFinite, psnrStd >= 0 else { throw InputError(description: "psnr_std is \(psnrStd); it must be >= 0") }
        guard threshold.isFinite else { throw InputError(description: "threshold is \(threshold)") }
        guard falseAlarmRate.isFinite, falseAlarmRate >= 0, falseAlarmRate < 1 else {
            throw InputError(description: "false_alarm_rate is \(falseAlarmRate); it must be in [0, 1)")
        }
        guard frames >= 0, videos >= 0 else { throw InputError(description: "n_frames and n_videos must be >= 0") }
    }

    // MARK: JSON (the checkpoint's __metadata__["infp_calibration"])

    public var json: JSON {
        .object([("method", .string(method)), ("psnr_mean", .number(psnrMean)), ("psnr_std", .number(psnrStd)),
                 ("n_frames", .number(Double(frames))), ("n_videos", .number(Double(videos))),
                 ("false_alarm_rate", .number(falseAlarmRate)), ("threshold", .number(threshold)),
                 ("score", .string("(psnr_mean - psnr) / psnr_std"))])
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
    /// Calibrates the model on normal videos (batch scoring, INFP-SPEC §5) and returns the
    /// calibration; the caller stores it (`model.calibration = …`) under its own locking.
    public func calibrate(normal videos: [Video], falseAlarmRate: Double) throws -> Calibration {
        var perVideo: [[Double]] = []
        for v in videos where v.frames > config.frames { perVideo.append(score(v)) }
        return try Calibration.fit(psnr: perVideo, falseAlarmRate: falseAlarmRate)
    }
}
