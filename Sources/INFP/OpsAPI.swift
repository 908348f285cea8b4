import CINFP
import INFPCore

// Single operations of include/infp.h: conv2d and the 2-D real FFTs, forward and backward.
// Each function validates every pointer, shape and count before touching caller memory, copies
// the inputs into engine tensors, runs the op (backward through the engine's autograd), and
// copies the results out. Inputs and outputs may alias: outputs are written last.

// MARK: - conv2d

private let conv2dDefaults = infp_conv2d_params(
    size: MemoryLayout<infp_conv2d_params>.size, stride: 1, padding: 0, dilation: 1, n_threads: 0)

@_cdecl("infp_conv2d_default_params")
public func infp_conv2d_default_params() -> infp_conv2d_params { conv2dDefaults }

/// Validated conv2d settings and shapes.
private struct Conv2dProblem {
    var x: [Int]
    var w: [Int]
    var y: [Int]
    var stride: Int
    var padding: Int
    var dilation: Int
    var threads: Int

    init(xShape: UnsafePointer<Int64>?, wShape: UnsafePointer<Int64>?,
         params: UnsafePointer<infp_conv2d_params>?) throws {
        let p = try readParams(params, defaults: conv2dDefaults, "params")
        guard p.stride >= 0 else { throw APIError.invalid("params->stride is \(p.stride); it must be >= 1 (0 means 1)") }
        guard p.padding >= 0 else { throw APIError.invalid("params->padding is \(p.padding); it must be >= 0") }
        guard p.dilation >= 0 else { throw APIError.invalid("params->dilation is \(p.dilation); it must be >= 1 (0 means 1)") }
        stride = p.stride == 0 ? 1 : Int(p.stride)
        padding = Int(p.padding)
        dilation = p.dilation == 0 ? 1 : Int(p.dilation)
        threads = try threadCount(p.n_threads)

        x = try readShape(xShape, rank: 4, "x_shape")
        w = try readShape(wShape, rank: 4, "w_shape")
        guard x[1] == w[1] else {
            throw APIError.shape("x_shape[1] (\(x[1]) input channels) differs from w_shape[1] (\(w[1])); x is \(describe(x)), w is \(describe(w))")
        }
        let (stride, padding, dilation) = (self.stride, self.padding, self.dilation)
        func outSize(_ size: Int, _ kernel: Int, _ axis: String) throws -> Int {
            // All terms are below 2^41 (dimensions <= 2^40, int32 settings), except d·(k−1).
            let padded = size + 2 * padding
            let extent = try checkedAdd(try checkedMul(dilation, kernel - 1, "dilation * (kernel - 1)"), 1, "kernel extent")
            guard extent <= padded else {
                throw APIError.shape("kernel \(axis) extent \(extent) (dilation \(dilation) * (\(kernel) - 1) + 1) exceeds the padded input \(axis) \(padded) (\(size) + 2 * \(padding))")
            }
            return (padded - extent) / stride + 1
        }
        y = [x[0], w[0], try outSize(x[2], w[2], "height"), try outSize(x[3], w[3], "width")]
        _ = try elementCount(y, "y")
        // The engine multiplies K × (C·R·S) weights by (C·R·S) × (Ho·Wo) patches in BLAS, whose
        // sizes are 32-bit ints.
        let gemm = [("K", w[0]), ("C*R*S", w[1] * w[2] * w[3]), ("Ho*Wo", y[2] * y[3])]
        for (name, size) in gemm where size > Int(Int32.max) {
            throw APIError.invalid("conv2d size \(name) = \(size) exceeds 2^31 - 1; x is \(describe(x)), w is \(describe(w))")
        }
    }

    var engineCall: (Tensor, Tensor, Tensor?) -> Tensor {
        let (s, p, d) = (stride, padding, dilation)
        return { x, w, b in NN.conv2d(x, weight: w, bias: b, stride: s, padding: p, dilation: d) }
    }

    /// Shape check of a caller's output (or dy) shape against the computed one.
    func checkOutputShape(_ pointer: UnsafePointer<Int64>?, _ name: String) throws {
        let p = try require(pointer, name)
        for i in 0..<4 where p[i] != Int64(y[i]) {
            let given = (0..<4).map { String(p[$0]) }.joined(separator: ", ")
            throw APIError.shape("\(name) is [\(given)] but the output of x \(describe(x)) and w \(describe(w)) with stride \(stride), padding \(padding), dilation \(dilation) is \(describe(y))")
        }
    }

