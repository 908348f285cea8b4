import Glibc
import CBLAS

/// Convolutions and the fully connected layer as GEMMs on OpenBLAS.
///
/// conv2d is im2col + GEMM: the (C·R·S) × (Ho·Wo) patch matrix of a sample times the
/// K × (C·R·S) weight matrix gives the K × (Ho·Wo) output, already in NCHW order (1×1 stride-1
/// unpadded convolutions use the input itself as the patch matrix). The work is cut into
/// items = (sample, band of output rows) spread over the threads; each thread builds the patch
/// matrix of its item in its own buffer and runs a single-threaded sgemm on it, so the patches
/// are still in cache when the GEMM reads them and no two threads write the same output. When
/// the batch does not split evenly over the threads, every sample is cut into bands so that
/// each thread gets the same number of output rows.
///
/// Backward recomputes the patch matrix (nothing is kept from the forward pass):
/// dW = Σ gOut·colᵀ (one partial per thread, summed at the end), and dx either as
/// dcol = Wᵀ·gOut scattered back by col2im, or — stride 1 with K ≤ C, where it is faster — as
/// the convolution of gOut with the flipped, channel-transposed weights. For col2im, dx of a
/// sample must be owned by one thread (bands of a sample overlap in the input), so whole samples
/// go to the threads, and the samples left over when the batch does not split evenly run with
/// the GEMMs split across the threads and im2col/col2im split over channels.
extension NN {
    /// 2-D convolution (cross-correlation), as `torch.nn.functional.conv2d` with groups 1.
    ///
    /// - x: (N, C, H, W); weight: (K, C, R, S); bias: (K) or nil.
    /// - Output (N, K, Ho, Wo) with Ho = (H + 2·padding − dilation·(R−1) − 1) / stride + 1
    ///   (and likewise Wo). Zero padding.
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor?,
                              stride: Int = 1, padding: Int = 0, dilation: Int = 1) -> Tensor {
        precondition(x.rank == 4, "conv2d: input must be (N, C, H, W), shape is \(x.shape)")
        precondition(weight.rank == 4, "conv2d: weight must be (K, C, R, S), shape is \(weight.shape)")
        precondition(weight.shape[1] == x.shape[1],
                     "conv2d: weight \(weight.shape) expects \(weight.shape[1]) input channels, input \(x.shape) has \(x.shape[1])")
        precondition(stride >= 1 && padding >= 0 && dilation >= 1,
                     "conv2d: stride \(stride) and dilation \(dilation) must be ≥ 1, padding \(padding) ≥ 0")
        precondition(weight.shape.allSatisfy { $0 >= 1 }, "conv2d: empty weight \(weight.shape)")
        if let bias {
            precondition(bias.rank == 1 && bias.count == weight.shape[0],
                         "conv2d: bias must be (\(weight.shape[0])), shape is \(bias.shape)")
        }
        let g = ConvGeometry(x: x.shape, weight: weight.shape, stride: stride, padding: padding, dilation: dilation)
        precondition(g.ho >= 1 && g.wo >= 1,
                     "conv2d: input \(x.shape) is smaller than the dilated kernel \(weight.shape) (padding \(padding), dilation \(dilation))")
        _ = Parallel.blasConfigured
        let out = Tensor(uninitialized: [g.n, g.k, g.ho, g.wo])
        let tag = OpProfile.enabled ? "conv\(g.r)x\(g.s)" + (g.stride > 1 ? "s\(g.stride)" : "") + (g.dil > 1 ? "d\(g.dil)" : "")
            + (OpProfile.shapes ? " \(g.n)x\(g.c)->\(g.k)@\(g.ho)x\(g.wo)" : "") + (g.usesWinograd ? " wino" : "") : ""
        if out.count > 0 { OpProfile.measure(tag + ".fwd") { g.forward(x: x.data, w: weight.data, bias: bias?.data, out: out.data) } }

        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return out.recorded(from: inputs) { [x, weight, bias] gOut in
            let needX = x.needsGrad, needW = weight.needsGrad, needB = bias?.needsGrad ?? false
            let flipped = needX && g.n > 0 && g.prefersFlippedBackward
            let dx = needX ? (g.isPointwise || flipped ? Tensor(uninitialized: x.shape) : Tensor(zeros: x.shape)) : nil
            let dw = needW ? Tensor(uninitialized: weight.shape) : nil
            if g.n == 0 {
                dw?.data.update(repeating: 0, count: dw!.count)
            } else {
                if flipped {
                    OpProfile.measure(tag + ".bwd.dx") { g.inputGradientAsConvolution(w: weight.data, gOut: gOut.data, dx: dx!.data) }
                }
                if needW || (needX && !flipped) {
                    OpProfile.measure(tag + (needX && !flipped ? ".bwd.dx+dw" : ".bwd.dw")) {
                        g.backward(x: x.data, w: weight.data, gOut: gOut.data, dx: flipped ? nil : dx?.data, dw: dw?.data)
                    }
                }
            }
            var grads: [Tensor?] = [dx, dw]
            if bias != nil {
                grads.append(needB ? channelSums(gOut.data, n: g.n, c: g.k, plane: g.p) : nil)
            }
            return grads
        }
    }

    /// ConvTranspose2d with kernel 2, stride 2, no padding and no bias:
    /// out[n, o, 2i+a, 2j+b] = Σ_c x[n, c, i, j] · weight[c, o, a, b].
    ///
    /// - x: (N, Cin, H, W); weight: (Cin, Cout, 2, 2) (PyTorch layout). Output (N, Cout, 2H, 2W).
    public static func convTranspose2x2(_ x: Tensor, weight: Tensor) -> Tensor {
        precondition(x.rank == 4, "convTranspose2x2: input must be (N, C, H, W), shape is \(x.shape)")
        precondition(weight.rank == 4 && weight.shape[2] == 2 && weight.shape[3] == 2,
                     "convTranspose2x2: weight must be (Cin, Cout, 2, 2), shape is \(weight.shape)")
        precondition(weight.shape[0] == x.shape[1],
                     "convTranspose2x2: weight \(weight.shape) expects \(weight.shape[0]) input channels, input \(x.shape) has \(x.shape[1])")
        precondition(weight.shape[0] >= 1 && weight.shape[1] >= 1, "convTranspose2x2: empty weight \(weight.shape)")
        let t = TransposeGeometry(n: x.shape[0], cin: x.shape[1], cout: weight.shape[1], h: x.shape[2], w: x.shape[3])
        _ = Parallel.blasConfigured
        let out = Tensor(uninitialized: [t.n, t.cout, 2 * t.h, 2 * t.w])
        if out.count > 0 { OpProfile.measure("convT2x2.fwd") { t.forward(x: x.data, w: weight.data, out: out.data) } }
        return out.recorded(from: [x, weight]) { [x, weight] gOut in
            let needX = x.needsGrad, needW = weight.needsGrad
            let dx = needX ? Tensor(uninitialized: x.shape) : nil
            let dw = needW ? Tensor(zeros: weight.shape) : nil
            if gOut.count > 0 && (needX || needW) {
                OpProfile.measure("convT2x2.bwd") { t.backward(x: x.data, w: weight.data, gOut: gOut.data, dx: dx?.data, dw: dw?.data) }
            } else if let dx {
                dx.data.update(repeating: 0, count: dx.count)
            }
            return [dx, dw]
        }
    }

    /// Fully connected layer, as `torch.nn.functional.linear`: y = x·weightᵀ + bias over the
    /// last dimension. x: (..., in); weight: (out, in); bias: (out) or nil. Output (..., out).
    public static func linear(_ x: Tensor, weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(x.rank >= 1, "linear: input must have rank ≥ 1, shape is \(x.shape)")
        precondition(weight.rank == 2, "linear: weight must be (out, in), shape is \(weight.shape)")
        let fin = weight.shape[1], fout = weight.shape[0]
        precondition(fin >= 1 && fout >= 1, "linear: empty weight \(weight.shape)")
        precondition(x.shape[x.rank - 1] == fin,
                     "linear: weight \(weight.shape) expects \(fin) input features, input \(x.shape) has \(x.shape[x.rank - 1])")
        if let bias {
            precondition(bias.rank == 1 && bias.count == fout, "linear: bias must be (\(fout)), shape is \(bias.shape)")
        }
        _ = Parallel.blasConfigured
        let rows = x.count / Swift.max(1, fin)
        let outShape = Array(x.shape.dropLast()) + [fout]
        let out = Tensor(uninitialized: outShape)
        if out.count > 0 { OpProfile.measure("linear.fwd") {
            let o = out.data
            if let b = bias?.data {
                for r in 0..<rows { (o + r * fout).update(from: b, count: fout) }
            }
            Gemm.sgemm(transB: true, m: rows, n: fout, k: fin, a: x.data, lda: fin,
                       b: weight.data, ldb: fin, beta: bias == nil ? 0 : 1, c: o, ldc: fout)
        } }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return out.recorded(from: inputs) { [x, weight, bias] gOut in OpProfile.measure("linear.bwd") {
            var dx: Tensor? = nil, dw: Tensor? = nil
            if x.needsGrad {
                let d = Tensor(uninitialized: x.shape)
                Gemm.sgemm(m: rows, n: fin, k: fout, a: gOut.data, lda: fout, b: weight.data, ldb: fin,
                           c: d.data, ldc: fin)
                dx = d
            }
            if weight.needsGrad {
                let d = Tensor(uninitialized: weight.shape)
                Gemm.sgemm(transA: true, m: fout, n: fin, k: rows, a: gOut.data, lda: fout, b: x.data, ldb: fin,
                           c: d.data, ldc: fin)
                dw = d
            }
            var grads: [Tensor?] = [dx, dw]
            if let bias {
                grads.append(bias.needsGrad ? columnSums(gOut.data, rows: rows, cols: fout) : nil)
            }
            return grads
        } }
    }
}

