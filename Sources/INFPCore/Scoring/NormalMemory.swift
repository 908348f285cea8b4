/// A memory of normal motion: the model's backbone features of every frame of normal videos,
/// compared window by window with new footage.
///
/// A test frame f is judged with its clip — frames f−4 … f, the model's four inputs and the
/// frame it predicts. The memory finds the normal clip (five consecutive frames of one normal
/// video) whose features are closest over the whole clip, which aligns the phase of the
/// periodic motion, then scores the frame by the largest feature distance over the grid cells
/// of that clip: a product of the wrong colour, shape, angle or position, a missing or foreign
/// one, a line running too fast or standing still tend to leave some cell of the clip unlike
/// anything normal, while lighting drift seen in normal footage does not (docs/quality.md).
///
/// Features: the backbone's x2 output (C, H/4, W/4) (evaluation mode) averaged over 2×2
/// cells and over groups of channels down to at most `maxChannels`, i.e. (≤ 32, H/8, W/8).
public struct NormalMemory {
    public static let clipFrames = 5
    public static let maxChannels = 32

    /// Descriptor layout: channels × gridHeight × gridWidth.
    public let channels: Int, gridHeight: Int, gridWidth: Int
    /// (frames, channels·gridHeight·gridWidth), the frames of all normal videos in order.
    public let features: Tensor
    /// Frames per normal video (their sum is `features.shape[0]`).
    public let videoLengths: [Int]

    /// Squared norms of the remembered frames, and the first frames of every normal clip
    /// (five consecutive frames of one video).
    let memoryNorms: [Float]
    let clipStarts: [Int]

    public var descriptorSize: Int { channels * gridHeight * gridWidth }

    public init(channels: Int, gridHeight: Int, gridWidth: Int, features: Tensor, videoLengths: [Int]) {
        precondition(features.rank == 2 && features.shape[1] == channels * gridHeight * gridWidth, "memory features do not match the layout")
        precondition(videoLengths.reduce(0, +) == features.shape[0], "memory video lengths do not add up to the frames")
        self.channels = channels; self.gridHeight = gridHeight; self.gridWidth = gridWidth
        self.features = features; self.videoLengths = videoLengths
        memoryNorms = NormalMemory.squaredNorms(features)
        var starts: [Int] = [], offset = 0
        for len in videoLengths { starts += (offset..<offset + len - NormalMemory.clipFrames + 1); offset += len }
        clipStarts = starts
    }

    /// The descriptor layout of backbone x2 features (C, h, w): channel groups and 2×2 cells.
    public static func layout(featureChannels c: Int, height h: Int, width w: Int) -> (channels: Int, gridHeight: Int, gridWidth: Int) {
        let group = (c + maxChannels - 1) / maxChannels
        return ((c + group - 1) / group, max(1, h / 2), max(1, w / 2))
    }

    /// Descriptors (n, D) of backbone x2 features (n, C, h, w).
    static func descriptors(_ x2: Tensor) -> (Tensor, channels: Int, gridHeight: Int, gridWidth: Int) {
        let n = x2.shape[0], c = x2.shape[1], h = x2.shape[2], w = x2.shape[3]
        let group = (c + maxChannels - 1) / maxChannels
        let (oc, gh, gw) = layout(featureChannels: c, height: h, width: w)
        let cellH = h / gh, cellW = w / gw
        let out = Tensor(zeros: [n, oc * gh * gw])
        Parallel.forEach(n) { f in
            let src = x2.data + f * c * h * w, dst = out.data + f * oc * gh * gw
            for ch in 0..<c {
                let o = dst + (ch / group) * gh * gw
                let plane = src + ch * h * w
                for y in 0..<gh * cellH {
                    for x in 0..<gw * cellW { o[(y / cellH) * gw + x / cellW] += plane[y * w + x] }
                }
            }
            for k in 0..<oc {  // averages: the last group may hold fewer channels
                let members = min(group, c - k * group)
                let scale = 1 / Float(members * cellH * cellW)
                for j in 0..<gh * gw { dst[k * gh * gw + j] *= scale }
            }
        }
        return (out, oc, gh, gw)
    }

    /// Builds the memory from the descriptors (n, D) of normal videos, one tensor per video, in
    /// `layout`; videos shorter than a clip are skipped.
    static func build(perVideo: [Tensor], layout: (channels: Int, gridHeight: Int, gridWidth: Int)) -> NormalMemory? {
        let kept = perVideo.filter { $0.shape[0] >= clipFrames }
        guard !kept.isEmpty else { return nil }
        return NormalMemory(channels: layout.channels, gridHeight: layout.gridHeight, gridWidth: layout.gridWidth,
                            features: Tensor.concat(kept, axis: 0), videoLengths: kept.map { $0.shape[0] })
    }

    /// Anomaly scores of frames 4 … n−1 of a video from its descriptors (n, D): the largest
    /// per-cell squared feature distance (summed over the clip's frames and the cell's
    /// channels) to the nearest normal clip.
    func scores(descriptors a: Tensor) -> [Double] {
        let t = a.shape[0], nb = features.shape[0], d = descriptorSize, k = NormalMemory.clipFrames
        precondition(a.shape[1] == d, "descriptors of \(a.shape[1]) values, the memory holds \(d)")
        guard t >= k else { return [] }
        let norms = NormalMemory.squaredNorms(a)
        var out = [Double](repeating: 0, count: t - k + 1)
        // Frame-to-memory dot products a block of clips at a time (rows × N), so that long
        // videos against a large memory stay within about 256 MB.
        let clipsPerBlock = max(64, (64 << 20) / max(1, nb) - k + 1)
        var first = 0
        while first < t - k + 1 {
            let clips = min(clipsPerBlock, t - k + 1 - first), rows = clips + k - 1
            let dot = Tensor(uninitialized: [rows, nb])
            Gemm.sgemm(transB: true, m: rows, n: nb, k: d, a: a.data + first * d, lda: d, b: features.data, ldb: d, c: dot.data, ldc: nb)
            let frames = (0..<rows).map { FrameMatch(descriptor: UnsafePointer(a.data + (first + $0) * d), norm: norms[first + $0],
                                                     dots: UnsafePointer(dot.data + $0 * nb)) }
            let base = first
            out.withUnsafeMutableBufferPointer { o in
                let o = o
                Parallel.forEach(clips) { s in o[base + s] = score(clip: Array(frames[s..<s + k])) }
            }
            first += clips
        }
        return out
    }