    /// Tensors, gradients and the patch matrices (each thread's im2col scratch holds at least
    /// one output row: C·R·S × Wo floats, twice in backward) must fit in memory.
    func checkMemory() throws {
        let counts = [x, w, y].map { $0.reduce(1, *) }
        let rowScratch = try checkedMul(w[1] * w[2] * w[3], y[3], "im2col row size")
        let threads = self.threads == 0 ? Parallel.cores : self.threads
        let scratch = try checkedMul(rowScratch, 2 * threads, "im2col scratch size")
        try ensureAllocatable(floats: try checkedAdd(2 * counts.reduce(0, +), scratch, "conv2d memory"))
    }
}

@_cdecl("infp_conv2d")
public func infp_conv2d(_ x: UnsafePointer<Float>?, _ x_shape: UnsafePointer<Int64>?,
                        _ w: UnsafePointer<Float>?, _ w_shape: UnsafePointer<Int64>?,
                        _ bias: UnsafePointer<Float>?,
                        _ params: UnsafePointer<infp_conv2d_params>?,
                        _ y: UnsafeMutablePointer<Float>?, _ y_shape: UnsafePointer<Int64>?) -> infp_status {
    guarded {
        let xp = try require(x, "x"), wp = try require(w, "w"), yp = try require(y, "y")
        let problem = try Conv2dProblem(xShape: x_shape, wShape: w_shape, params: params)
        try problem.checkOutputShape(y_shape, "y_shape")
        try problem.checkMemory()

        let out: Tensor = Parallel.withThreads(problem.threads) {
            let xt = tensor(copying: xp, shape: problem.x)
            let wt = tensor(copying: wp, shape: problem.w)
            let bt = bias.map { tensor(copying: $0, shape: [problem.w[0]]) }
            return problem.engineCall(xt, wt, bt)
        }
        guard out.shape == problem.y else {
            throw APIError.internal("conv2d produced \(describe(out.shape)), expected \(describe(problem.y))")
        }
        try copyOut(out, to: yp, count: out.count, "y")
    }
}

@_cdecl("infp_conv2d_backward")
public func infp_conv2d_backward(_ x: UnsafePointer<Float>?, _ x_shape: UnsafePointer<Int64>?,
                                 _ w: UnsafePointer<Float>?, _ w_shape: UnsafePointer<Int64>?,
                                 _ params: UnsafePointer<infp_conv2d_params>?,
                                 _ dy: UnsafePointer<Float>?, _ dy_shape: UnsafePointer<Int64>?,
                                 _ dx: UnsafeMutablePointer<Float>?, _ dw: UnsafeMutablePointer<Float>?,
                                 _ dbias: UnsafeMutablePointer<Float>?) -> infp_status {
    guarded {
        let xp = try require(x, "x"), wp = try require(w, "w"), dyp = try require(dy, "dy")
        let problem = try Conv2dProblem(xShape: x_shape, wShape: w_shape, params: params)
        try problem.checkOutputShape(dy_shape, "dy_shape")
        guard dx != nil || dw != nil || dbias != nil else { return }  // nothing wanted
        try problem.checkMemory()

        let (gx, gw, gb): (Tensor?, Tensor?, Tensor?) = Parallel.withThreads(problem.threads) {
            let xt = tensor(copying: xp, shape: problem.x)
            let wt = tensor(copying: wp, shape: problem.w)
            let seed = tensor(copying: dyp, shape: problem.y)
            // The bias's value does not change any gradient; it is there for dbias.
            let bt = dbias != nil ? Tensor(zeros: [problem.w[0]]) : nil
            xt.requiresGrad = dx != nil
            wt.requiresGrad = dw != nil
            bt?.requiresGrad = true
            withGradients { problem.engineCall(xt, wt, bt).backward(seed: seed) }
            return (xt.grad, wt.grad, bt?.grad)
        }
        if let dx { try copyOut(gx, to: dx, count: problem.x.reduce(1, *), "dx") }
        if let dw { try copyOut(gw, to: dw, count: problem.w.reduce(1, *), "dw") }
        if let dbias { try copyOut(gb, to: dbias, count: problem.w[0], "dbias") }
    }
}

