import Glibc

/// Differentiable helpers on complex tensors: real tensors whose last dimension is 2
/// (real, imaginary). Gradients treat a complex number as two independent reals, so the
/// gradient of a complex tensor is again (∂L/∂Re, ∂L/∂Im) in the same layout.
public enum Complex {
    /// Elements per chunk below which the transcendental loops (hypot, atan2, sin/cos) stay on
    /// one thread: smaller than the element-wise grain, as each element costs ~20 ns.
    static let grain = 1 << 12

    /// |z| = √(re² + im²); shape of z without the trailing 2. Gradient 0 at z = 0 (as torch).
    public static func abs(_ z: Tensor) -> Tensor {
        let n = pairs(z, "abs")
        let out = Tensor(uninitialized: Array(z.shape.dropLast()))
        let zi = z.data, o = out.data
        Parallel.forChunks(n, minChunk: Complex.grain) { r in for i in r { o[i] = hypotf(zi[2 * i], zi[2 * i + 1]) } }
        return out.recorded(from: [z]) { [unowned out] g in
            let dz = Tensor(uninitialized: z.shape)
            let d = dz.data, gi = g.data, zi = z.data, m = out.data
            for i in 0..<n {
                let k: Float = m[i] > 0 ? gi[i] / m[i] : 0
                d[2 * i] = k * zi[2 * i]
                d[2 * i + 1] = k * zi[2 * i + 1]
            }
            return [dz]
        }
    }

    /// arg z = atan2(im, re) in (−π, π]; gradient (−im, re)/|z|², 0 at z = 0.
    public static func angle(_ z: Tensor) -> Tensor {
        let n = pairs(z, "angle")
        let out = Tensor(uninitialized: Array(z.shape.dropLast()))
        let zi = z.data, o = out.data
        Parallel.forChunks(n, minChunk: Complex.grain) { r in for i in r { o[i] = atan2f(zi[2 * i + 1], zi[2 * i]) } }
        return out.recorded(from: [z]) { g in
            let dz = Tensor(uninitialized: z.shape)
            let d = dz.data, gi = g.data, zi = z.data
            for i in 0..<n {
                let re = zi[2 * i], im = zi[2 * i + 1]
                let m2 = re * re + im * im
                let k: Float = m2 > 0 ? gi[i] / m2 : 0
                d[2 * i] = -k * im
                d[2 * i + 1] = k * re
            }
            return [dz]
        }
    }

    /// m·cos p + i·m·sin p, for real tensors m and p of equal shape; output adds a trailing 2.
    public static func polar(magnitude m: Tensor, phase p: Tensor) -> Tensor {
        precondition(m.shape == p.shape, "polar: magnitude \(m.shape) and phase \(p.shape) differ")
        let n = m.count
        let out = Tensor(uninitialized: m.shape + [2])
        let mi = m.data, pi = p.data, o = out.data
        Parallel.forChunks(n, minChunk: Complex.grain) { r in
            for i in r {
                o[2 * i] = mi[i] * cosf(pi[i])
                o[2 * i + 1] = mi[i] * sinf(pi[i])
            }
        }
        return out.recorded(from: [m, p]) { [unowned out] g in
            let gi = g.data, pi = p.data, o = out.data
            var dm: Tensor? = nil, dp: Tensor? = nil
            if m.needsGrad {
                let t = Tensor(uninitialized: m.shape), d = t.data
                for i in 0..<n { d[i] = gi[2 * i] * cosf(pi[i]) + gi[2 * i + 1] * sinf(pi[i]) }
                dm = t
            }
            if p.needsGrad {
                // d(re)/dp = −m sin p = −im, d(im)/dp = m cos p = re.
                let t = Tensor(uninitialized: p.shape), d = t.data
                for i in 0..<n { d[i] = -gi[2 * i] * o[2 * i + 1] + gi[2 * i + 1] * o[2 * i] }
                dp = t
            }
            return [dm, dp]
        }
    }

    /// re + i·im from two real tensors of equal shape.
    public static func make(real re: Tensor, imag im: Tensor) -> Tensor {
        precondition(re.shape == im.shape, "make: real \(re.shape) and imaginary \(im.shape) differ")
        let n = re.count
        let out = Tensor(uninitialized: re.shape + [2])
        let r = re.data, m = im.data, o = out.data
        for i in 0..<n { o[2 * i] = r[i]; o[2 * i + 1] = m[i] }
        return out.recorded(from: [re, im]) { g in
            [re.needsGrad ? part(g, 0, n, re.shape) : nil, im.needsGrad ? part(g, 1, n, im.shape) : nil]
        }
    }

    /// Real part (shape without the trailing 2).
    public static func real(_ z: Tensor) -> Tensor { component(z, 0) }

    /// Imaginary part (shape without the trailing 2).
    public static func imag(_ z: Tensor) -> Tensor { component(z, 1) }

    /// Element-wise complex product of two complex tensors of equal shape.
    public static func multiply(_ a: Tensor, _ b: Tensor) -> Tensor {
        precondition(a.shape == b.shape, "multiply: \(a.shape) and \(b.shape) differ")
        let n = pairs(a, "multiply")
        let out = Tensor(uninitialized: a.shape)
        mul(a.data, b.data, conjugateSecond: false, n, into: out.data)
        return out.recorded(from: [a, b]) { g in
            // L = Re Σ conj(G)·(a·b) as a real-linear form, so ∂L/∂a = G·conj(b), ∂L/∂b = G·conj(a).
            var da: Tensor? = nil, db: Tensor? = nil
            if a.needsGrad { da = Tensor(uninitialized: a.shape); mul(g.data, b.data, conjugateSecond: true, n, into: da!.data) }
            if b.needsGrad { db = Tensor(uninitialized: b.shape); mul(g.data, a.data, conjugateSecond: true, n, into: db!.data) }
            return [da, db]
        }
    }