// MARK: - Work splitting

/// How the samples × output rows of a layer are cut into work items for the threads.
///
/// Items are (sample, band of output rows); `Workers.run` gives each thread a contiguous range
/// of them. When the batch splits evenly over the threads every sample is one item; otherwise
/// each sample is cut into the same number of bands, enough that the items split evenly over
/// the threads. Bands are also cut small enough that a band's scratch stays under `cap` floats.
/// (Grouping several samples into one wider GEMM was tried: OpenBLAS runs these shapes as fast
/// with 250 columns as with 2000, and the extra copies made it slower.)
struct Plan {
    let bands: Int       // bands per sample
    let bandRows: Int    // output rows per band (the last may be shorter)
    let items: Int

    /// - rows: output rows of a sample; floatsPerRow: scratch floats per output row.
    init(n: Int, rows: Int, floatsPerRow: Int, threads: Int, cap: Int) {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        let t = Swift.max(1, threads)
        var b = n == 0 ? 1 : t / gcd(n, t)
        let rowsByCap = Swift.max(1, cap / Swift.max(1, floatsPerRow))
        b = Swift.max(b, (rows + rowsByCap - 1) / rowsByCap)
        b = Swift.max(1, Swift.min(b, rows))
        bandRows = (rows + b - 1) / b
        bands = (rows + bandRows - 1) / bandRows
        items = n * bands
    }