// MARK: - 2-D real FFTs

/// FFTW takes sizes and strides as int: every FFT buffer must hold fewer than 2^31 floats.
private let maxFFTFloats = Int(Int32.max)

private func readNorm(_ norm: infp_fft_norm) throws -> FFTNorm {
    if norm == INFP_FFT_BACKWARD { return .backward }
    if norm == INFP_FFT_ORTHO { return .ortho }
    throw APIError.invalid("norm is \(norm.rawValue); use INFP_FFT_BACKWARD (0) or INFP_FFT_ORTHO (1)")
}

/// Validated shapes of an rfft2 / irfft2 problem: the real side and the complex side.
private struct FFTProblem {
    var real: [Int]      // real tensor shape
    var complex: [Int]   // complex tensor shape, with the trailing 2
    var axes: (Int, Int)
    var norm: FFTNorm

    var realCount: Int { real.reduce(1, *) }
    var complexCount: Int { complex.reduce(1, *) }

    static func readAxes(ndim: Int32, _ axis0: Int32, _ axis1: Int32) throws -> (Int, Int) {
        guard ndim >= 2, Int(ndim) <= maxRank else {
            throw APIError.invalid("ndim is \(ndim); a 2-D FFT needs 2...\(maxRank) dimensions")
        }
        guard axis0 >= 0, axis1 < ndim, axis0 < axis1 else {
            throw APIError.invalid("axes (\(axis0), \(axis1)) must satisfy 0 <= axis0 < axis1 < ndim = \(ndim)")
        }
        return (Int(axis0), Int(axis1))
    }

    /// From the real shape (rfft2 and its backward).
    init(ndim: Int32, xShape: UnsafePointer<Int64>?, _ axis0: Int32, _ axis1: Int32, _ norm: infp_fft_norm) throws {
        axes = try FFTProblem.readAxes(ndim: ndim, axis0, axis1)
        self.norm = try readNorm(norm)
        real = try readShape(xShape, rank: Int(ndim), "x_shape")
        var c = real
        c[axes.1] = real[axes.1] / 2 + 1
        complex = c + [2]
        try checkLimits()
    }

    /// From the complex shape and the last size n1 (irfft2 and its backward).
    init(ndim: Int32, zShape: UnsafePointer<Int64>?, _ axis0: Int32, _ axis1: Int32, n1: Int64,
         _ norm: infp_fft_norm) throws {
        axes = try FFTProblem.readAxes(ndim: ndim, axis0, axis1)
        self.norm = try readNorm(norm)
        let z = try readShape(zShape, rank: Int(ndim), "z_shape")
        guard n1 >= 1, n1 <= Int64(maxElements) else {
            throw APIError.invalid("n1 is \(n1); it must be >= 1")
        }
        guard Int64(z[axes.1]) == n1 / 2 + 1 else {
            throw APIError.shape("z_shape[axis1 = \(axes.1)] is \(z[axes.1]) but n1 = \(n1) needs n1/2 + 1 = \(n1 / 2 + 1)")
        }
        var r = z
        r[axes.1] = Int(n1)
        real = r
        complex = z + [2]
        try checkLimits()
    }

    private func checkLimits() throws {
        let r = try elementCount(real, "real tensor shape")
        let c = try elementCount(complex, "complex tensor shape (with the trailing 2)")
        guard r <= maxFFTFloats, c <= maxFFTFloats else {
            throw APIError.invalid("FFT tensors are limited to 2^31 - 1 floats; real \(describe(real)) has \(r), complex \(describe(complex)) has \(c)")
        }
        try ensureAllocatable(floats: 2 * (r + c))
    }

    func checkCount(_ count: Int64, _ expected: Int, _ name: String, _ shapeName: String, _ shape: [Int]) throws {
        guard count == Int64(expected) else {
            throw APIError.shape("\(name) is \(count) but the \(shapeName) \(describe(shape)) has \(expected) floats")
        }
    }
}