    /// A frame's descriptor with its squared norm and its dot products with every frame of the
    /// memory: what clip scores need, computed once per frame (live streams keep the last five).
    public struct FrameMatch {
        public let descriptor: UnsafePointer<Float>
        public let norm: Float
        public let dots: UnsafePointer<Float>
    }

    /// The dot products of one descriptor (D values) with every remembered frame, into `dots` (N).
    func dots(_ descriptor: UnsafePointer<Float>, into dots: UnsafeMutablePointer<Float>) {
        let nb = features.shape[0], d = descriptorSize
        Gemm.sgemm(transB: true, m: 1, n: nb, k: d, a: descriptor, lda: d, b: features.data, ldb: d, c: dots, ldc: nb)
    }

    /// The score of one clip (`clipFrames` frames, oldest first).
    public func score(clip: [FrameMatch]) -> Double {
        let k = NormalMemory.clipFrames, d = descriptorSize
        precondition(clip.count == k, "a clip is \(k) frames, got \(clip.count)")
        var best = Double.infinity, bestStart = 0
        for n in clipStarts {
            var dist = 0.0
            for i in 0..<k { dist += Double(clip[i].norm + memoryNorms[n + i] - 2 * clip[i].dots[n + i]) }
            if dist < best { best = dist; bestStart = n }
        }
        let cells = gridHeight * gridWidth
        var perCell = [Double](repeating: 0, count: cells)
        for i in 0..<k {
            let x = clip[i].descriptor, y = features.data + (bestStart + i) * d
            for c in 0..<channels {
                for j in 0..<cells { let e = Double(x[c * cells + j] - y[c * cells + j]); perCell[j] += e * e }
            }
        }
        return perCell.max()!
    }

    static func squaredNorms(_ x: Tensor) -> [Float] {
        let n = x.shape[0], d = x.shape[1]
        return (0..<n).map { i in
            var s: Float = 0
            let p = x.data + i * d
            for j in 0..<d { s += p[j] * p[j] }
            return s
        }
    }

    // MARK: checkpoints: tensors `memory.features`, `memory.video_lengths`, metadata layout

    public static let metadataKey = "infp_memory"
    public static let tensorPrefix = "memory."

    public var checkpointTensors: [(String, SafeTensors.Value)] {
        [("memory.features", .float32(features)),
         ("memory.video_lengths", .int64(shape: [videoLengths.count], values: videoLengths.map(Int64.init)))]
    }

    public var metadata: String {
        JSON.object([("channels", .number(Double(channels))), ("grid_height", .number(Double(gridHeight))),
                     ("grid_width", .number(Double(gridWidth))), ("clip_frames", .number(Double(NormalMemory.clipFrames))),
                     ("source", .string("backbone x2 features, 2x2 cells, channel groups"))]).serialized
    }

    /// The memory saved in a checkpoint, nil when it holds none. It must have the `layout`
    /// of the model's descriptors, at least one video of a clip or more, and finite features.
    public static func load(from file: SafeTensors.File, source: String,
                            layout: (channels: Int, gridHeight: Int, gridWidth: Int)) throws -> NormalMemory? {
        guard let text = file.metadata(metadataKey) else { return nil }
        func bad(_ m: String) -> FileError { .format("'\(source)' has an unusable normal-footage memory: \(m)") }
        guard let j = try? JSON.parse(text), let c = j["channels"]?.int, let gh = j["grid_height"]?.int, let gw = j["grid_width"]?.int,
              let fe = file.entry("memory.features"), let le = file.entry("memory.video_lengths") else {
            throw FileError.format("'\(source)' has an incomplete normal-footage memory (\(metadataKey), memory.features, memory.video_lengths)")
        }
        guard (c, gh, gw) == layout else {
            throw bad("its layout \(c)×\(gh)×\(gw) is not the model's \(layout.channels)×\(layout.gridHeight)×\(layout.gridWidth) (channels × grid)")
        }
        let lt = try file.tensor(le)
        guard lt.count >= 1, fe.shape.count == 2, fe.shape[1] == c * gh * gw else {
            throw bad("features \(fe.shape) and \(lt.count) video lengths do not make a memory of \(c * gh * gw)-value descriptors")
        }
        var lengths: [Int] = []
        for i in 0..<lt.count {
            let v = lt.data[i]
            guard v.isFinite, v >= Float(clipFrames), v <= Float(fe.shape[0]) else {
                throw bad("video \(i) has length \(v); every remembered video needs \(clipFrames) frames or more")
            }
            lengths.append(Int(v))
        }
        guard lengths.reduce(0, +) == fe.shape[0] else {
            throw bad("video lengths \(lengths.count == 1 ? "\(lengths)" : "adding up to \(lengths.reduce(0, +))") do not match its \(fe.shape[0]) frames")
        }
        let features = try file.tensor(fe)
        for i in 0..<features.count where !features.data[i].isFinite {
            throw bad("feature \(i) is \(features.data[i])")
        }
        return NormalMemory(channels: c, gridHeight: gh, gridWidth: gw, features: features, videoLengths: lengths)
    }
}