    /// Output rows of band `band`.
    func rows(of band: Int, total: Int) -> Range<Int> {
        let lo = band * bandRows
        return lo..<Swift.min(total, lo + bandRows)
    }

    /// Visits the items `range`: body(sample, output rows).
    @inline(__always)
    func forEachItem(_ range: Range<Int>, rows total: Int, _ body: (Int, Range<Int>) -> Void) {
        for item in range { body(item / bands, rows(of: item % bands, total: total)) }
    }
}

/// Runs `body(worker, range)` on contiguous chunks of 0..<n, one chunk per thread
/// (`workers(n)` chunks in all), each with single-threaded BLAS.
enum Workers {
    /// Chunk length and number of (non-empty) chunks for n items.
    static func split(_ n: Int) -> (chunk: Int, count: Int) {
        let t = Swift.max(1, Swift.min(Parallel.threads, n))
        let chunk = Swift.max(1, (n + t - 1) / t)
        return (chunk, Swift.max(1, (n + chunk - 1) / chunk))
    }

    static func count(_ n: Int) -> Int { split(n).count }

    static func run(_ n: Int, _ body: (Int, Range<Int>) -> Void) {
        let (chunk, t) = split(n)
        if t == 1 { if n > 0 { body(0, 0..<n) }; return }
        Parallel.forEach(t) { c in
            let lo = c * chunk, hi = Swift.min(n, lo + chunk)
            if lo < hi { Parallel.withThreads(1) { body(c, lo..<hi) } }
        }
    }
}

/// A 64-byte aligned float scratch buffer (from `BufferPool`), returned by `release`.
struct Scratch {
    let pointer: UnsafeMutablePointer<Float>
    let count: Int
    init(_ count: Int) {
        self.count = Swift.max(1, count)
        pointer = BufferPool.allocate(self.count * MemoryLayout<Float>.stride).bindMemory(to: Float.self, capacity: self.count)
    }
    func release() { BufferPool.release(UnsafeMutableRawPointer(pointer), bytes: count * MemoryLayout<Float>.stride) }
}

