import CFFTW
import Glibc

/// Scaling of a forward/inverse FFT pair, as in `torch.fft` (n = n0 · n1).
public enum FFTNorm {
    /// Forward unscaled, inverse scaled by 1/n.
    case backward
    /// Both directions scaled by 1/√n (the transforms are then unitary on the full spectrum).
    case ortho
}

/// Two-dimensional real FFTs over any two axes of a tensor, on FFTW (single precision).
///
/// Conventions (same as `torch.fft.rfft2` / `irfft2(s: (n0, n1))` and FFTW's r2c/c2r):
/// with θ = 2π(k0·j0/n0 + k1·j1/n1) and h = n1/2 + 1 columns kept along the last FFT axis a1,
/// - rfft2:  X[k0, k1] = s · Σ_j x[j0, j1] e^{−iθ},  k1 ∈ 0..<h;
/// - irfft2: y[j0, j1] = s · Re Σ_{k1 ∈ 0..<h} c(k1) · Σ_{k0} Y[k0, k1] e^{+iθ},
///   with c = 1 for the DC column and (even n1) the Nyquist column, c = 2 for the others.
///   That is a complex inverse DFT along a0, then a real-output inverse along a1 that reads only
///   the real parts of the DC/Nyquist columns; it is defined for any (non-Hermitian) input.
/// Complex tensors carry a trailing dimension of 2 (real, imaginary).
public enum FFT {
    /// Real-to-half-complex 2-D FFT of `x` over `axes` (a0 < a1, any two axes of x).
    /// Output shape: x.shape with dimension a1 → x.shape[a1]/2 + 1, plus a trailing 2.
    public static func rfft2(_ x: Tensor, axes: (Int, Int), norm: FFTNorm) -> Tensor {
        let (a0, a1) = axes
        precondition(a0 >= 0 && a0 < a1 && a1 < x.rank, "rfft2: axes \(axes) do not fit shape \(x.shape)")
        let realShape = x.shape
        let n0 = realShape[a0], n1 = realShape[a1]
        let out = Tensor(uninitialized: complexShape(realShape, a1))
        OpProfile.measure("fft.rfft2.fwd") { r2c(x.data, realShape: realShape, axes: axes, into: out.data) }
        // The self-conjugate bins are real; make their imaginary part exactly +0 (FFTW may leave
        // rounding noise or −0) so that angle() there is exactly 0 or +π, as tools/infp_torch.py does.
        zeroSelfConjugateImaginary(out, axes: axes, n0: n0, n1: n1)
        let s = scale(norm, n0 * n1, inverse: false)
        if s != 1 { multiply(out, by: s) }

        return out.recorded(from: [x]) { g in
            // Adjoint (spec §2.6): dx[j] = s · Re Σ_{k ∈ half spectrum} G[k] e^{+iθ}. The C2R map
            // computes s'·Re Σ c(k1)·G[k] e^{+iθ}, so dividing the c = 2 columns by 2 first makes it
            // count every stored bin exactly once. The imaginary parts C2R ignores (DC/Nyquist bins
            // that are their own conjugate) belong to outputs that are identically zero.
            let scratch = g.copy()
            scaleInteriorColumns(scratch, axis: a1, n1: n1, by: 0.5)
            let dx = Tensor(uninitialized: realShape)
            OpProfile.measure("fft.rfft2.bwd") { withExtendedLifetime(scratch) { c2r(scratch.data, realShape: realShape, axes: (a0, a1), into: dx.data) } }
            if s != 1 { multiply(dx, by: s) }
            return [dx]
        }
    }

