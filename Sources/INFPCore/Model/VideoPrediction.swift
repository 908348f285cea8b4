import Glibc

/// Evaluation-mode backbone features of one frame: x1 (1, c(128), H/2, W/2),
/// x2 (1, c(256), H/4, W/4), x8 (1, c(4096), H/8, W/8).
public struct FrameFeatures {
    public let x1: Tensor, x2: Tensor, x8: Tensor
}

extension INFPModel {
    /// Evaluation-mode predictions of frames 4..n−1 of a video given as (n, 3, H, W) in
    /// [−1, 1]: each frame goes through the backbone once, and each 4-frame window reuses
    /// those features (the windows of one video overlap by three frames).
    /// Returns (n − 4, 3, H, W).
    public func predictVideo(_ frames: Tensor, batchSize: Int = 8) -> Tensor {
        let n = frames.shape[0], t = config.frames
        precondition(n > t, "a video needs more than \(t) frames to predict any, got \(n)")
        let out = Tensor(uninitialized: [n - t, config.imageChannels, config.height, config.width])
        let frameSize = out.count / (n - t)
        forEachPrediction(frames: n, batchSize: batchSize, input: { frames.slice(axis: 0, range: $0) }) { start, pred in
            (out.data + start * frameSize).update(from: pred.data, count: pred.count)
        }
        return out
    }

    /// Evaluation-mode predictions of frames 4..n−1 of a video, written to `out`
    /// ((n − 4) × 3 × H × W floats) a batch at a time.
    public func predictVideo(_ video: Video, into out: UnsafeMutablePointer<Float>, batchSize: Int = 8) {
        let frameSize = config.imageChannels * config.height * config.width
        forEachPrediction(frames: video.frames, batchSize: batchSize, input: { video.tensor(frames: $0) }) { start, pred in
            (out + start * frameSize).update(from: pred.data, count: pred.count)
        }
    }

    /// Predictions of frames 4..n−1 of a video of `n` frames, `batchSize` at a time, in
    /// order: `body(i, p)` gets the predictions p (b, 3, H, W) of frames 4+i ..< 4+i+b.
    /// `input(range)` gives frames `range` as (count, 3, H, W). The video is encoded in
    /// segments whose features take about 1 GB at most (three frames per segment are encoded
    /// twice), so memory does not grow with the video's length.
    func forEachPrediction(frames n: Int, batchSize: Int, input: (Range<Int>) -> Tensor, _ body: (Int, Tensor) -> Void) {
        let t = config.frames
        let segment = max(4 * batchSize, (256 << 20) / max(1, featureFloatsPerFrame))
        var first = 0
        while first < n - t {
            let windows = min(segment, n - t - first)
            let perFrame = encodeEach(input(first..<first + windows + t - 1), batchSize: batchSize)
            var start = 0
            while start < windows {
                let b = min(batchSize, windows - start)
                let span = start..<start + b + t - 1
                let pred = decodeWindows(x1: Self.frames(of: perFrame.x1, span), x2: Self.frames(of: perFrame.x2, span),
                                         x8: Self.frames(of: perFrame.x8, span), count: b,
                                         shapes: (Array(perFrame.x1.shape[1...]), Array(perFrame.x2.shape[1...]), Array(perFrame.x8.shape[1...])))
                body(first + start, pred)
                start += b
            }
            first += windows
        }
    }

    /// Evaluation-mode backbone features of one frame (1, 3, H, W) in [−1, 1], kept by live
    /// streams so that each frame goes through the backbone once.
    public func encodeFrame(_ frame: Tensor) -> FrameFeatures {
        precondition(frame.shape == [1, config.imageChannels, config.height, config.width],
                     "encodeFrame needs (1, \(config.imageChannels), \(config.height), \(config.width)), got \(frame.shape)")
        var ctx = ForwardContext(training: false)
        let f = backbone(frame, &ctx)
        return FrameFeatures(x1: f.x1, x2: f.x2, x8: f.x8)
    }

