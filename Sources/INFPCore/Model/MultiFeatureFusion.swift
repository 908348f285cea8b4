/// A 1×1 conv → LeakyReLU(0.1) → SE → 1×1 conv refinement of a spectrum part
/// (`processmag` / `processpha`, INFP-SPEC §2.3).
final class SpectrumProcess {
    let first: Conv2d, se: SqueezeExcite, last: Conv2d

    init(_ scope: Scope, channels c: Int) {
        first = Conv2d(scope.child("0"), in: c, out: c, kernel: 1, bias: true)
        se = SqueezeExcite(scope.child("2"), channels: c, hidden: max(1, c / 8))
        last = Conv2d(scope.child("3"), in: c, out: c, kernel: 1, bias: true)
    }

    func callAsFunction(_ x: Tensor) -> Tensor { last(se(first(x).leakyRelu(0.1))) }
}

/// The frequency feature extractor (`freq_extractor`): a spatial residual branch and a
/// spectrum branch refining amplitude and phase (or real and imaginary parts), merged by a
/// 1×1 conv.
final class FrequencyExtractor {
    let conv1: Conv2d, transLayer: Conv2d, conv2: Conv2d
    let processMag: SpectrumProcess, processPha: SpectrumProcess
    let merge: Conv2d
    let mode: ModelConfig.FreqMode

    init(_ scope: Scope, channels c: Int, mode: ModelConfig.FreqMode) {
        let s = scope.child("spatial_process").child("block")
        conv1 = Conv2d(s.child("conv1").child("main").child("0"), in: c, out: c, kernel: 3, padding: 1, bias: true)
        conv2 = Conv2d(s.child("conv2").child("main").child("0"), in: c, out: c, kernel: 3, padding: 1, bias: true)
        transLayer = Conv2d(s.child("trans_layer").child("main").child("0"), in: c, out: c, kernel: 3, padding: 1, bias: true)
        let f = scope.child("frequency_process")
        processMag = SpectrumProcess(f.child("processmag"), channels: c)
        processPha = SpectrumProcess(f.child("processpha"), channels: c)
        merge = Conv2d(scope.child("cat"), in: 2 * c, out: c, kernel: 1, bias: true)
        self.mode = mode
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        let w = x.shape[3]
        let spectrum = FFT.rfft2(x, axes: (2, 3), norm: .backward)
        let spatial = conv2(transLayer(conv1(x).gelu())) + x
        let refined: Tensor
        switch mode {
        case .polar:
            let m = Complex.abs(spectrum), p = Complex.angle(spectrum)
            refined = Complex.polar(magnitude: m + processMag(m), phase: p + processPha(p))
        case .cartesian:
            let re = Complex.real(spectrum), im = Complex.imag(spectrum)
            refined = Complex.make(real: re + processMag(re), imag: im + processPha(im))
        }
        let frequency = FFT.irfft2(refined, axes: (2, 3), lastSize: w, norm: .backward)
        return merge(Tensor.concat([spatial, frequency], axis: 1))
    }
}

/// SSPCAB context block (`fusion.fusion`, kernel 1, dilation 1): four 1×1 convs reading the
/// map shifted by ±2 in both directions (zeros outside), summed, ReLU, then SE (ratio 1).
final class SSPCAB {
    let convs: [Conv2d]
    let se: SqueezeExcite
    // Output (i, j) of conv1..conv4 sees input (i−2, j−2), (i+2, j−2), (i−2, j+2), (i+2, j+2).
    static let offsets: [(dy: Int, dx: Int)] = [(-2, -2), (2, -2), (-2, 2), (2, 2)]

    init(_ scope: Scope, channels c: Int) {
        se = SqueezeExcite(scope.child("se"), channels: c, hidden: c)
        convs = (1...4).map { Conv2d(scope.child("conv\($0)"), in: c, out: c, kernel: 1, bias: true) }
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        var sum: Tensor? = nil
        for (conv, o) in zip(convs, SSPCAB.offsets) {
            let y = conv(NN.shifted(x, dy: o.dy, dx: o.dx))
            sum = sum.map { $0 + y } ?? y
        }
        return se(sum!.relu())
    }
}

/// Multi-feature fusion (`fusion`, INFP-SPEC §2.3): F = SSPCAB(x + TSM(x) + freq(x)).
final class MultiFeatureFusion {
    let freqExtractor: FrequencyExtractor
    let context: SSPCAB
    let frames: Int, tsmDiv: Int

    init(_ scope: Scope, _ cfg: ModelConfig) {
        let c = cfg.c(2048)
        freqExtractor = FrequencyExtractor(scope.child("freq_extractor"), channels: c, mode: cfg.freqMode)
        context = SSPCAB(scope.child("fusion"), channels: c)
        frames = cfg.frames; tsmDiv = cfg.fusionTsmDiv
    }

    func callAsFunction(_ x: Tensor) -> Tensor {
        context(x + NN.temporalShift(x, frames: frames, foldDiv: tsmDiv) + freqExtractor(x))
    }
}