@_cdecl("infp_rfft2")
public func infp_rfft2(_ x: UnsafePointer<Float>?, _ ndim: Int32, _ x_shape: UnsafePointer<Int64>?,
                       _ axis0: Int32, _ axis1: Int32, _ norm: infp_fft_norm,
                       _ y: UnsafeMutablePointer<Float>?, _ y_count: Int64) -> infp_status {
    guarded {
        let xp = try require(x, "x"), yp = try require(y, "y")
        let problem = try FFTProblem(ndim: ndim, xShape: x_shape, axis0, axis1, norm)
        try problem.checkCount(y_count, problem.complexCount, "y_count", "spectrum", problem.complex)
        let out: Tensor = Parallel.withThreads(0) {
            FFT.rfft2(tensor(copying: xp, shape: problem.real), axes: problem.axes, norm: problem.norm)
        }
        guard out.shape == problem.complex else {
            throw APIError.internal("rfft2 produced \(describe(out.shape)), expected \(describe(problem.complex))")
        }
        try copyOut(out, to: yp, count: problem.complexCount, "y")
    }
}

@_cdecl("infp_rfft2_backward")
public func infp_rfft2_backward(_ ndim: Int32, _ x_shape: UnsafePointer<Int64>?,
                                _ axis0: Int32, _ axis1: Int32, _ norm: infp_fft_norm,
                                _ dy: UnsafePointer<Float>?, _ dy_count: Int64,
                                _ dx: UnsafeMutablePointer<Float>?) -> infp_status {
    guarded {
        let dyp = try require(dy, "dy"), dxp = try require(dx, "dx")
        let problem = try FFTProblem(ndim: ndim, xShape: x_shape, axis0, axis1, norm)
        try problem.checkCount(dy_count, problem.complexCount, "dy_count", "spectrum", problem.complex)
        let grad: Tensor? = Parallel.withThreads(0) {
            // The transform is linear: its gradient does not depend on x's values.
            let xt = Tensor(zeros: problem.real)
            xt.requiresGrad = true
            let seed = tensor(copying: dyp, shape: problem.complex)
            withGradients { FFT.rfft2(xt, axes: problem.axes, norm: problem.norm).backward(seed: seed) }
            return xt.grad
        }
        try copyOut(grad, to: dxp, count: problem.realCount, "dx")
    }
}

@_cdecl("infp_irfft2")
public func infp_irfft2(_ z: UnsafePointer<Float>?, _ ndim: Int32, _ z_shape: UnsafePointer<Int64>?,
                        _ axis0: Int32, _ axis1: Int32, _ n1: Int64, _ norm: infp_fft_norm,
                        _ y: UnsafeMutablePointer<Float>?, _ y_count: Int64) -> infp_status {
    guarded {
        let zp = try require(z, "z"), yp = try require(y, "y")
        let problem = try FFTProblem(ndim: ndim, zShape: z_shape, axis0, axis1, n1: n1, norm)
        try problem.checkCount(y_count, problem.realCount, "y_count", "output", problem.real)
        let out: Tensor = Parallel.withThreads(0) {
            FFT.irfft2(tensor(copying: zp, shape: problem.complex), axes: problem.axes,
                       lastSize: problem.real[problem.axes.1], norm: problem.norm)
        }
        guard out.shape == problem.real else {
            throw APIError.internal("irfft2 produced \(describe(out.shape)), expected \(describe(problem.real))")
        }
        try copyOut(out, to: yp, count: problem.realCount, "y")
    }
}

@_cdecl("infp_irfft2_backward")
public func infp_irfft2_backward(_ ndim: Int32, _ z_shape: UnsafePointer<Int64>?,
                                 _ axis0: Int32, _ axis1: Int32, _ n1: Int64, _ norm: infp_fft_norm,
                                 _ dy: UnsafePointer<Float>?, _ dy_count: Int64,
                                 _ dz: UnsafeMutablePointer<Float>?) -> infp_status {
    guarded {
        let dyp = try require(dy, "dy"), dzp = try require(dz, "dz")
        let problem = try FFTProblem(ndim: ndim, zShape: z_shape, axis0, axis1, n1: n1, norm)
        try problem.checkCount(dy_count, problem.realCount, "dy_count", "output", problem.real)
        let grad: Tensor? = Parallel.withThreads(0) {
            let zt = Tensor(zeros: problem.complex)
            zt.requiresGrad = true
            let seed = tensor(copying: dyp, shape: problem.real)
            withGradients {
                FFT.irfft2(zt, axes: problem.axes, lastSize: problem.real[problem.axes.1],
                           norm: problem.norm).backward(seed: seed)
            }
            return zt.grad
        }
        try copyOut(grad, to: dzp, count: problem.complexCount, "dz")
    }
}
