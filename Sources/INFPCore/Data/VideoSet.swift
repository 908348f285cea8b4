/// Videos at the model's frame size, kept as uint8 RGB (n, H, W, 3) — four times smaller
/// than floats — and converted to model input ([−1, 1], channels first) per batch.
public struct Video {
    public let frames: Int, height: Int, width: Int
    public let pixels: [UInt8]  // frames × height × width × 3

    public init(frames: Int, height: Int, width: Int, pixels: [UInt8]) {
        precondition(pixels.count == frames * height * width * 3, "video pixels do not match \(frames)×\(height)×\(width)×3")
        self.frames = frames; self.height = height; self.width = width; self.pixels = pixels
    }

    /// All frames as model input (n, 3, H, W) in [−1, 1].
    public func tensor() -> Tensor { tensor(frames: 0..<frames) }

    /// Frames `range` as model input (count, 3, H, W) in [−1, 1].
    public func tensor(frames range: Range<Int>) -> Tensor {
        let plane = 3 * height * width
        let out = Tensor(uninitialized: [range.count, 3, height, width])
        Parallel.forEach(range.count) { i in writeFrame(range.lowerBound + i, to: out.data + i * plane) }
        return out
    }

    /// Writes frame `f` as (3, H, W) floats x/127.5 − 1 at `out`.
    func writeFrame(_ f: Int, to out: UnsafeMutablePointer<Float>) {
        let plane = height * width
        pixels.withUnsafeBufferPointer { px in
            let base = px.baseAddress! + f * plane * 3
            for i in 0..<plane {
                out[i] = Float(base[3 * i]) / 127.5 - 1
                out[plane + i] = Float(base[3 * i + 1]) / 127.5 - 1
                out[2 * plane + i] = Float(base[3 * i + 2]) / 127.5 - 1
            }
        }
    }
}

/// A clip: 4 input frames starting at `start` of video `video`, the 5th is the target.
public struct ClipIndex: Equatable {
    public let video: Int, start: Int
}

public enum ClipSampler {
    /// Training clips of the released loader (INFP-SPEC §4): per video, starts
    /// range(0, n//5*5, step) with step 2 when n > 100 else 1, kept when 5 frames fit.
    public static func trainingClips(_ videos: [Video], length: Int = 5) -> [ClipIndex] {
        var out: [ClipIndex] = []
        for (v, video) in videos.enumerated() {
            let n = video.frames
            let step = n > 100 ? 2 : 1
            for s in stride(from: 0, to: n / 5 * 5, by: step) where s + length <= n {
                out.append(ClipIndex(video: v, start: s))
            }
        }
        return out
    }

    /// Input clips (B, 4, 3, H, W) and targets (B, 3, H, W) for the given clip indices.
    public static func batch(_ videos: [Video], _ clips: ArraySlice<ClipIndex>, frames t: Int = 4) -> (Tensor, Tensor) {
        let first = videos[clips.first!.video]
        let h = first.height, w = first.width, plane = 3 * h * w
        let x = Tensor(uninitialized: [clips.count, t, 3, h, w])
        let y = Tensor(uninitialized: [clips.count, 3, h, w])
        Parallel.forEach(clips.count) { i in
            let c = clips[clips.startIndex + i]
            for k in 0..<t { videos[c.video].writeFrame(c.start + k, to: x.data + (i * t + k) * plane) }
            videos[c.video].writeFrame(c.start + t, to: y.data + i * plane)
        }
        return (x, y)
    }
}
