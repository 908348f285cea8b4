import Glibc

extension INFPModel {
    /// Evaluation-mode predictions of frames 4..n−1 of a video given as (n, 3, H, W) in
    /// [−1, 1]: each frame goes through the backbone once, and each 4-frame window reuses
    /// those features (the windows of one video overlap by three frames).
    /// Returns (n − 4, 3, H, W).
    public func predictVideo(_ frames: Tensor, batchSize: Int = 8) -> Tensor {
        let n = frames.shape[0], t = config.frames
        precondition(n > t, "a video needs more than \(t) frames to predict any, got \(n)")
        let perFrame = encodeEach(frames, batchSize: batchSize)
        let outShape = [n - t, config.imageChannels, config.height, config.width]
        let out = Tensor(uninitialized: outShape)
        let frameSize = outShape[1...].reduce(1, *)
        var start = 0
        while start < n - t {
            let b = min(batchSize, n - t - start)
            var ctx = ForwardContext(training: false)
            let windows = (x1: Self.windows(perFrame.x1, from: start, count: b, frames: t),
                           x2: Self.windows(perFrame.x2, from: start, count: b, frames: t),
                           x8: Self.windows(perFrame.x8, from: start, count: b, frames: t))
            let pred = decode(windows, batch: b, &ctx)
            (out.data + start * frameSize).update(from: pred.data, count: b * frameSize)
            start += b
        }
        return out
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

    /// Windows start..start+count of per-frame features (n, C, h, w), stacked per window
    /// along channels: (count, T·C, h, w).
    static func windows(_ f: Tensor, from start: Int, count: Int, frames t: Int) -> Tensor {
        let c = f.shape[1], h = f.shape[2], w = f.shape[3], frameSize = c * h * w
        let out = Tensor(uninitialized: [count, t * c, h, w])
        for i in 0..<count {
            (out.data + i * t * frameSize).update(from: f.data + (start + i) * frameSize, count: t * frameSize)
        }
        return out
    }

    /// PSNR of the predicted frames 4..n−1 of a video (INFP-SPEC §5); higher = more normal.
    public func score(_ video: Video, batchSize: Int = 8) -> [Double] {
        let t = config.frames, plane = 3 * video.height * video.width
        let frames = Tensor(uninitialized: [video.frames, 3, video.height, video.width])
        Parallel.forEach(video.frames) { f in video.writeFrame(f, to: frames.data + f * plane) }
        let predicted = predictVideo(frames, batchSize: batchSize)
        return INFPModel.psnr(predicted, frames.slice(axis: 0, range: t..<video.frames))
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