    /// Half-complex-to-real 2-D inverse FFT. `z` is complex (trailing 2); `axes` index z's
    /// dimensions without the trailing 2, and z.shape[a1] must be n1/2 + 1.
    /// Output shape: z's shape without the trailing 2, with dimension a1 → n1.
    public static func irfft2(_ z: Tensor, axes: (Int, Int), lastSize n1: Int, norm: FFTNorm) -> Tensor {
        let (a0, a1) = axes
        precondition(z.rank >= 3 && z.shape[z.rank - 1] == 2, "irfft2: \(z.shape) is not a complex tensor")
        precondition(a0 >= 0 && a0 < a1 && a1 < z.rank - 1, "irfft2: axes \(axes) do not fit shape \(z.shape)")
        precondition(n1 >= 1 && z.shape[a1] == n1 / 2 + 1,
                     "irfft2: dimension \(a1) of \(z.shape) must be \(n1 / 2 + 1) for last size \(n1)")
        var realShape = Array(z.shape.dropLast())
        realShape[a1] = n1
        let n0 = realShape[a0]
        let out = Tensor(uninitialized: realShape)
        // FFTW's c2r overwrites its input: give it a copy.
        let scratch = z.copy()
        // (Keep the copy alive while FFTW works through its raw pointer.)
        OpProfile.measure("fft.irfft2.fwd") { withExtendedLifetime(scratch) { c2r(scratch.data, realShape: realShape, axes: axes, into: out.data) } }
        let s = scale(norm, n0 * n1, inverse: true)
        if s != 1 { multiply(out, by: s) }

        let zShape = z.shape
        return out.recorded(from: [z]) { g in
            // Adjoint: y = s·Re Σ c(k1) Y[k] e^{+iθ}, so ∂L/∂Re Y[k] = s·c(k1)·Re Σ_j g[j] e^{−iθ}
            // and ∂L/∂Im Y[k] = s·c(k1)·Im Σ_j g[j] e^{−iθ}: the rfft2 of g with the interior
            // columns doubled. For bins that are their own conjugate (k0 ∈ {0, n0/2}, k1 ∈ {0, n1/2})
            // this is exactly zero in Im, matching C2R ignoring those inputs; we set it to 0 exactly.
            let dz = Tensor(uninitialized: zShape)
            OpProfile.measure("fft.irfft2.bwd") { r2c(g.data, realShape: realShape, axes: (a0, a1), into: dz.data) }
            scaleInteriorColumns(dz, axis: a1, n1: n1, by: 2)
            zeroSelfConjugateImaginary(dz, axes: (a0, a1), n0: n0, n1: n1)
            if s != 1 { multiply(dz, by: s) }
            return [dz]
        }
    }

    // MARK: - Helpers

    /// Shape of the half spectrum of a real tensor transformed with last FFT axis `a1`.
    static func complexShape(_ realShape: [Int], _ a1: Int) -> [Int] {
        var s = realShape
        s[a1] = realShape[a1] / 2 + 1
        return s + [2]
    }

    static func scale(_ norm: FFTNorm, _ n: Int, inverse: Bool) -> Float {
        switch norm {
        case .backward: return inverse ? Float(1 / Double(n)) : 1
        case .ortho: return Float(1 / Double(n).squareRoot())
        }
    }

    static func multiply(_ t: Tensor, by s: Float) {
        let d = t.data
        for i in 0..<t.count { d[i] *= s }
    }

    /// Multiplies the columns 1..⌈n1/2⌉−1 along `axis` of the complex tensor `t` by `factor`:
    /// the bins that stand for a conjugate pair in the Hermitian half spectrum.
    static func scaleInteriorColumns(_ t: Tensor, axis: Int, n1: Int, by factor: Float) {
        let h = t.shape[axis]
        let last = (n1 + 1) / 2 - 1  // ⌈n1/2⌉ − 1
        guard last >= 1 else { return }
        let outer = t.shape[..<axis].reduce(1, *)
        let inner = t.shape[(axis + 1)...].reduce(1, *)  // includes the trailing 2
        let d = t.data
        for o in 0..<outer {
            let base = d + o * h * inner
            for i in inner..<((last + 1) * inner) { base[i] *= factor }
        }
    }

    /// Sets Im to 0 at the bins (k0, k1) with k0 ∈ {0, n0/2 (even n0)} and k1 ∈ {0, n1/2 (even n1)}.
    static func zeroSelfConjugateImaginary(_ t: Tensor, axes: (Int, Int), n0: Int, n1: Int) {
        let (a0, a1) = axes
        let strides = Tensor.strides(of: t.shape)
        let k0s = n0 % 2 == 0 && n0 > 1 ? [0, n0 / 2] : [0]
        let k1s = n1 % 2 == 0 && n1 > 1 ? [0, n1 / 2] : [0]
        // Visit every index of the dimensions other than a0, a1 and the trailing 2.
        var others: [(size: Int, stride: Int)] = []
        for d in 0..<(t.rank - 1) where d != a0 && d != a1 { others.append((t.shape[d], strides[d])) }
        let total = others.reduce(1) { $0 * $1.size }
        let p = t.data
        for flat in 0..<total {
            var rem = flat, offset = 0
            for (size, stride) in others.reversed() { offset += (rem % size) * stride; rem /= size }
            for k0 in k0s { for k1 in k1s { p[offset + k0 * strides[a0] + k1 * strides[a1] + 1] = 0 } }
        }
    }

