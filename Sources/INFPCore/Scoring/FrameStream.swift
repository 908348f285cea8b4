/// A live stream of one camera through a model: frames come one at a time, and each gets its
/// PSNR, anomaly score and alert state as soon as it arrives.
///
/// Each frame goes through the backbone once: the stream keeps the backbone features of the
/// last `config.frames` (4) frames, predicts the new frame from them (fusion and decoder,
/// `INFPModel.predictNext`), scores it, then encodes it and drops the oldest features. So a
/// frame costs one backbone pass plus fusion and decoder, and frame t's PSNR equals the batch
/// `INFPModel.score` of the same video (to float rounding: batch sizes differ).
///
/// Not thread-safe: one stream is used by one thread at a time (the C layer locks it);
/// several streams may share one model on different threads (evaluation only reads it).
public final class FrameStream {
    public let model: INFPModel
    /// The calibration the stream was created with (the model's, copied), if any.
    public let calibration: Calibration?
    /// Threshold on the anomaly score (z units); nil without calibration.
    public let threshold: Double?
    public private(set) var alerts: AlertState
    /// Features of the last frames, oldest first (at most config.frames).
    var window: [FrameFeatures] = []
    /// Index of the next frame.
    public private(set) var frameIndex = 0
    /// Resampling filters of the last input size.
    var plan: ResizePlan?
    /// The last frame at the model's size, uint8 RGB (H, W, 3).
    var rgb: [UInt8]
    /// With a "memory" calibration, the model's memory of normal footage and the matches
    /// (descriptor, dot products with the memory, squared norm) of the last frames (at most a
    /// clip's 5): each frame is matched once, when it arrives.
    let memory: NormalMemory?
    var recent: [(descriptor: Tensor, dots: Tensor, norm: Float)] = []

    public struct Result: Equatable {
        public var frameIndex: Int
        /// False for the first config.frames frames (nothing to predict them from).
        public var hasScore: Bool
        /// PSNR (dB) of the frame's prediction; NaN without a score.
        public var psnr: Double
        /// Calibrated anomaly score (z units of the calibration's method, memory or PSNR; higher
        /// = more anomalous); NaN without a score
        /// or without calibration.
        public var anomalyScore: Double
        /// The threshold in use; NaN without calibration.
        public var threshold: Double
        public var alert: AlertState.Step
    }

    /// - Parameters:
    ///   - thresholdOverride: a threshold (z units) to use instead of the calibration's; needs
    ///     a calibration (the anomaly score does).
    public init(model: INFPModel, alerts: AlertParams = AlertParams(), thresholdOverride: Double? = nil) {
        self.model = model
        calibration = model.calibration
        threshold = calibration == nil ? nil : (thresholdOverride ?? calibration!.threshold)
        self.alerts = AlertState(params: alerts)
        memory = calibration?.method == "memory" ? model.memory : nil
        rgb = [UInt8](repeating: 0, count: model.config.height * model.config.width * 3)
    }

    public var height: Int { model.config.height }
    public var width: Int { model.config.width }

    /// Pushes one frame of any size: resized to the model's size with Pillow's bicubic filter
    /// (Resize.swift), then scored (`push(modelSizeRGB:errorMap:)`).
    /// - Parameters: see `ResizePlan.run` for `pixels`, `channels` and `rowStride`.
    public func push(pixels: UnsafePointer<UInt8>, height inH: Int, width inW: Int, channels: Int, rowStride: Int,
                     errorMap: UnsafeMutablePointer<Float>? = nil) -> Result {
        let h = height, w = width
        if inH == h && inW == w && channels == 3 {
            rgb.withUnsafeMutableBufferPointer { dst in
                for y in 0..<h { (dst.baseAddress! + y * w * 3).update(from: pixels + y * rowStride, count: w * 3) }
            }
        } else {
            if plan == nil || plan!.inHeight != inH || plan!.inWidth != inW {
                plan = ResizePlan(inHeight: inH, inWidth: inW, outHeight: h, outWidth: w)
            }
            let p = plan!
            rgb.withUnsafeMutableBufferPointer { p.run(pixels, channels: channels, rowStride: rowStride, into: $0.baseAddress!) }
        }
        return scoreCurrent(errorMap: errorMap)
    }

