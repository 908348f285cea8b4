import Glibc

/// How a frame's anomaly score is computed (higher = more anomalous), for frames 4 … n−1.
public enum ScoreMethod: String, CaseIterable, Equatable {
    /// The paper: −PSNR of the predicted frame (INFP-SPEC §5).
    case psnr
    /// The largest mean squared prediction error over patches (size `patchSize`, stride half
    /// of it): products are small, so a whole-frame mean dilutes their errors.
    case patch
    /// Distance to the nearest clip of normal footage in the model's feature space
    /// (NormalMemory); needs a memory built from normal videos.
    case memory
}

public struct ScoreOptions: Equatable {
    public var method: ScoreMethod = .memory
    /// `patch`: side of the square patches, in pixels.
    public var patchSize = 16
    /// Causal moving average over this many frames (1 = none): a frame's score is the mean
    /// of its own and the previous ones' raw scores, so live use needs no future frames.
    public var smoothing = 1

    public init(method: ScoreMethod = .memory, patchSize: Int = 16, smoothing: Int = 1) {
        self.method = method; self.patchSize = patchSize; self.smoothing = smoothing
    }

    public struct InputError: Error, CustomStringConvertible { public let description: String }

    public func validate(height: Int, width: Int) throws {
        if method == .patch {
            guard patchSize >= 2, patchSize <= min(height, width) else {
                throw InputError(description: "patch_size is \(patchSize); use 2 … \(min(height, width)) (the frame is \(height)×\(width))")
            }
        }
        guard smoothing >= 1, smoothing <= 10_000 else { throw InputError(description: "smoothing is \(smoothing); use 1 (none) or more frames") }
    }
}

public enum AnomalyScore {
    /// The largest mean of `error` (H × W) over p×p patches at stride max(1, p/2) (the last
    /// row and column of patches are aligned with the frame's edge so every pixel is covered).
    public static func largestPatchMean(_ error: UnsafePointer<Double>, height h: Int, width w: Int, patch p: Int) -> Double {
        // Integral image, (h+1) × (w+1).
        var sum = [Double](repeating: 0, count: (h + 1) * (w + 1))
        for y in 0..<h {
            var row = 0.0
            for x in 0..<w { row += error[y * w + x]; sum[(y + 1) * (w + 1) + x + 1] = sum[y * (w + 1) + x + 1] + row }
        }
        func starts(_ n: Int) -> [Int] {
            var s = Array(stride(from: 0, through: n - p, by: max(1, p / 2)))
            if s.last != n - p { s.append(n - p) }
            return s
        }
        var best = -Double.infinity
        for y in starts(h) {
            for x in starts(w) {
                let total = sum[(y + p) * (w + 1) + x + p] - sum[y * (w + 1) + x + p] - sum[(y + p) * (w + 1) + x] + sum[y * (w + 1) + x]
                best = max(best, total)
            }
        }
        return best / Double(p * p)
    }

    /// Causal moving average over `k` frames (fewer at the start).
    public static func smoothed(_ s: [Double], over k: Int) -> [Double] {
        guard k > 1 else { return s }
        var out = [Double](repeating: 0, count: s.count), run = 0.0
        for i in 0..<s.count {
            run += s[i]
            if i >= k { run -= s[i - k] }
            out[i] = run / Double(min(i + 1, k))
        }
        return out
    }
}

extension INFPModel {
    public struct ScoringError: Error, CustomStringConvertible { public let description: String }

    /// Per-frame anomaly scores of frames 4 … n−1 of a video (higher = more anomalous).
    public func anomalyScores(_ video: Video, options: ScoreOptions = ScoreOptions()) throws -> [Double] {
        try options.validate(height: config.height, width: config.width)
        let t = config.frames
        guard video.frames > t else { throw ScoringError(description: "the video has \(video.frames) frames; scoring needs at least \(t + 1)") }
        let raw: [Double]
        switch options.method {
        case .psnr:
            raw = score(video).map { -$0 }
        case .patch:
            let h = config.height, w = config.width, plane = h * w
            var out = [Double](repeating: 0, count: video.frames - t)
            forEachPrediction(frames: video.frames, batchSize: 8, input: { video.tensor(frames: $0) }) { start, predicted in
                let b = predicted.shape[0], targets = video.tensor(frames: start + t..<start + t + b)
                out.withUnsafeMutableBufferPointer { o in
                    let o = o
                    Parallel.forEach(b) { i in
                        let p = predicted.data + i * 3 * plane, g = targets.data + i * 3 * plane
                        var error = [Double](repeating: 0, count: plane)
                        for c in 0..<3 {
                            for j in 0..<plane { let d = Double(p[c * plane + j] - g[c * plane + j]) / 2; error[j] += d * d / 3 }
                        }
                        o[start + i] = error.withUnsafeBufferPointer {
                            AnomalyScore.largestPatchMean($0.baseAddress!, height: h, width: w, patch: options.patchSize)
                        }
                    }
                }
            }
            raw = out
        case .memory:
            guard let memory else {
                throw ScoringError(description: "the 'memory' score needs a memory of normal footage: build it with infp_model_remember (Python: model.remember(normal_videos); fit does it by default)")
            }
            guard (memory.channels, memory.gridHeight, memory.gridWidth) == memoryLayout else {
                throw ScoringError(description: "the memory's layout (\(memory.channels)×\(memory.gridHeight)×\(memory.gridWidth)) does not match the model's features")
            }
            raw = memory.scores(descriptors: memoryDescriptors(video))
        }
        return AnomalyScore.smoothed(raw, over: options.smoothing)
    }

    /// Builds the memory of normal footage ("memory" score) from normal videos and returns it;
    /// the caller stores it (`model.memory = …`) under its own locking.
    public func buildMemory(normal videos: [Video]) throws -> NormalMemory {
        let features = videos.filter { $0.frames >= NormalMemory.clipFrames }.map { memoryDescriptors($0) }
        guard let m = NormalMemory.build(perVideo: features, layout: memoryLayout) else {
            throw ScoringError(description: "the memory needs at least one normal video of \(NormalMemory.clipFrames) frames or more")
        }
        return m
    }

    /// The layout of this model's memory descriptors (from backbone x2 features: c(256), H/4, W/4).
    public var memoryLayout: (channels: Int, gridHeight: Int, gridWidth: Int) {
        NormalMemory.layout(featureChannels: config.c(256), height: config.height / 4, width: config.width / 4)
    }

    /// Memory descriptors (n, D) of every frame of a video, a batch of frames at a time (only
    /// the small descriptors of the whole video are kept).
    func memoryDescriptors(_ video: Video, batchSize: Int = 32) -> Tensor {
        var parts: [Tensor] = []
        var s = 0
        while s < video.frames {
            let b = min(batchSize, video.frames - s)
            var ctx = ForwardContext(training: false)
            parts.append(NormalMemory.descriptors(backbone(video.tensor(frames: s..<s + b), &ctx).x2).0)
            s += b
        }
        return Tensor.concat(parts, axis: 0)
    }
}
