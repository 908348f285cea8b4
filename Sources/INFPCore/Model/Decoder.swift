/// Upsampling step (`up*`): ConvTranspose2d kernel 2 stride 2 (no bias) → BatchNorm → ReLU.
final class UpBlock {
    let weight: Tensor
    let bn: BatchNorm2d

    init(_ scope: Scope, in cin: Int, out cout: Int) {
        // PyTorch counts a transposed conv's fan_in over weight dim 1 (cout) × kernel.
        weight = scope.child("ConvTranspose").parameter("weight", scope.normal([cin, cout, 2, 2], std: (2 / Float(cout * 4)).squareRoot()))
        bn = BatchNorm2d(scope.child("bn"), channels: cout)
    }

    func callAsFunction(_ x: Tensor, training: Bool) -> Tensor {
        bn.relu(NN.convTranspose2x2(x, weight: weight), training: training)
    }
}

/// Channel attention (`attn*`): x · sigmoid(conv(ReLU(conv(mean_hw x)))) with 1×1 convs.
final class ChannelAttention {
    let squeeze: Conv2d, excite: Conv2d

    init(_ scope: Scope, channels c: Int) {
        let hidden = max(1, c / 16)
        squeeze = Conv2d(scope.child("layer").child("0"), in: c, out: hidden, kernel: 1, bias: true, init: .kaimingNormal)
        excite = Conv2d(scope.child("layer").child("2"), in: hidden, out: c, kernel: 1, bias: true, init: .kaimingNormal)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { x * excite(squeeze(x.mean(axes: [2, 3])).relu()).sigmoid() }
}

/// Conv (no bias) → BatchNorm → ReLU (`final.0`, `final.1`).
final class ConvBNReLU {
    let conv: Conv2d, bn: BatchNorm2d

    init(_ scope: Scope, in cin: Int, out cout: Int, kernel k: Int) {
        conv = Conv2d(scope.child("conv"), in: cin, out: cout, kernel: k, padding: k / 2, bias: false, init: .kaimingNormal)
        bn = BatchNorm2d(scope.child("bn"), channels: cout)
    }

    func callAsFunction(_ x: Tensor, training: Bool) -> Tensor { bn.relu(conv(x), training: training) }
}

/// The prediction head (`final`): 1×1 ConvBnRelu, 3×3 ConvBnRelu, 3×3 conv to RGB.
final class Head {
    let reduce: ConvBNReLU, refine: ConvBNReLU, toImage: Conv2d

    init(_ scope: Scope, in cin: Int, hidden: Int, out cout: Int) {
        reduce = ConvBNReLU(scope.child("0"), in: cin, out: hidden, kernel: 1)
        refine = ConvBNReLU(scope.child("1"), in: hidden, out: hidden, kernel: 3)
        toImage = Conv2d(scope.child("2"), in: hidden, out: cout, kernel: 3, padding: 1, bias: false, init: .kaimingNormal)
    }

    func callAsFunction(_ x: Tensor, training: Bool) -> Tensor {
        toImage(refine(reduce(x, training: training), training: training))
    }
}