    // MARK: - FFTW plans

    private enum Direction: Hashable { case r2c, c2r }

    /// A transform as FFTW's guru interface sees it: the two transform dimensions and the
    /// "howmany" loops, each (n, input stride, output stride), and the alignment class of each
    /// array (`fftwf_alignment_of`): plans may use SIMD codelets that need the alignment the
    /// arrays had at planning, so arrays of another class get their own plan.
    private struct PlanKey: Hashable {
        let dims: [[Int32]]
        let loops: [[Int32]]
        let direction: Direction
        let alignment: [Int32]

        init(_ dims: [fftwf_iodim], _ loops: [fftwf_iodim], _ direction: Direction, _ arrays: [UnsafeMutablePointer<Float>]) {
            self.dims = dims.map { [$0.n, $0.is, $0.os] }
            self.loops = loops.map { [$0.n, $0.is, $0.os] }
            self.direction = direction
            alignment = arrays.map { fftwf_alignment_of($0) }
        }
    }

    /// Plans keyed by problem. FFTW's planner is not thread-safe, so planning happens under a
    /// lock; executing a plan on new arrays (fftwf_execute_dft_*) is, and runs outside it.
    /// Plans are never destroyed: the model uses a handful of shapes.
    private final class PlanCache: @unchecked Sendable {
        private var mutex = pthread_mutex_t()
        private var plans: [PlanKey: OpaquePointer] = [:]

        init() { pthread_mutex_init(&mutex, nil) }

        private(set) var failures = 0
        private(set) var lastFailure = ""

        /// The plan for `key`, nil when FFTW cannot make one (counted in `failures`).
        func plan(_ key: PlanKey, make: () -> OpaquePointer?) -> OpaquePointer? {
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            if let p = plans[key] { return p }
            guard let p = make() else {
                failures += 1
                lastFailure = "FFTW could not plan a transform of sizes \(key.dims.map { $0[0] }) over \(key.loops.map { $0[0] })"
                return nil
            }
            plans[key] = p
            return p
        }

        func failureState() -> (count: Int, message: String) {
            pthread_mutex_lock(&mutex)
            defer { pthread_mutex_unlock(&mutex) }
            return (failures, lastFailure)
        }
    }

    /// Transforms FFTW refused to plan so far, and the last one's description. A refused
    /// transform leaves NaN in its output; callers compare the count before and after a call
    /// (the C layer does, for every call) to turn that into an error.
    public static var planFailures: (count: Int, message: String) { cache.failureState() }

    private static let cache = PlanCache()

    /// FFTW guru dimensions for a transform over (a0, a1) of a real tensor `realShape` and its
    /// half spectrum; every other dimension is a "howmany" loop. Strides are in elements of each
    /// side's type (float for the real side, complex for the spectrum), as FFTW wants.
    private static func guruDims(_ realShape: [Int], _ a0: Int, _ a1: Int, realIsInput: Bool)
        -> (dims: [fftwf_iodim], loops: [fftwf_iodim]) {
        let realStrides = Tensor.strides(of: realShape)
        var cShape = realShape
        cShape[a1] = realShape[a1] / 2 + 1
        let cStrides = Tensor.strides(of: cShape)
        func iodim(_ d: Int) -> fftwf_iodim {
            let rs = Int32(realStrides[d]), cs = Int32(cStrides[d])
            return fftwf_iodim(n: Int32(realShape[d]), is: realIsInput ? rs : cs, os: realIsInput ? cs : rs)
        }
        let loops = (0..<realShape.count).filter { $0 != a0 && $0 != a1 }.map(iodim)
        return ([iodim(a0), iodim(a1)], loops)
    }

    /// No FFTW_UNALIGNED: plans for aligned arrays may use SIMD codelets (2× faster on the
    /// trajectory filter's transforms), and PlanKey keeps arrays of other alignments apart.
    nonisolated(unsafe) static var planFlags = UInt32(FFTW_ESTIMATE)  // tests make FFTW refuse plans