@inline(__always)
private func sgemm1(_ ta: Bool, _ tb: Bool, _ m: Int, _ n: Int, _ k: Int,
                    _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
                    _ beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Sums `count` floats.
@inline(__always)
func sumFloats(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= count {
        acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < count { s += p[i]; i += 1 }
    return s
}

/// Σ over n and the plane of (N, C, plane) values, per channel: shape (C).
func channelSums(_ g: UnsafePointer<Float>, n: Int, c: Int, plane: Int) -> Tensor {
    let out = Tensor(zeros: [c])
    let o = out.data
    for s in 0..<n { for ch in 0..<c { o[ch] += sumFloats(g + (s * c + ch) * plane, plane) } }
    return out
}

/// Column sums of a rows × cols matrix: shape (cols).
func columnSums(_ g: UnsafePointer<Float>, rows: Int, cols: Int) -> Tensor {
    let out = Tensor(zeros: [cols])
    let o = out.data
    for r in 0..<rows {
        let row = g + r * cols
        for j in 0..<cols { o[j] += row[j] }
    }
    return out
}

/// Adds partial sums `parts[1...]` into `parts[0]` (count floats each).
private func reduceInto(_ parts: [UnsafeMutablePointer<Float>], count: Int) {
    guard parts.count > 1 else { return }
    let d = parts[0]
    for p in parts.dropFirst() { for i in 0..<count { d[i] += p[i] } }
}

// MARK: - conv2d kernels

struct ConvGeometry {
    let n, c, h, w: Int
    let k, r, s: Int
    let stride, pad, dil: Int
    let ho, wo: Int

    /// Scratch floats per band, at most (the patch matrix of a band of output rows).
    static var bandCap = 1 << 20

    init(x: [Int], weight: [Int], stride: Int, padding: Int, dilation: Int) {
        n = x[0]; c = x[1]; h = x[2]; w = x[3]
        k = weight[0]; r = weight[2]; s = weight[3]
        self.stride = stride; pad = padding; dil = dilation
        ho = (h + 2 * padding - dilation * (r - 1) - 1) / stride + 1
        wo = (w + 2 * padding - dilation * (s - 1) - 1) / stride + 1
    }

    var p: Int { ho * wo }
    var crs: Int { c * r * s }
    /// 1×1, stride 1, no padding: the input plane is the patch matrix.
    var isPointwise: Bool { r == 1 && s == 1 && stride == 1 && pad == 0 }

    /// Valid output columns [lo, hi) for kernel column ks: 0 ≤ ow·stride − pad + ks·dil < w.
    @inline(__always)
    func validColumns(_ ks: Int) -> (off: Int, lo: Int, hi: Int) {
        let off = ks * dil - pad
        let lo = off >= 0 ? 0 : Swift.min(wo, (-off + stride - 1) / stride)
        let last = w - 1 - off
        let hi = last < 0 ? 0 : Swift.min(wo, last / stride + 1)
        return (off, lo, Swift.max(lo, hi))
    }

    /// Output rows v0..<v1 (clamped to `ohs`) whose input row oh·stride + shift, shift = kr·dil − pad,
    /// lies inside the image.
    @inline(__always)
    func validRows(_ kr: Int, _ ohs: Range<Int>) -> (shift: Int, v0: Int, v1: Int) {
        let shift = kr * dil - pad
        let first = shift >= 0 ? 0 : (-shift + stride - 1) / stride
        let last = h - 1 - shift
        let end = last < 0 ? 0 : last / stride + 1
        let v0 = Swift.min(Swift.max(ohs.lowerBound, first), ohs.upperBound)
        return (shift, v0, Swift.max(Swift.min(ohs.upperBound, end), v0))
    }

    /// Runs body with the valid output rows (shift, v0, v1) of every kernel row kr and the valid
    /// output columns (off, lo, hi) of every kernel column ks (no divisions in the loops).
    @inline(__always)
    func withValidRanges<T>(_ ohs: Range<Int>,
                            _ body: (UnsafeMutablePointer<(shift: Int, v0: Int, v1: Int)>,
                                     UnsafeMutablePointer<(off: Int, lo: Int, hi: Int)>) -> T) -> T {
        withUnsafeTemporaryAllocation(of: (shift: Int, v0: Int, v1: Int).self, capacity: r) { rowsBuf in
            withUnsafeTemporaryAllocation(of: (off: Int, lo: Int, hi: Int).self, capacity: s) { colsBuf in
                let rv = rowsBuf.baseAddress!, cv = colsBuf.baseAddress!
                for kr in 0..<r { (rv + kr).initialize(to: validRows(kr, ohs)) }
                for ks in 0..<s { (cv + ks).initialize(to: validColumns(ks)) }
                return body(rv, cv)
            }
        }
    }

    /// Patch matrix rows of channels `chans` (row q = (c·R + kr)·S + ks) for output rows `ohs`
    /// of one sample: col[q·ld + (oh − ohs.lowerBound)·wo + ow] =
    /// x[c, oh·stride − pad + kr·dil, ow·stride − pad + ks·dil] (0 outside the image).
    func im2col(_ xs: UnsafePointer<Float>, ohs: Range<Int>, chans: Range<Int>,
                _ col: UnsafeMutablePointer<Float>, ld: Int) {
        let st = stride, wo = wo, w = w, h = h, r = r, s = s
        let sameWidth = st == 1 && wo == w
        withValidRanges(ohs) { rv, cv in
            for ch in chans {
                let plane = xs + ch * h * w
                for kr in 0..<r {
                    let (shift, v0, v1) = rv[kr]
                    let n = v1 - v0
                    for ks in 0..<s {
                        let (off, lo, hi) = cv[ks]
                        let row = col + ((ch * r + kr) * s + ks) * ld
                        zero(row, (v0 - ohs.lowerBound) * wo)
                        zero(row + (v1 - ohs.lowerBound) * wo, (ohs.upperBound - v1) * wo)
                        if n == 0 { continue }
                        let dst = row + (v0 - ohs.lowerBound) * wo
                        let src = plane + (v0 * st + shift) * w + off
                        if hi <= lo {
                            zero(dst, n * wo)
                        } else if sameWidth {
                            // Rows of the input and of the patch matrix have the same length: one
                            // copy of the whole block, then zeros over the columns outside the image.
                            let end = n * wo - (wo - hi)
                            for j in lo..<end { dst[j] = src[j] }
                            if lo > 0 || hi < wo {
                                for t in 0..<n {
                                    let d = dst + t * wo
                                    for j in 0..<lo { d[j] = 0 }
                                    for j in hi..<wo { d[j] = 0 }
                                }
                            }
                        } else {
                            for t in 0..<n {
                                let d = dst + t * wo, sr = src + t * st * w
                                for j in 0..<lo { d[j] = 0 }
                                if st == 1 {
                                    for j in lo..<hi { d[j] = sr[j] }
                                } else {
                                    gatherStrided(sr, st, d, lo, hi)
                                }
                                for j in hi..<wo { d[j] = 0 }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of im2col: adds the patch matrix rows of channels `chans` back onto the
    /// sample's input. Clobbers the entries of `col` that fall outside the image.
    func col2im(_ col: UnsafeMutablePointer<Float>, ld: Int, ohs: Range<Int>, chans: Range<Int>,
                _ xs: UnsafeMutablePointer<Float>) {
        let st = stride, wo = wo, w = w, h = h, r = r, s = s
        let sameWidth = st == 1 && wo == w
        withValidRanges(ohs) { rv, cv in
            for ch in chans {
                let plane = xs + ch * h * w
                for kr in 0..<r {
                    let (shift, v0, v1) = rv[kr]
                    let n = v1 - v0
                    if n == 0 { continue }
                    for ks in 0..<s {
                        let (off, lo, hi) = cv[ks]
                        if hi <= lo { continue }
                        let src = col + ((ch * r + kr) * s + ks) * ld + (v0 - ohs.lowerBound) * wo
                        let dst = plane + (v0 * st + shift) * w + off
                        if sameWidth {
                            // One pass over the whole block, after zeroing the entries that would
                            // land on the neighbouring row (they belong to no input pixel).
                            if lo > 0 || hi < wo {
                                for t in 0..<n {
                                    let c = src + t * wo
                                    for j in 0..<lo { c[j] = 0 }
                                    for j in hi..<wo { c[j] = 0 }
                                }
                            }
                            let end = n * wo - (wo - hi)
                            for j in lo..<end { dst[j] += src[j] }
                        } else {
                            for t in 0..<n {
                                let c = src + t * wo, d = dst + t * st * w
                                if st == 1 {
                                    for j in lo..<hi { d[j] += c[j] }
                                } else {
                                    scatterAddStrided(c, d, st, lo, hi)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    func forward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 out: UnsafeMutablePointer<Float>) {
        if usesWinograd { winogradForward(x: x, w: wt, bias: bias, out: out); return }
        let p = p, crs = crs, k = k, pointwise = isPointwise
        let plan = Plan(n: n, rows: ho, floatsPerRow: pointwise ? 0 : crs * wo,
                        threads: Parallel.threads, cap: ConvGeometry.bandCap)
        Workers.run(plan.items) { _, items in
            let col = pointwise ? nil : Scratch(crs * plan.bandRows * wo)
            defer { col?.release() }
            plan.forEachItem(items, rows: ho) { sample, ohs in
                let cols = ohs.count * wo, p0 = ohs.lowerBound * wo
                let xs = x + sample * c * h * w
                let o = out + sample * k * p + p0
                if let col {
                    im2col(xs, ohs: ohs, chans: 0..<c, col.pointer, ld: cols)
                    sgemm1(false, false, k, cols, crs, wt, crs, col.pointer, cols, 0, o, p)
                } else {
                    sgemm1(false, false, k, cols, crs, wt, crs, xs + p0, p, 0, o, p)
                }
                if let bias { for ch in 0..<k { addScalar(bias[ch], o + ch * p, cols) } }
            }
        }
    }

    /// With stride 1, dx is itself a convolution: of gOut with the weights flipped in space and
    /// transposed in channels (C, K, R, S), padding dil·(R−1) − pad. Its GEMMs have the inner
    /// dimension K·R·S instead of K and it writes dx once instead of adding R·S patch rows
    /// into it, which pays when K is small next to C.
    /// Measured at the small preset's 3×3 layers: 1.05–1.6× faster for K ≤ C, a wash at K = 2C,
    /// slower for K > 2C (the gOut patch matrix grows with K).
    var prefersFlippedBackward: Bool {
        stride == 1 && r == s && r > 1 && pad <= dil * (r - 1) && k <= ConvGeometry.flipRatio * c
    }
    /// Flip when K ≤ flipRatio · C (tests set 0 and a large value to force either path).
    static var flipRatio = 1

    /// dx (overwritten) from gOut as a convolution (needs stride 1 and r == s).
    func inputGradientAsConvolution(w wt: UnsafePointer<Float>, gOut: UnsafePointer<Float>,
                                    dx: UnsafeMutablePointer<Float>) {
        let flipped = Scratch(c * k * r * s)
        defer { flipped.release() }
        let f = flipped.pointer
        for kk in 0..<k {
            for cc in 0..<c {
                let src = wt + (kk * c + cc) * r * s, dst = f + (cc * k + kk) * r * s
                for q in 0..<r * s { dst[r * s - 1 - q] = src[q] }
            }
        }
        let t = ConvGeometry(x: [n, k, ho, wo], weight: [c, k, r, s], stride: 1,
                             padding: dil * (r - 1) - pad, dilation: dil)
        precondition(t.ho == h && t.wo == w, "internal: flipped convolution gives \(t.ho)×\(t.wo), not \(h)×\(w)")
        t.forward(x: gOut, w: f, bias: nil, out: dx)
    }

    /// dx (zeroed unless pointwise, which overwrites it) and dw (overwritten) from gOut.
    func backward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, gOut: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?) {
        if dx == nil, let dw, usesWinograd { winogradWeightGradient(x: x, gOut: gOut, dw: dw); return }
        let p = p, crs = crs, k = k, pointwise = isPointwise
        let threads = Parallel.threads
        // Whole samples per thread for the largest multiple of the thread count: no two
        // threads then touch the same dx. Bands only to bound the scratch memory.
        let whole = threads <= 1 ? n : (n / threads) * threads
        let plan = Plan(n: 1, rows: ho, floatsPerRow: pointwise ? 0 : crs * wo, threads: 1,
                        cap: ConvGeometry.bandCap)
        let scratch = pointwise ? 0 : crs * plan.bandRows * wo
        var dwReady = false

        if whole > 0 {
            let workers = Workers.count(whole)
            // Worker 0 accumulates into dw itself, the others into partials.
            let partials = dw == nil ? [] : (1..<workers).map { _ in Scratch(k * crs) }
            defer { partials.forEach { $0.release() } }
            Workers.run(whole) { worker, samples in
                let col = pointwise || dw == nil ? nil : Scratch(scratch)
                let dcol = pointwise || dx == nil ? nil : Scratch(scratch)
                defer { col?.release(); dcol?.release() }
                let dwPart = dw.map { worker == 0 ? $0 : partials[worker - 1].pointer }
                var first = true
                for sample in samples {
                    let xs = x + sample * c * h * w
                    let gs = gOut + sample * k * p
                    for band in 0..<plan.bands {
                        let ohs = plan.rows(of: band, total: ho)
                        let cols = ohs.count * wo, p0 = ohs.lowerBound * wo
                        if let dwPart {
                            // dW (k × crs) += gOut (k × cols) · colᵀ
                            if let col {
                                im2col(xs, ohs: ohs, chans: 0..<c, col.pointer, ld: cols)
                                sgemm1(false, true, k, crs, cols, gs + p0, p, col.pointer, cols, first ? 0 : 1, dwPart, crs)
                            } else {
                                sgemm1(false, true, k, crs, cols, gs + p0, p, xs + p0, p, first ? 0 : 1, dwPart, crs)
                            }
                            first = false
                        }
                        if let dx {
                            // dcol (crs × cols) = Wᵀ · gOut, scattered onto dx.
                            let dxs = dx + sample * c * h * w
                            if let dcol {
                                sgemm1(true, false, crs, cols, k, wt, crs, gs + p0, p, 0, dcol.pointer, cols)
                                col2im(dcol.pointer, ld: cols, ohs: ohs, chans: 0..<c, dxs)
                            } else {
                                sgemm1(true, false, crs, cols, k, wt, crs, gs + p0, p, 0, dxs + p0, p)
                            }
                        }
                    }
                }
            }
            if let dw {
                reduceInto([dw] + partials.map(\.pointer), count: k * crs)
                dwReady = true
            }
        }

        // The remaining samples (fewer than the threads): GEMMs split across the threads,
        // im2col and col2im in parallel over channels.
        if whole < n {
            let col = pointwise || dw == nil ? nil : Scratch(scratch)
            let dcol = pointwise || dx == nil ? nil : Scratch(scratch)
            defer { col?.release(); dcol?.release() }
            for sample in whole..<n {
                let xs = x + sample * c * h * w
                let gs = gOut + sample * k * p
                for band in 0..<plan.bands {
                    let ohs = plan.rows(of: band, total: ho)
                    let cols = ohs.count * wo, p0 = ohs.lowerBound * wo
                    if let dw {
                        var b = xs + p0, ldb = p
                        if let col {
                            Parallel.forChunks(c) { chans in
                                im2col(xs, ohs: ohs, chans: chans, col.pointer, ld: cols)
                            }
                            b = UnsafePointer(col.pointer); ldb = cols
                        }
                        Gemm.sgemm(transB: true, m: k, n: crs, k: cols, a: gs + p0, lda: p, b: b, ldb: ldb,
                                   beta: dwReady ? 1 : 0, c: dw, ldc: crs)
                        dwReady = true
                    }
                    if let dx {
                        let dxs = dx + sample * c * h * w
                        if let dcol {
                            Gemm.sgemm(transA: true, m: crs, n: cols, k: k, a: wt, lda: crs, b: gs + p0, ldb: p,
                                       c: dcol.pointer, ldc: cols)
                            Parallel.forChunks(c) { chans in
                                col2im(dcol.pointer, ld: cols, ohs: ohs, chans: chans, dxs)
                            }
                        } else {
                            Gemm.sgemm(transA: true, m: crs, n: cols, k: k, a: wt, lda: crs, b: gs + p0, ldb: p,
                                       c: dxs + p0, ldc: p)
                        }
                    }
                }
            }
        }
    }
}

/// d[j] = s[j·stride] for j in lo..<hi (stride 2 eight at a time; the 16-float loads stop
/// short of s[2·(hi−1)], the last element read, so they never leave the row).
@inline(__always)
func gatherStrided(_ s: UnsafePointer<Float>, _ stride: Int, _ d: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int) {
    var j = lo
    if stride == 2 {
        while j + 9 <= hi {
            let v = UnsafeRawPointer(s + 2 * j).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(d + j).storeBytes(of: v.evenHalf, as: SIMD8<Float>.self)
            j += 8
        }
    }
    while j < hi { d[j] = s[j * stride]; j += 1 }
}

/// d[j·stride] += c[j] for j in lo..<hi (stride 2 eight at a time; the 16-float read-modify-
/// writes stop short of d[2·(hi−1)], so they only touch the row's own elements).
@inline(__always)
func scatterAddStrided(_ c: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>, _ stride: Int, _ lo: Int, _ hi: Int) {
    var j = lo
    if stride == 2 {
        while j + 9 <= hi {
            // d[2j ..< 2j+16]: the 8 targets at even lanes, odd lanes written back unchanged.
            let p = UnsafeMutableRawPointer(d + 2 * j)
            var v = p.loadUnaligned(as: SIMD16<Float>.self)
            v.evenHalf += UnsafeRawPointer(c + j).loadUnaligned(as: SIMD8<Float>.self)
            p.storeBytes(of: v, as: SIMD16<Float>.self)
            j += 8
        }
    }
    while j < hi { d[j * stride] += c[j]; j += 1 }
}

/// p[0..<count] = 0 (a loop: counts here are often tiny).
@inline(__always)
func zero(_ p: UnsafeMutablePointer<Float>, _ count: Int) {
    if count >= 64 { p.update(repeating: 0, count: count) } else { for j in 0..<count { p[j] = 0 } }
}

/// row[0..<count] += value.
@inline(__always)
func addScalar(_ value: Float, _ row: UnsafeMutablePointer<Float>, _ count: Int) {
    for j in 0..<count { row[j] += value }
}

// MARK: - convTranspose2x2 kernels

/// out[n, o, 2i+a, 2j+b] = Σ_c x[n, c, i, j] · w[c, o, a, b] is one GEMM per sample (or band of
/// input rows): y (4·cout × cols) = Wᵀ · x (cin × cols), W viewed as cin × 4·cout, then y is
/// scattered onto the output (row (o, a, b) of y fills every other pixel of output rows 2i + a).
/// Backward gathers gOut into dy the same way: dx = W · dy and dW = x · dyᵀ. Bands of one
/// sample touch disjoint parts of dx, so every item can go to any thread.
struct TransposeGeometry {
    let n, cin, cout, h, w: Int

    /// Scratch floats per band, at most.
    static var bandCap = 1 << 20

    var hw: Int { h * w }
    var co4: Int { cout * 4 }

    /// y (co4 × input rows `rows` of one sample) → output rows 2i, 2i+1 of each channel.
    private func scatter(_ y: UnsafePointer<Float>, rows: Range<Int>, _ os: UnsafeMutablePointer<Float>) {
        let w = w, w2 = 2 * w, ohw = 4 * hw, ld = rows.count * w
        for o in 0..<cout {
            for a in 0..<2 {
                let y0 = y + (o * 4 + a * 2) * ld, y1 = y0 + ld
                for (t, i) in rows.enumerated() {
                    let dst = os + o * ohw + (2 * i + a) * w2
                    let s0 = y0 + t * w, s1 = y1 + t * w
                    for j in 0..<w { dst[2 * j] = s0[j]; dst[2 * j + 1] = s1[j] }
                }
            }
        }
    }

    /// The adjoint of scatter: gathers gOut of one sample into dy (co4 × input rows `rows`).
    private func gather(_ gs: UnsafePointer<Float>, rows: Range<Int>, _ dy: UnsafeMutablePointer<Float>) {
        let w = w, w2 = 2 * w, ohw = 4 * hw, ld = rows.count * w
        for o in 0..<cout {
            for a in 0..<2 {
                let d0 = dy + (o * 4 + a * 2) * ld, d1 = d0 + ld
                for (t, i) in rows.enumerated() {
                    let src = gs + o * ohw + (2 * i + a) * w2
                    let t0 = d0 + t * w, t1 = d1 + t * w
                    for j in 0..<w { t0[j] = src[2 * j]; t1[j] = src[2 * j + 1] }
                }
            }
        }
    }

    func forward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let plan = Plan(n: n, rows: h, floatsPerRow: co4 * w, threads: Parallel.threads,
                        cap: TransposeGeometry.bandCap)
        let hw = hw, co4 = co4
        Workers.run(plan.items) { _, items in
            let y = Scratch(co4 * plan.bandRows * w)
            defer { y.release() }
            plan.forEachItem(items, rows: h) { sample, rows in
                let cols = rows.count * w
                // y = Wᵀ (co4 × cin) · x (cin × cols)
                sgemm1(true, false, co4, cols, cin, wt, co4, x + sample * cin * hw + rows.lowerBound * w, hw,
                       0, y.pointer, cols)
                scatter(y.pointer, rows: rows, out + sample * 4 * cout * hw)
            }
        }
    }

    /// dx (overwritten) and dw (zeroed, accumulated) from gOut.
    func backward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, gOut: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?) {
        let plan = Plan(n: n, rows: h, floatsPerRow: co4 * w, threads: Parallel.threads,
                        cap: TransposeGeometry.bandCap)
        let hw = hw, co4 = co4
        let workers = Workers.count(plan.items)
        let partials = dw == nil ? [] : (1..<workers).map { _ in Scratch(cin * co4) }
        defer { partials.forEach { $0.release() } }
        Workers.run(plan.items) { worker, items in
            let dy = Scratch(co4 * plan.bandRows * w)
            defer { dy.release() }
            let dwPart = dw.map { worker == 0 ? $0 : partials[worker - 1].pointer }
            var first = worker != 0  // dw itself arrives zeroed
            plan.forEachItem(items, rows: h) { sample, rows in
                let cols = rows.count * w, p0 = rows.lowerBound * w
                gather(gOut + sample * 4 * cout * hw, rows: rows, dy.pointer)
                if let dx {
                    // dx = W (cin × co4) · dy (co4 × cols)
                    sgemm1(false, false, cin, cols, co4, wt, co4, dy.pointer, cols, 0, dx + sample * cin * hw + p0, hw)
                }
                if let dwPart {
                    // dW (cin × co4) += x (cin × cols) · dyᵀ
                    sgemm1(false, true, cin, co4, cols, x + sample * cin * hw + p0, hw, dy.pointer, cols,
                           first ? 0 : 1, dwPart, co4)
                    first = false
                }
            }
        }
        if let dw { reduceInto([dw] + partials.map(\.pointer), count: cin * co4) }
    }
}