    /// Evaluation-mode prediction (1, 3, H, W) of the frame after the `config.frames` frames
    /// whose features are given, oldest first — the same computation as `predictVideo`.
    public func predictNext(from window: [FrameFeatures]) -> Tensor {
        precondition(window.count == config.frames, "predictNext needs \(config.frames) frames' features, got \(window.count)")
        let first = window[0]
        return decodeWindows(x1: window.map { UnsafePointer($0.x1.data) }, x2: window.map { UnsafePointer($0.x2.data) },
                             x8: window.map { UnsafePointer($0.x8.data) }, count: 1,
                             shapes: (Array(first.x1.shape[1...]), Array(first.x2.shape[1...]), Array(first.x8.shape[1...])))
    }

    /// Fusion and decoder (evaluation mode) of `count` windows over consecutive frames:
    /// window i stacks the per-frame features at x·[i ..< i + T], of `shapes` (C, h, w).
    func decodeWindows(x1: [UnsafePointer<Float>], x2: [UnsafePointer<Float>], x8: [UnsafePointer<Float>], count: Int,
                       shapes s: (x1: [Int], x2: [Int], x8: [Int])) -> Tensor {
        let t = config.frames
        var ctx = ForwardContext(training: false)
        let stacked = (x1: Self.windows(x1, count: count, frames: t, shape: s.x1),
                       x2: Self.windows(x2, count: count, frames: t, shape: s.x2),
                       x8: Self.windows(x8, count: count, frames: t, shape: s.x8))
        return decode(stacked, batch: count, &ctx)
    }

    /// Pointers to frames `range` of per-frame features (n, C, h, w).
    static func frames(of f: Tensor, _ range: Range<Int>) -> [UnsafePointer<Float>] {
        let size = f.count / f.shape[0]
        return range.map { UnsafePointer(f.data + $0 * size) }
    }

    /// Backbone features of every frame, in batches: (n, C, h, w) for x1, x2, x8.
    func encodeEach(_ frames: Tensor, batchSize: Int) -> (x1: Tensor, x2: Tensor, x8: Tensor) {
        let n = frames.shape[0]
        var parts: [(Tensor, Tensor, Tensor)] = []
        var s = 0
        while s < n {
            let b = min(batchSize * config.frames, n - s)
            var ctx = ForwardContext(training: false)
            let f = backbone(frames.slice(axis: 0, range: s..<s + b), &ctx)
            parts.append((f.x1, f.x2, f.x8))
            s += b
        }
        return (Tensor.concat(parts.map { $0.0 }, axis: 0), Tensor.concat(parts.map { $0.1 }, axis: 0),
                Tensor.concat(parts.map { $0.2 }, axis: 0))
    }

    /// Windows of per-frame features, stacked per window along channels: window i holds the
    /// frames `perFrame[i ..< i + t]` (each of `shape` (C, h, w)) → (count, T·C, h, w).
    static func windows(_ perFrame: [UnsafePointer<Float>], count: Int, frames t: Int, shape: [Int]) -> Tensor {
        precondition(perFrame.count >= count + t - 1, "windows: \(perFrame.count) frames cannot make \(count) windows of \(t)")
        let c = shape[0], h = shape[1], w = shape[2], frameSize = c * h * w
        let out = Tensor(uninitialized: [count, t * c, h, w])
        for i in 0..<count {
            for j in 0..<t { (out.data + (i * t + j) * frameSize).update(from: perFrame[i + j], count: frameSize) }
        }
        return out
    }

    /// PSNR of the predicted frames 4..n−1 of a video (INFP-SPEC §5); higher = more normal.
    public func score(_ video: Video, batchSize: Int = 8) -> [Double] {
        let t = config.frames
        var out: [Double] = []
        forEachPrediction(frames: video.frames, batchSize: batchSize, input: { video.tensor(frames: $0) }) { start, pred in
            out += INFPModel.psnr(pred, video.tensor(frames: start + t..<start + t + pred.shape[0]))
        }
        return out
    }

    /// PSNR of predictions against targets per frame (INFP-SPEC §5), on [0, 1] images:
    /// 10·log10(1 / mean(((P+1)/2 − (G+1)/2)²)).
    public static func psnr(_ predicted: Tensor, _ target: Tensor) -> [Double] {
        let n = predicted.shape[0], size = predicted.count / max(1, n)
        return (0..<n).map { i in
            var acc = 0.0
            let p = predicted.data + i * size, g = target.data + i * size
            for j in 0..<size { let d = Double(p[j] - g[j]) / 2; acc += d * d }
            return 10 * log10(1 / max(acc / Double(size), 1e-20))
        }
    }
}