    /// K[b, p, q, m] = Σ_n r[b, n, m] · w[p, q, n] for real routing r (B, N, M) and complex
    /// weights w (P, Q, N, 2); K is complex (B, P, Q, M, 2). (DFFormer's dynamic filter, spec §2.5.)
    ///
    /// N is tiny (4), so every pass is bound by streaming K (or its gradient) through memory:
    /// plain loops over m, split over P·Q across threads, beat sgemm here (measured ~2×, as the
    /// GEMM form needs a zero-padded r ⊗ I₂ to keep re and im apart).
    public static func weightedBases(routing r: Tensor, weights w: Tensor) -> Tensor {
        precondition(r.rank == 3, "weightedBases: routing must be (B, N, M), got \(r.shape)")
        precondition(w.rank == 4 && w.shape[3] == 2 && w.shape[2] == r.shape[1],
                     "weightedBases: weights must be (P, Q, N, 2) with N = \(r.shape[1]), got \(w.shape)")
        let (bN, nN, mN) = (r.shape[0], r.shape[1], r.shape[2])
        let pq = w.shape[0] * w.shape[1]
        let out = Tensor(zeros: [bN, w.shape[0], w.shape[1], mN, 2])
        let o = out.data, rs = r.data, ws = w.data
        Parallel.forChunks(pq, minChunk: 16) { range in
            for b in 0..<bN {
                for p in range {
                    let ob = o + (b * pq + p) * 2 * mN
                    for n in 0..<nN {
                        let wr = ws[(p * nN + n) * 2], wi = ws[(p * nN + n) * 2 + 1]
                        let rb = rs + (b * nN + n) * mN
                        for m in 0..<mN { ob[2 * m] += rb[m] * wr; ob[2 * m + 1] += rb[m] * wi }
                    }
                }
            }
        }
        return out.recorded(from: [r, w]) { g in
            // dw[p, n, c] = Σ_{b, m} g[b, p, m, c] · r[b, n, m]  (rows of dw are disjoint per chunk);
            // dr[b, n, m] = Σ_{p, c} g[b, p, m, c] · w[p, n, c]  (a sum over p: one partial per chunk).
            // One pass over g computes both.
            let dw = Tensor(zeros: w.shape)
            let chunks = max(1, min(Parallel.threads, pq / 64))
            let partials = (0..<chunks).map { _ in Tensor(zeros: r.shape) }
            let gs = g.data, rs = r.data, ws = w.data, dws = dw.data
            let per = (pq + chunks - 1) / chunks
            Parallel.forEach(chunks) { c in
                let drs = partials[c].data
                for p in (c * per)..<min(pq, (c + 1) * per) {
                    for b in 0..<bN {
                        let gb = gs + (b * pq + p) * 2 * mN
                        for n in 0..<nN {
                            let wr = ws[(p * nN + n) * 2], wi = ws[(p * nN + n) * 2 + 1]
                            let rb = rs + (b * nN + n) * mN, db = drs + (b * nN + n) * mN
                            var sr: Float = 0, si: Float = 0
                            for m in 0..<mN {
                                let gr = gb[2 * m], gi = gb[2 * m + 1]
                                sr += gr * rb[m]; si += gi * rb[m]
                                db[m] += wr * gr + wi * gi
                            }
                            dws[(p * nN + n) * 2] += sr
                            dws[(p * nN + n) * 2 + 1] += si
                        }
                    }
                }
            }
            let dr = partials[0]
            for t in partials.dropFirst() { dr.addInPlace(t) }
            return [r.needsGrad ? dr : nil, w.needsGrad ? dw : nil]
        }
    }

    // MARK: - Helpers

    /// Checks that z is complex and returns the number of complex elements.
    private static func pairs(_ z: Tensor, _ op: String) -> Int {
        precondition(z.rank >= 1 && z.shape[z.rank - 1] == 2, "Complex.\(op): \(z.shape) has no trailing dimension 2")
        return z.count / 2
    }

    /// o = x · y (or x · conj(y)) over n complex pairs.
    private static func mul(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                            conjugateSecond: Bool, _ n: Int, into o: UnsafeMutablePointer<Float>) {
        let s: Float = conjugateSecond ? -1 : 1
        for i in 0..<n {
            let xr = x[2 * i], xi = x[2 * i + 1], yr = y[2 * i], yi = s * y[2 * i + 1]
            o[2 * i] = xr * yr - xi * yi
            o[2 * i + 1] = xr * yi + xi * yr
        }
    }

    /// Component c (0 = re, 1 = im) of a complex tensor, differentiable.
    private static func component(_ z: Tensor, _ c: Int) -> Tensor {
        let n = pairs(z, c == 0 ? "real" : "imag")
        let out = part(z, c, n, Array(z.shape.dropLast()))
        return out.recorded(from: [z]) { g in
            let dz = Tensor(zeros: z.shape)
            let d = dz.data, gi = g.data
            for i in 0..<n { d[2 * i + c] = gi[i] }
            return [dz]
        }
    }

    /// Component c of n complex pairs, as a new (unrecorded) tensor of `shape`.
    private static func part(_ z: Tensor, _ c: Int, _ n: Int, _ shape: [Int]) -> Tensor {
        let out = Tensor(uninitialized: shape)
        let o = out.data, s = z.data
        for i in 0..<n { o[i] = s[2 * i + c] }
        return out
    }
}
