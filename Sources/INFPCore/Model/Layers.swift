import Glibc

/// How a layer's weights start (INFP-SPEC §2.7).
enum WeightInit {
    /// PyTorch's default: kaiming-uniform with a = √5 (bound 1/√fan_in), bias U(±1/√fan_in).
    case torchDefault
    /// kaiming-normal (fan_in, gain √2), zero bias: the released code's policy for the decoder.
    case kaimingNormal
}

/// 2-D convolution layer (`weight`, optional `bias`).
public final class Conv2d {
    public let weight: Tensor
    public let bias: Tensor?
    let stride: Int, padding: Int, dilation: Int

    init(_ scope: Scope, in cin: Int, out cout: Int, kernel k: Int, stride: Int = 1, padding: Int = 0,
         dilation: Int = 1, bias: Bool, init policy: WeightInit = .torchDefault) {
        let fanIn = cin * k * k
        switch policy {
        case .torchDefault: weight = scope.uniform([cout, cin, k, k], bound: 1 / Float(fanIn).squareRoot())
        case .kaimingNormal: weight = scope.normal([cout, cin, k, k], std: (2 / Float(fanIn)).squareRoot())
        }
        scope.parameter("weight", weight)
        if bias {
            let b = policy == .torchDefault ? scope.uniform([cout], bound: 1 / Float(fanIn).squareRoot()) : Tensor(zeros: [cout])
            self.bias = scope.parameter("bias", b)
        } else { self.bias = nil }
        self.stride = stride; self.padding = padding; self.dilation = dilation
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        NN.conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation)
    }
}

/// Fully connected layer over the last dimension (`weight` (out, in), optional `bias`).
public final class Linear {
    public let weight: Tensor
    public let bias: Tensor?

    init(_ scope: Scope, in n: Int, out m: Int, bias: Bool) {
        let bound = 1 / Float(n).squareRoot()
        weight = scope.parameter("weight", scope.uniform([m, n], bound: bound))
        self.bias = bias ? scope.parameter("bias", scope.uniform([m], bound: bound)) : nil
    }

    func callAsFunction(_ x: Tensor) -> Tensor { NN.linear(x, weight: weight, bias: bias) }
}

/// BatchNorm2d with running statistics and the step counter PyTorch keeps.
public final class BatchNorm2d {
    public let weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor
    public var numBatchesTracked: Int64 = 0

    init(_ scope: Scope, channels c: Int) {
        weight = scope.parameter("weight", Tensor(repeating: 1, shape: [c]))
        bias = scope.parameter("bias", Tensor(zeros: [c]))
        runningMean = Tensor(zeros: [c]); runningVar = Tensor(repeating: 1, shape: [c])
        scope.buffer("running_mean", runningMean)
        scope.buffer("running_var", runningVar)
        scope.store.add(scope.qualified("num_batches_tracked"), .counter(self))
    }

    func callAsFunction(_ x: Tensor, training: Bool) -> Tensor {
        if training && numBatchesTracked < .max { numBatchesTracked += 1 }  // a loaded counter may be at the top
        return NN.batchNorm2d(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar, training: training)
    }

    /// ReLU(self(x)); one fused pass in evaluation mode without gradients.
    func relu(_ x: Tensor, training: Bool) -> Tensor {
        if training || GradMode.isEnabled { return self(x, training: training).relu() }
        return NN.batchNormReluInference(x, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar)
    }
}

/// StarReLU: s·ReLU(x)² + b with learnable scalars (`scale`, `bias`).
public final class StarReLU {
    public let scale: Tensor, bias: Tensor

    init(_ scope: Scope) {
        scale = scope.parameter("scale", Tensor(repeating: 1, shape: [1]))
        bias = scope.parameter("bias", Tensor(zeros: [1]))
    }

    func callAsFunction(_ x: Tensor) -> Tensor { NN.starRelu(x, scale: scale, bias: bias) }
}

/// Squeeze-and-excitation on (B, C, H, W): x · sigmoid(fc2(ReLU(fc1(mean_hw x)))),
/// with `fc1`, `fc2` as Linear (the fusion's SE) or 1×1 convs (channel attention).
final class SqueezeExcite {
    let fc1: Linear, fc2: Linear

    init(_ scope: Scope, channels c: Int, hidden: Int, names: (String, String) = ("fc1", "fc2")) {
        fc1 = Linear(scope.child(names.0), in: c, out: hidden, bias: true)
        fc2 = Linear(scope.child(names.1), in: hidden, out: c, bias: true)
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let b = x.shape[0], c = x.shape[1]
        let squeezed = x.mean(axes: [2, 3]).reshaped([b, c])
        let weights = fc2(fc1(squeezed).relu()).sigmoid().reshaped([b, c, 1, 1])
        return x * weights
    }
}
