/// The INFP frame-prediction network (INFP-SPEC §2): predicts frame t+4 from frames t..t+3.
public final class INFPModel {
    public let config: ModelConfig
    public let store: ParameterStore

    let backbone: Backbone
    let convX8: Conv2d, convX2: Conv2d, convX1: Conv2d
    let up8: UpBlock, up4: UpBlock, up2: UpBlock
    let attn8: ChannelAttention, attn4: ChannelAttention, attn2: ChannelAttention
    let head: Head
    let fusion: MultiFeatureFusion?
    let filter: TrajectoryFilter?
    /// Live-alert calibration on normal footage (Scoring/Calibration.swift); saved with the
    /// model in the checkpoint's `__metadata__["infp_calibration"]`. Nil until calibrated.
    public var calibration: Calibration?
    /// Backbone features of normal footage for the "memory" anomaly score
    /// (Scoring/NormalMemory.swift); saved in the checkpoint. Nil until built.
    public var memory: NormalMemory?

    /// A freshly initialised model (released init policy, seeded).
    public init(config: ModelConfig, seed: UInt64 = 0) throws {
        try config.validate()
        self.config = config
        store = ParameterStore(seed: seed)
        let root = Scope(store: store)
        let c = config.c, t = config.frames
        // Registered in the released state_dict's order.
        backbone = Backbone(root.child("wrn38"), config)
        convX8 = Conv2d(root.child("conv_x8"), in: t * c(4096), out: c(2048), kernel: 1, bias: false, init: .kaimingNormal)
        convX2 = Conv2d(root.child("conv_x2"), in: t * c(256), out: c(256), kernel: 1, bias: false, init: .kaimingNormal)
        convX1 = Conv2d(root.child("conv_x1"), in: t * c(128), out: c(128), kernel: 1, bias: false, init: .kaimingNormal)
        up8 = UpBlock(root.child("up8"), in: c(2048), out: c(1024))
        up4 = UpBlock(root.child("up4"), in: c(256) + c(1024), out: c(512))
        up2 = UpBlock(root.child("up2"), in: c(128) + c(512), out: c(256))
        attn8 = ChannelAttention(root.child("attn8"), channels: c(1024))
        attn4 = ChannelAttention(root.child("attn4"), channels: c(512))
        attn2 = ChannelAttention(root.child("attn2"), channels: c(256))
        head = Head(root.child("final"), in: c(256), hidden: c(128), out: config.imageChannels)
        fusion = config.fusion ? MultiFeatureFusion(root.child("fusion"), config) : nil
        filter = config.trajectoryFilter
            ? TrajectoryFilter(root.child("filter"), channels: c(256), height: config.height, width: config.width, config) : nil
    }

    public var parameterCount: Int { store.parameterCount }

    /// clips (B, T, 3, H, W) in [−1, 1] → predicted next frames (B, 3, H, W).
    public func forward(_ clips: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        let cfg = config
        precondition(clips.rank == 5 && clips.shape[1] == cfg.frames && clips.shape[2] == cfg.imageChannels
                     && clips.shape[3] == cfg.height && clips.shape[4] == cfg.width,
                     "clips must be (B, \(cfg.frames), \(cfg.imageChannels), \(cfg.height), \(cfg.width)), got \(clips.shape)")
        let b = clips.shape[0], t = cfg.frames
        let features = encodeFrames(clips.reshaped([b * t, cfg.imageChannels, cfg.height, cfg.width]), batch: b, &ctx)
        return decode(features, batch: b, &ctx)
    }

    /// Backbone features of frames (B·T, 3, H, W), stacked per clip along channels:
    /// (B, T·C, h, w) each. In training mode each frame index runs separately, so that
    /// BatchNorm statistics are per frame, as in the released code.
    func encodeFrames(_ frames: Tensor, batch b: Int, _ ctx: inout ForwardContext) -> (x1: Tensor, x2: Tensor, x8: Tensor) {
        let t = frames.shape[0] / b
        func stack(_ f: Tensor) -> Tensor { f.reshaped([b, t * f.shape[1], f.shape[2], f.shape[3]]) }
        if !ctx.training {
            let f = backbone(frames, &ctx)
            return (stack(f.x1), stack(f.x2), stack(f.x8))
        }
        let perClip = frames.reshaped([b, t, frames.shape[1], frames.shape[2], frames.shape[3]])
        var x1: [Tensor] = [], x2: [Tensor] = [], x8: [Tensor] = []
        for i in 0..<t {
            let frame = perClip.slice(axis: 1, range: i..<i + 1).reshaped([b, frames.shape[1], frames.shape[2], frames.shape[3]])
            let f = backbone(frame, &ctx)
            x1.append(f.x1); x2.append(f.x2); x8.append(f.x8)
        }
        return (Tensor.concat(x1, axis: 1), Tensor.concat(x2, axis: 1), Tensor.concat(x8, axis: 1))
    }

    /// Frame fusion, multi-feature fusion, decoder, filter and head.
    func decode(_ f: (x1: Tensor, x2: Tensor, x8: Tensor), batch b: Int, _ ctx: inout ForwardContext) -> Tensor {
        let training = ctx.training
        var x8 = convX8(f.x8)
        let x2 = convX2(f.x2), x1 = convX1(f.x1)
        if let fusion {
            x8 = fusion(x8)
        } else {
            x8 = x8 + NN.temporalShift(x8, frames: config.frames, foldDiv: config.baselineTsmDiv)
        }
        var x = attn8(up8(x8, training: training))
        x = attn4(up4(Tensor.concat([x2, x], axis: 1), training: training))
        x = attn2(up2(Tensor.concat([x1, x], axis: 1), training: training))
        if let filter { x = filter(x) }
        return head(x, training: training)
    }
}

extension INFPModel {
    /// A rough upper bound of the floats a model of this config holds, so that configs that
    /// cannot fit in memory are refused before building them (the official model holds
    /// 317.4 M in 17 blocks; weights scale with the square of the channel width).
    /// Backbone features of one frame (x1 + x2 + x8), in floats.
    public var featureFloatsPerFrame: Int {
        let c = config
        return c.c(128) * (c.height / 2) * (c.width / 2) + c.c(256) * (c.height / 4) * (c.width / 4)
            + c.c(4096) * (c.height / 8) * (c.width / 8)
    }

    /// A rough lower bound of the floats a training step keeps per clip (activations saved for
    /// backward): measured 36 M for `small` (1.26 GB at batch 8), about 40 features of each of
    /// the 4 frames; used to refuse batches that cannot fit before starting them.
    public var trainingFloatsPerClip: Int { 25 * config.frames * featureFloatsPerFrame }

    public static func estimatedParameterCount(_ config: ModelConfig) throws -> Int {
        let scale = Double(config.widthDiv * config.widthDiv)
        let depth = Double(config.blocks.reduce(0, +)) / 17.0
        return Int(320e6 / scale * max(1, depth))
    }
}
