/// Pre-activation BatchNorm + ReLU (`bnX.0` in the released names).
final class BNReLU {
    let bn: BatchNorm2d
    init(_ scope: Scope, channels c: Int) { bn = BatchNorm2d(scope.child("0"), channels: c) }
    func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { bn.relu(x, training: training) }
}

/// A WiderResNet-A2 identity block (INFP-SPEC §2.1): two 3×3 convs, or a 1×1–3×3–1×1
/// bottleneck when `chans` has three entries; optional Dropout2d before the last conv.
final class ResidualBlock {
    let bn1: BNReLU
    let convs: [Conv2d]
    let bns: [BNReLU]        // bn2 (and bn3 for a bottleneck)
    let projection: Conv2d?
    let dropout: Float

    init(_ scope: Scope, in cin: Int, chans: [Int], stride: Int, dilation d: Int, dropout: Float) {
        bn1 = BNReLU(scope.child("bn1"), channels: cin)
        let s = scope.child("convs")
        // Registered in the released order: conv1, bn2, conv2 (, bn3, conv3).
        let conv1 = Conv2d(s.child("conv1"), in: cin, out: chans[0], kernel: chans.count == 2 ? 3 : 1,
                           stride: stride, padding: chans.count == 2 ? d : 0, dilation: chans.count == 2 ? d : 1, bias: false)
        let bn2 = BNReLU(s.child("bn2"), channels: chans[0])
        if chans.count == 2 {
            convs = [conv1, Conv2d(s.child("conv2"), in: chans[0], out: chans[1], kernel: 3, padding: d, dilation: d, bias: false)]
            bns = [bn2]
        } else {
            let conv2 = Conv2d(s.child("conv2"), in: chans[0], out: chans[1], kernel: 3, padding: d, dilation: d, bias: false)
            let bn3 = BNReLU(s.child("bn3"), channels: chans[1])
            convs = [conv1, conv2, Conv2d(s.child("conv3"), in: chans[1], out: chans[2], kernel: 1, bias: false)]
            bns = [bn2, bn3]
        }
        let needsProjection = stride != 1 || cin != chans.last!
        projection = needsProjection ? Conv2d(scope.child("proj_conv"), in: cin, out: chans.last!, kernel: 1, stride: stride, bias: false) : nil
        self.dropout = dropout
    }

    func callAsFunction(_ x: Tensor, _ ctx: inout ForwardContext) -> Tensor {
        let b = bn1(x, training: ctx.training)
        let shortcut = projection.map { $0(b) } ?? x
        var h = convs[0](b)
        for i in 1..<convs.count {
            h = bns[i - 1](h, training: ctx.training)
            if i == convs.count - 1 && dropout > 0 { h = ctx.dropout2d(h, p: dropout) }
            h = convs[i](h)
        }
        return h + shortcut
    }
}

/// WiderResNet-A2 with dilation, output stride 8 (`wrn38`), shared by all input frames.
final class Backbone {
    let conv1: Conv2d
    let modules: [[ResidualBlock]]  // mod2..mod7

    init(_ scope: Scope, _ cfg: ModelConfig) {
        let c = cfg.c
        conv1 = Conv2d(scope.child("mod1").child("conv1"), in: cfg.imageChannels, out: c(64), kernel: 3, padding: 1, bias: false)
        // (chans, stride of the first block, dilation, dropout) of mod2..mod7.
        let specs: [([Int], Int, Int, Float)] = [
            ([c(128), c(128)], 1, 1, 0), ([c(256), c(256)], 1, 1, 0), ([c(512), c(512)], 2, 1, 0),
            ([c(512), c(1024)], 1, 2, 0), ([c(512), c(1024), c(2048)], 1, 4, cfg.dropout ? 0.3 : 0),
            ([c(1024), c(2048), c(4096)], 1, 4, cfg.dropout ? 0.5 : 0),
        ]
        var cin = c(64)
        var mods: [[ResidualBlock]] = []
        for (m, (chans, stride, dil, drop)) in specs.enumerated() {
            let ms = scope.child("mod\(m + 2)")
            var blocks: [ResidualBlock] = []
            for b in 0..<cfg.blocks[m] {
                blocks.append(ResidualBlock(ms.child("block\(b + 1)"), in: cin, chans: chans,
                                            stride: b == 0 ? stride : 1, dilation: dil, dropout: drop))
                cin = chans.last!
            }
            mods.append(blocks)
        }
        modules = mods
    }

    /// Features of one batch of frames: x1 (stride 2), x2 (stride 4), x8 (stride 8).
    func callAsFunction(_ x: Tensor, _ ctx: inout ForwardContext) -> (x1: Tensor, x2: Tensor, x8: Tensor) {
        var h = conv1(x)
        h = NN.maxPool3x3s2p1(h)
        for b in modules[0] { h = b(h, &ctx) }
        let x1 = h
        h = NN.maxPool3x3s2p1(h)
        for b in modules[1] { h = b(h, &ctx) }
        let x2 = h
        for m in modules[2...] { for b in m { h = b(h, &ctx) } }
        return (x1, x2, h)
    }
}

/// Per-call state of a forward pass: training or evaluation, and the dropout generator.
public struct ForwardContext {
    public var training: Bool
    public var rng: Rng

    public init(training: Bool, rng: Rng = Rng(seed: 0)) { self.training = training; self.rng = rng }

    mutating func dropout2d(_ x: Tensor, p: Float) -> Tensor {
        NN.dropout2d(x, p: p, training: training, rng: &rng)
    }
}
