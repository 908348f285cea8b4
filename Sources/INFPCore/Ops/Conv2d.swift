import Glibc
import CBLAS

/// Convolutions and the fully connected layer as GEMMs on OpenBLAS.
///
/// conv2d is im2col + GEMM: the (C·R·S) × (Ho·Wo) patch matrix of a sample times the
/// K × (C·R·S) weight matrix gives the K × (Ho·Wo) output, already in NCHW order. The work is
/// cut into items = (sample, band of output rows) and the items are spread over the threads;
/// each thread builds the patch matrix of its band in its own buffer and runs a single-threaded
/// sgemm on it, so the patches are still in cache when the GEMM reads them and no two threads
/// ever write the same output. When the batch does not split evenly over the threads, each
/// sample is cut into bands so that every thread gets the same number of output rows.
/// The backward pass recomputes the patch matrix (nothing is kept from the forward pass):
/// dW = Σ gOut·colᵀ (one partial per thread, summed at the end) and dcol = Wᵀ·gOut, scattered
/// back onto dx by col2im. dx of one sample is then owned by one thread (bands of one sample
/// overlap in the input), so whole samples go to threads and the samples left over when the
/// batch does not split evenly run with the GEMM split across the threads instead.
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
        if out.count > 0 { g.forward(x: x.data, w: weight.data, bias: bias?.data, out: out.data) }

        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return out.recorded(from: inputs) { [x, weight, bias] gOut in
            let needX = x.needsGrad, needW = weight.needsGrad, needB = bias?.needsGrad ?? false
            let dx = needX ? (g.isPointwise ? Tensor(uninitialized: x.shape) : Tensor(zeros: x.shape)) : nil
            let dw = needW ? Tensor(uninitialized: weight.shape) : nil
            if g.n == 0 {
                dw?.data.update(repeating: 0, count: dw!.count)
            } else if needX || needW {
                g.backward(x: x.data, w: weight.data, gOut: gOut.data, dx: dx?.data, dw: dw?.data)
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
        if out.count > 0 { t.forward(x: x.data, w: weight.data, out: out.data) }
        return out.recorded(from: [x, weight]) { [x, weight] gOut in
            let needX = x.needsGrad, needW = weight.needsGrad
            let dx = needX ? Tensor(uninitialized: x.shape) : nil
            let dw = needW ? Tensor(zeros: weight.shape) : nil
            if gOut.count > 0 && (needX || needW) {
                t.backward(x: x.data, w: weight.data, gOut: gOut.data, dx: dx?.data, dw: dw?.data)
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
        if out.count > 0 {
            let o = out.data
            if let b = bias?.data {
                for r in 0..<rows { (o + r * fout).update(from: b, count: fout) }
            }
            Gemm.sgemm(transB: true, m: rows, n: fout, k: fin, a: x.data, lda: fin,
                       b: weight.data, ldb: fin, beta: bias == nil ? 0 : 1, c: o, ldc: fout)
        }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return out.recorded(from: inputs) { [x, weight, bias] gOut in
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
        }
    }
}

// MARK: - Work splitting

/// How the samples × output rows of a layer are cut into work items for the threads.
///
/// Items are (sample, band of output rows); `run` gives each thread a contiguous range of them.
/// When the batch splits evenly over the threads every sample is one item (one band), and a
/// thread runs its samples `group` at a time as one wider GEMM (GEMMs a few hundred columns
/// wide run well below the speed of wide ones). Otherwise each sample is cut into the same
/// number of bands, enough that the items split evenly over the threads. Bands are also cut
/// (and groups kept) small enough that one GEMM's scratch stays under `cap` floats.
struct Plan {
    let bands: Int       // bands per sample
    let bandRows: Int    // output rows per band (the last may be shorter)
    let group: Int       // samples per GEMM (1 when bands > 1)
    let items: Int

    /// Columns a grouped GEMM aims at.
    static var targetColumns = getenv("INFP_CONV_COLS").flatMap { Int(String(cString: $0)) } ?? 1024 // TUNING

    /// - rows, rowWidth: output rows of a sample and GEMM columns per row;
    /// - floatsPerColumn: scratch floats per GEMM column.
    init(n: Int, rows: Int, rowWidth: Int, floatsPerColumn: Int, threads: Int, cap: Int) {
        func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
        let t = Swift.max(1, threads)
        var b = n == 0 ? 1 : t / gcd(n, t)
        let rowsByCap = Swift.max(1, cap / Swift.max(1, floatsPerColumn * rowWidth))
        b = Swift.max(b, (rows + rowsByCap - 1) / rowsByCap)
        b = Swift.max(1, Swift.min(b, rows))
        bandRows = (rows + b - 1) / b
        bands = (rows + bandRows - 1) / bandRows
        items = n * bands
        if bands == 1 && n > 0 {
            let perThread = (n + Swift.min(t, n) - 1) / Swift.min(t, n)
            let cols = rows * rowWidth
            let byCap = Swift.max(1, cap / Swift.max(1, floatsPerColumn * cols))
            group = Swift.max(1, Swift.min(perThread, byCap, Plan.targetColumns / Swift.max(1, cols)))
        } else {
            group = 1
        }
    }

    /// Output rows of band `band`.
    func rows(of band: Int, total: Int) -> Range<Int> {
        let lo = band * bandRows
        return lo..<Swift.min(total, lo + bandRows)
    }

    /// Visits the items `range` as GEMM blocks: body(first sample, sample count, output rows).
    func forEachBlock(_ range: Range<Int>, rows total: Int, _ body: (Int, Int, Range<Int>) -> Void) {
        if bands > 1 {
            for item in range { body(item / bands, 1, rows(of: item % bands, total: total)) }
        } else {
            var s = range.lowerBound
            while s < range.upperBound {
                let count = Swift.min(group, range.upperBound - s)
                body(s, count, 0..<total)
                s += count
            }
        }
    }
}

/// Copies `rows` rows of `count` floats between matrices of leading dimensions `lds`, `ldd`.
@inline(__always)
func copyRows(_ src: UnsafePointer<Float>, lds: Int, _ dst: UnsafeMutablePointer<Float>, ldd: Int,
              rows: Int, count: Int) {
    for r in 0..<rows { (dst + r * ldd).update(from: src + r * lds, count: count) }
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

/// A 64-byte aligned float scratch buffer, freed by `release`.
struct Scratch {
    let pointer: UnsafeMutablePointer<Float>
    init(_ count: Int) {
        var raw: UnsafeMutableRawPointer? = nil
        let bytes = Swift.max(1, count) * MemoryLayout<Float>.stride
        if posix_memalign(&raw, 64, bytes) != 0 || raw == nil { fatalError("infp: out of memory allocating \(bytes) bytes") }
        pointer = raw!.bindMemory(to: Float.self, capacity: Swift.max(1, count))
    }
    func release() { free(pointer) }
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
    static var bandCap = getenv("INFP_CONV_BANDCAP").flatMap { Int(String(cString: $0)) } ?? (1 << 20) // TUNING

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

    /// Patch matrix rows `rows` (row = (c·R + kr)·S + ks) for output rows `ohs` of one sample:
    /// col[row·ld + (oh − ohs.lowerBound)·wo + ow] = x[c, oh·stride − pad + kr·dil, ow·stride − pad + ks·dil].
    func im2col(_ xs: UnsafePointer<Float>, ohs: Range<Int>, rows: Range<Int>,
                _ col: UnsafeMutablePointer<Float>, ld: Int) {
        let rs = r * s, st = stride, wo = wo, w = w, h = h
        for q in rows {
            let ch = q / rs, kr = (q % rs) / s, ks = q % s
            let plane = xs + ch * h * w
            let (off, lo, hi) = validColumns(ks)
            var dst = col + q * ld
            for oh in ohs {
                let ih = oh * st - pad + kr * dil
                if ih < 0 || ih >= h {
                    dst.update(repeating: 0, count: wo)
                } else {
                    for ow in 0..<lo { dst[ow] = 0 }
                    let src = plane + ih * w + off
                    if st == 1 {
                        for ow in lo..<hi { dst[ow] = src[ow] }
                    } else {
                        for ow in lo..<hi { dst[ow] = src[ow * st] }
                    }
                    for ow in hi..<wo { dst[ow] = 0 }
                }
                dst += wo
            }
        }
    }

    /// The adjoint of im2col: adds patch matrix rows `rows` back onto the sample's input.
    func col2im(_ col: UnsafePointer<Float>, ld: Int, ohs: Range<Int>, rows: Range<Int>,
                _ xs: UnsafeMutablePointer<Float>) {
        let rs = r * s, st = stride, wo = wo, w = w, h = h
        for q in rows {
            let ch = q / rs, kr = (q % rs) / s, ks = q % s
            let plane = xs + ch * h * w
            let (off, lo, hi) = validColumns(ks)
            var src = col + q * ld
            for oh in ohs {
                let ih = oh * st - pad + kr * dil
                if ih >= 0 && ih < h {
                    let dst = plane + ih * w + off
                    if st == 1 {
                        for ow in lo..<hi { dst[ow] += src[ow] }
                    } else {
                        for ow in lo..<hi { dst[ow * st] += src[ow] }
                    }
                }
                src += wo
            }
        }
    }

    /// The patch matrix of `count` whole samples from `first` (or of a band `ohs` of one
    /// sample), side by side: sample j at columns j·|ohs|·wo, leading dimension ld.
    /// For pointwise convolutions this is a copy of the input planes.
    private func patches(_ x: UnsafePointer<Float>, first: Int, count: Int, ohs: Range<Int>,
                         _ col: UnsafeMutablePointer<Float>, ld: Int) {
        let span = ohs.count * wo
        for j in 0..<count {
            let xs = x + (first + j) * c * h * w
            if isPointwise {
                copyRows(xs + ohs.lowerBound * wo, lds: p, col + j * span, ldd: ld, rows: c, count: span)
            } else {
                im2col(xs, ohs: ohs, rows: 0..<crs, col + j * span, ld: ld)
            }
        }
    }

    func forward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 out: UnsafeMutablePointer<Float>) {
        let p = p, crs = crs, k = k, pointwise = isPointwise
        let plan = Plan(n: n, rows: ho, rowWidth: wo, floatsPerColumn: crs + (k > 0 ? k : 0),
                        threads: Parallel.threads, cap: ConvGeometry.bandCap)
        let maxCols = plan.group * plan.bandRows * wo
        Workers.run(plan.items) { _, items in
            let col = pointwise && plan.group == 1 ? nil : Scratch(crs * maxCols)
            let tmp = plan.group > 1 ? Scratch(k * maxCols) : nil
            defer { col?.release(); tmp?.release() }
            plan.forEachBlock(items, rows: ho) { first, count, ohs in
                let cols = count * ohs.count * wo
                let o = out + first * k * p + ohs.lowerBound * wo
                // B: the patch matrix (crs × cols), or the input itself for one pointwise sample.
                var b = x + first * c * h * w + ohs.lowerBound * wo, ldb = p
                if let col, !(pointwise && count == 1) {
                    patches(x, first: first, count: count, ohs: ohs, col.pointer, ld: cols)
                    b = UnsafePointer(col.pointer); ldb = cols
                }
                if count == 1 {
                    sgemm1(false, false, k, cols, crs, wt, crs, b, ldb, 0, o, p)
                    if let bias { for ch in 0..<k { addScalar(bias[ch], o + ch * p, cols) } }
                } else {
                    sgemm1(false, false, k, cols, crs, wt, crs, b, ldb, 0, tmp!.pointer, cols)
                    for j in 0..<count {
                        let oj = o + j * k * p
                        copyRows(tmp!.pointer + j * p, lds: cols, oj, ldd: p, rows: k, count: p)
                        if let bias { for ch in 0..<k { addScalar(bias[ch], oj + ch * p, p) } }
                    }
                }
            }
        }
    }

    /// dx (zeroed unless pointwise, which overwrites it) and dw (overwritten) from gOut.
    func backward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, gOut: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?) {
        let p = p, crs = crs, k = k, pointwise = isPointwise
        let threads = Parallel.threads
        // Whole samples per thread for the largest multiple of the thread count: no two
        // threads then touch the same dx.
        let whole = threads <= 1 ? n : (n / threads) * threads
        var dwReady = false

        if whole > 0 {
            let plan = Plan(n: whole, rows: ho, rowWidth: wo, floatsPerColumn: 2 * crs + k,
                            threads: threads, cap: ConvGeometry.bandCap)
            let maxCols = plan.group * plan.bandRows * wo
            let direct = pointwise && plan.group == 1
            let workers = Workers.count(plan.items)
            // Worker 0 accumulates into dw itself, the others into partials.
            let partials = dw == nil ? [] : (1..<workers).map { _ in Scratch(k * crs) }
            defer { partials.forEach { $0.release() } }
            Workers.run(plan.items) { worker, items in
                let col = direct || dw == nil ? nil : Scratch(crs * maxCols)
                let dcol = direct || dx == nil ? nil : Scratch(crs * maxCols)
                let gbuf = plan.group > 1 ? Scratch(k * maxCols) : nil
                defer { col?.release(); dcol?.release(); gbuf?.release() }
                let dwPart = dw.map { worker == 0 ? $0 : partials[worker - 1].pointer }
                var first = true
                plan.forEachBlock(items, rows: ho) { s0, count, ohs in
                    let span = ohs.count * wo, cols = count * span, p0 = ohs.lowerBound * wo
                    // gOut block (k × cols).
                    var ga = gOut + s0 * k * p + p0, lda = p
                    if count > 1 {
                        for j in 0..<count {
                            copyRows(gOut + (s0 + j) * k * p, lds: p, gbuf!.pointer + j * p, ldd: cols, rows: k, count: p)
                        }
                        ga = UnsafePointer(gbuf!.pointer); lda = cols
                    }
                    if let dwPart {
                        var b = x + s0 * c * h * w + p0, ldb = p
                        if let col, !(pointwise && count == 1) {
                            patches(x, first: s0, count: count, ohs: ohs, col.pointer, ld: cols)
                            b = UnsafePointer(col.pointer); ldb = cols
                        }
                        sgemm1(false, true, k, crs, cols, ga, lda, b, ldb, first ? 0 : 1, dwPart, crs)
                        first = false
                    }
                    if let dx {
                        if pointwise && count == 1 {
                            sgemm1(true, false, crs, cols, k, wt, crs, ga, lda, 0, dx + s0 * c * h * w + p0, p)
                        } else {
                            let d = dcol!.pointer
                            sgemm1(true, false, crs, cols, k, wt, crs, ga, lda, 0, d, cols)
                            for j in 0..<count {
                                let dxs = dx + (s0 + j) * c * h * w
                                if pointwise {
                                    copyRows(d + j * span, lds: cols, dxs + p0, ldd: p, rows: c, count: span)
                                } else {
                                    col2im(d + j * span, ld: cols, ohs: ohs, rows: 0..<crs, dxs)
                                }
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
        // im2col and col2im in parallel over patch rows and channels.
        if whole < n {
            let plan = Plan(n: 1, rows: ho, rowWidth: wo, floatsPerColumn: crs, threads: 1,
                            cap: ConvGeometry.bandCap)
            let scratch = pointwise ? 0 : crs * plan.bandRows * wo
            let col = pointwise || dw == nil ? nil : Scratch(scratch)
            let dcol = pointwise || dx == nil ? nil : Scratch(scratch)
            defer { col?.release(); dcol?.release() }
            let rs = r * s
            for sample in whole..<n {
                let xs = x + sample * c * h * w
                let gs = gOut + sample * k * p
                for band in 0..<plan.bands {
                    let ohs = plan.rows(of: band, total: ho)
                    let cols = ohs.count * wo, p0 = ohs.lowerBound * wo
                    if let dw {
                        var b = xs + p0, ldb = p
                        if let col {
                            Parallel.forChunks(crs, minChunk: 4) { rows in
                                im2col(xs, ohs: ohs, rows: rows, col.pointer, ld: cols)
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
                                col2im(dcol.pointer, ld: cols, ohs: ohs,
                                       rows: chans.lowerBound * rs..<chans.upperBound * rs, dxs)
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

/// row[0..<count] += value.
@inline(__always)
func addScalar(_ value: Float, _ row: UnsafeMutablePointer<Float>, _ count: Int) {
    for j in 0..<count { row[j] += value }
}

// MARK: - convTranspose2x2 kernels

/// out[n, o, 2i+a, 2j+b] = Σ_c x[n, c, i, j] · w[c, o, a, b] is one GEMM per block of samples:
/// y (4·cout × cols) = Wᵀ · x (cin × cols), W viewed as cin × 4·cout, then y is scattered
/// onto the output (row (o, a, b) of y fills every other pixel of output rows 2i + a).
/// Backward gathers gOut into dy the same way: dx = W · dy and dW = x · dyᵀ.
struct TransposeGeometry {
    let n, cin, cout, h, w: Int

    /// Scratch floats per GEMM, at most.
    static var bandCap = 1 << 20

    var hw: Int { h * w }
    var co4: Int { cout * 4 }

    /// y (co4 × rows of one sample, leading dimension ld) → output rows 2i, 2i+1 of each channel.
    private func scatter(_ y: UnsafePointer<Float>, ld: Int, rows: Range<Int>, _ os: UnsafeMutablePointer<Float>) {
        let w = w, w2 = 2 * w, ohw = 4 * hw
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

    /// The adjoint of scatter: gathers gOut of one sample into dy (co4 × rows, leading dimension ld).
    private func gather(_ gs: UnsafePointer<Float>, rows: Range<Int>, _ dy: UnsafeMutablePointer<Float>, ld: Int) {
        let w = w, w2 = 2 * w, ohw = 4 * hw
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

    /// x of `count` samples from `first`, rows `rows`, as one cin × cols matrix: a pointer into x
    /// itself for one sample, else a copy in `buf`.
    private func inputBlock(_ x: UnsafePointer<Float>, first: Int, count: Int, rows: Range<Int>,
                            _ buf: UnsafeMutablePointer<Float>?) -> (UnsafePointer<Float>, Int) {
        let p0 = rows.lowerBound * w
        if count == 1 { return (x + first * cin * hw + p0, hw) }
        let cols = count * hw
        for j in 0..<count { copyRows(x + (first + j) * cin * hw, lds: hw, buf! + j * hw, ldd: cols, rows: cin, count: hw) }
        return (UnsafePointer(buf!), cols)
    }

    func forward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        let plan = Plan(n: n, rows: h, rowWidth: w, floatsPerColumn: co4 + cin, threads: Parallel.threads,
                        cap: TransposeGeometry.bandCap)
        let hw = hw, co4 = co4, maxCols = plan.group * plan.bandRows * w
        Workers.run(plan.items) { _, items in
            let y = Scratch(co4 * maxCols)
            let xbuf = plan.group > 1 ? Scratch(cin * maxCols) : nil
            defer { y.release(); xbuf?.release() }
            plan.forEachBlock(items, rows: h) { first, count, rows in
                let span = rows.count * w, cols = count * span
                let (b, ldb) = inputBlock(x, first: first, count: count, rows: rows, xbuf?.pointer)
                sgemm1(true, false, co4, cols, cin, wt, co4, b, ldb, 0, y.pointer, cols)
                for j in 0..<count {
                    scatter(y.pointer + j * span, ld: cols, rows: rows, out + (first + j) * 4 * cout * hw)
                }
            }
        }
    }

    /// dx (overwritten) and dw (zeroed, accumulated) from gOut.
    func backward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, gOut: UnsafePointer<Float>,
                  dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?) {
        let plan = Plan(n: n, rows: h, rowWidth: w, floatsPerColumn: co4 + 2 * cin, threads: Parallel.threads,
                        cap: TransposeGeometry.bandCap)
        let hw = hw, co4 = co4, maxCols = plan.group * plan.bandRows * w
        let workers = Workers.count(plan.items)
        let partials = dw == nil ? [] : (1..<workers).map { _ in Scratch(cin * co4) }
        defer { partials.forEach { $0.release() } }
        Workers.run(plan.items) { worker, items in
            let dy = Scratch(co4 * maxCols)
            let xbuf = plan.group > 1 && dw != nil ? Scratch(cin * maxCols) : nil
            let dxbuf = plan.group > 1 && dx != nil ? Scratch(cin * maxCols) : nil
            defer { dy.release(); xbuf?.release(); dxbuf?.release() }
            let dwPart = dw.map { worker == 0 ? $0 : partials[worker - 1].pointer }
            var first = worker != 0  // dw itself arrives zeroed
            plan.forEachBlock(items, rows: h) { s0, count, rows in
                let span = rows.count * w, cols = count * span, p0 = rows.lowerBound * w
                for j in 0..<count {
                    gather(gOut + (s0 + j) * 4 * cout * hw, rows: rows, dy.pointer + j * span, ld: cols)
                }
                if let dx {
                    // dx = W (cin × co4) · dy (co4 × cols)
                    if count == 1 {
                        sgemm1(false, false, cin, cols, co4, wt, co4, dy.pointer, cols, 0, dx + s0 * cin * hw + p0, hw)
                    } else {
                        sgemm1(false, false, cin, cols, co4, wt, co4, dy.pointer, cols, 0, dxbuf!.pointer, cols)
                        for j in 0..<count {
                            copyRows(dxbuf!.pointer + j * hw, lds: cols, dx + (s0 + j) * cin * hw, ldd: hw, rows: cin, count: hw)
                        }
                    }
                }
                if let dwPart {
                    // dW (cin × co4) += x (cin × cols) · dyᵀ
                    let (a, lda) = inputBlock(x, first: s0, count: count, rows: rows, xbuf?.pointer)
                    sgemm1(false, true, cin, co4, cols, a, lda, dy.pointer, cols, first ? 0 : 1, dwPart, co4)
                    first = false
                }
            }
        }
        if let dw { reduceInto([dw] + partials.map(\.pointer), count: cin * co4) }
    }
}