    /// Runs a transform over the threads (from 16 Ki points): the longest "howmany" loop is cut
    /// into one chunk per thread, each executed with a plan for its chunk length at offset arrays (a single
    /// batch-1 transform of the trajectory filter was 13% of a streamed frame on one core).
    /// `arrays(i, o)` are the arrays of a chunk whose input and output start `i` and `o`
    /// elements (of each side's type) in; `make` plans and `run` executes on them.
    /// Returns false, running nothing, when FFTW refuses to plan any chunk.
    private static func execute(dims: [fftwf_iodim], loops: [fftwf_iodim], direction: Direction,
                                arrays: (Int, Int) -> [UnsafeMutablePointer<Float>],
                                make: ([fftwf_iodim], [UnsafeMutablePointer<Float>]) -> OpaquePointer?,
                                run: (OpaquePointer, [UnsafeMutablePointer<Float>]) -> Void) -> Bool {
        // Chunks: (loops of the chunk, input offset, output offset).
        var chunks: [([fftwf_iodim], Int, Int)] = [(loops, 0, 0)]
        let total = Int(dims[0].n) * Int(dims[1].n) * loops.reduce(1) { $0 * Int($1.n) }
        let longest = loops.indices.max { loops[$0].n < loops[$1].n }
        let threads = Parallel.threads
        if threads > 1, total >= 1 << 14, let l = longest, loops[l].n >= 2 {
            let n = Int(loops[l].n)
            let chunk = (n + min(threads, n) - 1) / min(threads, n)
            chunks = stride(from: 0, to: n, by: chunk).map { lo in
                var part = loops
                part[l].n = Int32(min(n, lo + chunk) - lo)
                return (part, lo * Int(loops[l].is), lo * Int(loops[l].os))
            }
        }
        // FFTW_ESTIMATE does not touch the arrays while planning, so the real ones can be used.
        let plans = chunks.map { part, i, o in
            let a = arrays(i, o)
            return cache.plan(PlanKey(dims, part, direction, a)) { make(part, a) }
        }
        guard plans.allSatisfy({ $0 != nil }) else { return false }
        Parallel.forEach(chunks.count) { c in run(plans[c]!, arrays(chunks[c].1, chunks[c].2)) }
        return true
    }

    private static func complex(_ p: UnsafeMutablePointer<Float>) -> UnsafeMutablePointer<fftwf_complex> {
        UnsafeMutableRawPointer(p).assumingMemoryBound(to: fftwf_complex.self)
    }

    /// Unnormalised r2c of the real array `input` (shape `realShape`) into `output` (half spectrum).
    static func r2c(_ input: UnsafeMutablePointer<Float>, realShape: [Int], axes: (Int, Int),
                    into output: UnsafeMutablePointer<Float>) {
        guard realShape.reduce(1, *) > 0 else { return }
        let (dims, loops) = guruDims(realShape, axes.0, axes.1, realIsInput: true)
        let done = execute(dims: dims, loops: loops, direction: .r2c, arrays: { i, o in [input + i, output + 2 * o] }, make: { part, a in
            fftwf_plan_guru_dft_r2c(2, dims, Int32(part.count), part, a[0], complex(a[1]), planFlags)
        }, run: { plan, a in fftwf_execute_dft_r2c(plan, a[0], complex(a[1])) })
        if !done {
            var half = realShape
            half[axes.1] = half[axes.1] / 2 + 1
            output.update(repeating: .nan, count: 2 * half.reduce(1, *))
        }
    }

    /// Unnormalised c2r of the half spectrum `input` into the real array `output` (shape
    /// `realShape`). Destroys `input`: pass a scratch copy.
    static func c2r(_ input: UnsafeMutablePointer<Float>, realShape: [Int], axes: (Int, Int),
                    into output: UnsafeMutablePointer<Float>) {
        guard realShape.reduce(1, *) > 0 else { return }
        let (dims, loops) = guruDims(realShape, axes.0, axes.1, realIsInput: false)
        let done = execute(dims: dims, loops: loops, direction: .c2r, arrays: { i, o in [input + 2 * i, output + o] }, make: { part, a in
            fftwf_plan_guru_dft_c2r(2, dims, Int32(part.count), part, complex(a[0]), a[1], planFlags)
        }, run: { plan, a in fftwf_execute_dft_c2r(plan, complex(a[0]), a[1]) })
        if !done { output.update(repeating: .nan, count: realShape.reduce(1, *)) }
    }
}