    /// Pushes one frame already at the model's size: uint8 RGB (H, W, 3), row-major.
    public func push(modelSizeRGB pixels: [UInt8], errorMap: UnsafeMutablePointer<Float>? = nil) -> Result {
        precondition(pixels.count == rgb.count, "a frame at the model's size has \(rgb.count) bytes, got \(pixels.count)")
        rgb = pixels
        return scoreCurrent(errorMap: errorMap)
    }

    /// Scores `rgb` against the prediction from the window, then moves the window on.
    func scoreCurrent(errorMap: UnsafeMutablePointer<Float>?) -> Result {
        let cfg = model.config, t = cfg.frames, h = cfg.height, w = cfg.width
        // The same conversion as batch scoring (Video.writeFrame): x / 127.5 − 1, (1, 3, H, W).
        let frame = Tensor(uninitialized: [1, 3, h, w])
        Video(frames: 1, height: h, width: w, pixels: rgb).writeFrame(0, to: frame.data)

        var result = Result(frameIndex: frameIndex, hasScore: false, psnr: .nan, anomalyScore: .nan,
                            threshold: threshold ?? .nan, alert: alerts.unscored())
        var encoded: FrameFeatures? = nil
        if window.count == t {
            // Predict, then encode for the next pushes, each with the whole thread budget.
            // (Encoding on a thread of its own beside the prediction went past the budget, and
            // within it — one thread each — was slower: 36 against 28–33 ms per `small` frame.)
            let predicted = model.predictNext(from: window), features = model.encodeFrame(frame)
            encoded = features
            match(features)
            let psnr = INFPModel.psnr(predicted, frame)[0]
            result.hasScore = true
            result.psnr = psnr
            if let calibration, let threshold {
                let z = calibration.anomalyScore(raw: calibration.method == "memory" ? memoryScore() : psnr)
                result.anomalyScore = z
                result.alert = alerts.update(score: z, threshold: threshold)
            }
            if let errorMap {
                // Per pixel, the mean over channels of the squared error on [0, 1] images.
                let plane = h * w, p = predicted.data, g = frame.data
                for i in 0..<plane {
                    var acc: Float = 0
                    for c in 0..<3 { let d = (p[c * plane + i] - g[c * plane + i]) / 2; acc += d * d }
                    errorMap[i] = acc / 3
                }
            }
        } else if let errorMap {
            errorMap.update(repeating: 0, count: h * w)
        }
        if window.count == t { window.removeFirst() }
        if let encoded { window.append(encoded) } else {
            let features = model.encodeFrame(frame)
            match(features)
            window.append(features)
        }
        frameIndex += 1
        return result
    }

    /// Matches a new frame against the memory (a "memory" calibration only).
    func match(_ features: FrameFeatures) {
        guard let memory else { return }
        let descriptor = NormalMemory.descriptors(features.x2).0
        let dots = Tensor(uninitialized: [memory.features.shape[0]])
        memory.dots(descriptor.data, into: dots.data)
        if recent.count == NormalMemory.clipFrames { recent.removeFirst() }
        recent.append((descriptor, dots, NormalMemory.squaredNorms(descriptor)[0]))
    }

    /// The memory score of the clip ending with the current frame: the same value as the batch
    /// `anomalyScores(method: .memory)` of that frame.
    func memoryScore() -> Double {
        guard let memory, recent.count == NormalMemory.clipFrames else { return .nan }
        return memory.score(clip: recent.map {
            NormalMemory.FrameMatch(descriptor: UnsafePointer($0.descriptor.data), norm: $0.norm, dots: UnsafePointer($0.dots.data))
        })
    }

    /// Forgets past frames (features, frame count, alert state): the next frame is frame 0.
    public func reset() {
        window.removeAll()
        recent.removeAll()
        frameIndex = 0
        alerts.reset()
    }
}
