import CBLAS

/// Winograd F(2×2, 3×3) for 3×3, stride-1, undilated convolutions: forward, the input
/// gradient (through the flipped-weight form, itself a forward convolution) and the weight
/// gradient.
///
/// The output is cut into 2×2 tiles; tile t reads a 4×4 input patch d_t (zero outside the
/// padded input). With the transforms
///   V = Bᵀ d B (input, per channel and tile), U = G g Gᵀ (weights, per output and input
///   channel), Y = Aᵀ M A (output, per output channel and tile),
/// the convolution is M_ξ = U_ξ · V_ξ for each of the 16 positions ξ of the 4×4 transformed
/// tile: 16 GEMMs (K × C)·(C × tiles) with 16·K·C·tiles multiply-adds instead of the
/// 36·K·C·tiles of direct 3×3 (2.25× fewer). Transforms cost O((C + K)·tiles) additions.
/// F(2, 3) keeps float32 results within a few ulps of im2col (its transform matrices hold only
/// 0, ±1 and ±½); F(4, 3) would save more but amplifies rounding by ~10×.
///
/// The tiles of all samples form one index space, cut into one contiguous range per thread and
/// pieces whose scratch stays under `bandCap`; each thread transforms its piece, runs 16
/// single-threaded sgemms and transforms back (or, for dW, accumulates its own dU).
/// Measured (2 threads): `small` train step 1.175 → 1.159 s (fusion 3×3 layers ~20% faster);
/// `official` eval forward 9.87 → 9.05 s. At batch 1 on `small` (63 tiles) it was 2× slower
/// than im2col, hence `winogradMinTilesPerThread`.
extension ConvGeometry {
    /// Channel counts from which the Winograd path is taken (tests lower them to force it).
    nonisolated(unsafe) static var winogradMinChannels = 32
    nonisolated(unsafe) static var winogradMinOutputs = 32
    /// Tiles per thread from which it is taken: each GEMM has one column per tile, and
    /// OpenBLAS packs the K × C matrix U_ξ on every call, which narrow GEMMs cannot repay.
    nonisolated(unsafe) static var winogradMinTilesPerThread = 128

    /// True when `forward` runs through Winograd F(2×2, 3×3).
    var usesWinograd: Bool {
        r == 3 && s == 3 && stride == 1 && dil == 1 && pad <= 2 && ho >= 1 && wo >= 1
            && c >= ConvGeometry.winogradMinChannels && k >= ConvGeometry.winogradMinOutputs
            && n * ((ho + 1) / 2) * ((wo + 1) / 2) >= ConvGeometry.winogradMinTilesPerThread * Swift.max(1, Parallel.threads)
            && FastPath.isOn("winograd")
    }

    /// U (16 × K × C): G g Gᵀ of every 3×3 kernel, position-major.
    func winogradWeights(_ wt: UnsafePointer<Float>, into u: UnsafeMutablePointer<Float>) {
        let kc = k * c
        for kk in 0..<k {
            for cc in 0..<c {
                let g = wt + (kk * c + cc) * 9
                // G g: 4 rows × 3 columns (rows of the kernel as vectors).
                let g0 = SIMD4<Float>(g[0], g[1], g[2], 0), g1 = SIMD4<Float>(g[3], g[4], g[5], 0)
                let g2 = SIMD4<Float>(g[6], g[7], g[8], 0)
                let t0 = g0, t1 = 0.5 * (g0 + g1 + g2), t2 = 0.5 * (g0 - g1 + g2), t3 = g2
                // (G g) Gᵀ: 4 × 4.
                let o = kk * c + cc
                func put(_ i: Int, _ ti: SIMD4<Float>) {
                    let a0 = ti[0], a1 = ti[1], a2 = ti[2]
                    u[(4 * i + 0) * kc + o] = a0
                    u[(4 * i + 1) * kc + o] = 0.5 * (a0 + a1 + a2)
                    u[(4 * i + 2) * kc + o] = 0.5 * (a0 - a1 + a2)
                    u[(4 * i + 3) * kc + o] = a2
                }
                put(0, t0); put(1, t1); put(2, t2); put(3, t3)
            }
        }
    }

    /// Forward through Winograd F(2×2, 3×3); same contract as `forward`.
    ///
    /// The input is first copied, zero-padded, into channels-last order (one shared pass), so
    /// that the input transform runs on 16 channels at a time and writes V_ξ as contiguous
    /// (tiles × C) rows; the GEMMs read V_ξ transposed. The output transform runs on 8 tiles
    /// at a time.
    func winogradForward(x: UnsafePointer<Float>, w wt: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                         out: UnsafeMutablePointer<Float>) {
        let c = c, k = k, n = n
        let th = (ho + 1) / 2, tw = (wo + 1) / 2
        let u = Scratch(16 * k * c)
        defer { u.release() }
        winogradWeights(wt, into: u.pointer)
        let up = UnsafePointer(u.pointer)
        let hp = 2 * th + 2, wp = 2 * tw + 2
        let staged = winogradStage(x)
        defer { staged.release() }
        let xs = UnsafePointer(staged.pointer)
        let perSample = th * tw, total = n * perSample
        let piece = Swift.max(1, Swift.min(total, ConvGeometry.bandCap / (16 * (c + k))))
        Workers.run(total) { _, range in
            let width = Swift.min(piece, range.count)
            let vs = Scratch(16 * c * width)
            let ms = Scratch(16 * k * width)
            defer { vs.release(); ms.release() }
            let v = vs.pointer, m = ms.pointer
            var lo = range.lowerBound
            while lo < range.upperBound {
                let hi = Swift.min(range.upperBound, lo + width)
                let tiles = hi - lo
                OpProfile.measure("winograd.input(threads)") {
                    winogradInput(xs, tiles: lo..<hi, perSample: perSample, tw: tw, hp: hp, wp: wp, into: v)
                }
                // M_ξ (K × tiles) = U_ξ (K × C) · V_ξᵀ, V_ξ stored (tiles × C).
                OpProfile.measure("winograd.gemm(threads)") {
                    for xi in 0..<16 {
                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(k), Int32(tiles), Int32(c), 1,
                                    up + xi * k * c, Int32(c), v + xi * c * tiles, Int32(c), 0,
                                    m + xi * k * tiles, Int32(tiles))
                    }
                }
                OpProfile.measure("winograd.output(threads)") {
                    winogradOutput(m, tiles: lo..<hi, perSample: perSample, tw: tw, bias: bias, into: out)
                }
                lo = hi
            }
        }
    }

    /// The input zero-padded in channels-last order (N, 2·th + 2, 2·tw + 2, C): row yy holds
    /// input row yy − pad (likewise columns), so every tile's 4×4 patch is inside.
    private func winogradStage(_ x: UnsafePointer<Float>) -> Scratch {
        let c = c, h = h, w = w, pad = pad
        let hp = 2 * ((ho + 1) / 2) + 2, wp = 2 * ((wo + 1) / 2) + 2
        let staged = Scratch(n * hp * wp * c)
        let xs = staged.pointer
        Parallel.forEach(n) { sample in
            let base = xs + sample * hp * wp * c
            for yy in 0..<hp {
                let iy = yy - pad
                let row = base + yy * wp * c
                guard iy >= 0 && iy < h else { zero(row, wp * c); continue }
                for xx in 0..<wp {
                    let ix = xx - pad
                    let d = row + xx * c
                    if ix < 0 || ix >= w { zero(d, c); continue }
                    let src = x + sample * c * h * w + iy * w + ix
                    for cc in 0..<c { d[cc] = src[cc * h * w] }
                }
            }
        }
        return staged
    }

    /// dW (overwritten) through Winograd: with dM_ξ = (A dY Aᵀ)_ξ per tile (the adjoint of the
    /// output transform), dU_ξ (K × C) = Σ_tiles dM_ξ · V_ξ (16 GEMMs whose inner dimension is
    /// the tiles), and dW = Gᵀ dU G (the adjoint of the weight transform).
    func winogradWeightGradient(x: UnsafePointer<Float>, gOut: UnsafePointer<Float>, dw: UnsafeMutablePointer<Float>) {
        let c = c, k = k, ho = ho, wo = wo, p = p, n = n
        let th = (ho + 1) / 2, tw = (wo + 1) / 2
        let hp = 2 * th + 2, wp = 2 * tw + 2
        let staged = winogradStage(x)
        defer { staged.release() }
        let xs = UnsafePointer(staged.pointer)
        let perSample = th * tw, total = n * perSample
        let piece = Swift.max(1, Swift.min(total, ConvGeometry.bandCap / (16 * (c + k))))
        let workers = Workers.count(total)
        let partials = (0..<workers).map { _ in Scratch(16 * k * c) }
        defer { partials.forEach { $0.release() } }
        Workers.run(total) { worker, range in
            let width = Swift.min(piece, range.count)
            let vs = Scratch(16 * c * width)
            let ms = Scratch(16 * k * width)
            defer { vs.release(); ms.release() }
            let v = vs.pointer, dm = ms.pointer, du = partials[worker].pointer
            var lo = range.lowerBound, first = true
            while lo < range.upperBound {
                let hi = Swift.min(range.upperBound, lo + width)
                let tiles = hi - lo
                winogradInput(xs, tiles: lo..<hi, perSample: perSample, tw: tw, hp: hp, wp: wp, into: v)
                // dM (16 × K × tiles) from the tiles' 2×2 output gradients (0 outside).
                let step = k * tiles
                for t in 0..<tiles {
                    let gt = lo + t
                    let sample = gt / perSample, ti = (gt % perSample) / tw, tj = gt % tw
                    let oy = 2 * ti, ox = 2 * tj
                    let right = ox + 1 < wo, bottom = oy + 1 < ho
                    for kk in 0..<k {
                        let g = gOut + (sample * k + kk) * p + oy * wo + ox
                        let y00 = g[0], y01: Float = right ? g[1] : 0
                        let y10: Float = bottom ? g[wo] : 0, y11: Float = right && bottom ? g[wo + 1] : 0
                        // A dY (rows 0..3), then · Aᵀ (columns 0..3).
                        let r = (SIMD2<Float>(y00, y01), SIMD2<Float>(y00, y01) + SIMD2<Float>(y10, y11),
                                 SIMD2<Float>(y00, y01) - SIMD2<Float>(y10, y11), -SIMD2<Float>(y10, y11))
                        let o = dm + kk * tiles + t
                        @inline(__always) func put(_ row: SIMD2<Float>, _ q: UnsafeMutablePointer<Float>) {
                            q[0] = row[0]; q[step] = row[0] + row[1]; q[2 * step] = row[0] - row[1]; q[3 * step] = -row[1]
                        }
                        put(r.0, o); put(r.1, o + 4 * step); put(r.2, o + 8 * step); put(r.3, o + 12 * step)
                    }
                }
                // dU_ξ (K × C) += dM_ξ (K × tiles) · V_ξ (tiles × C).
                for xi in 0..<16 {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(k), Int32(c), Int32(tiles), 1,
                                dm + xi * k * tiles, Int32(tiles), v + xi * c * tiles, Int32(c), first ? 0 : 1,
                                du + xi * k * c, Int32(c))
                }
                first = false
                lo = hi
            }
        }
        // Sum the partials, then dW = Gᵀ dU G per (k, c).
        let du = partials[0].pointer, kc = k * c
        for part in partials.dropFirst() { for i in 0..<16 * kc { du[i] += part.pointer[i] } }
        for o in 0..<kc {
            @inline(__always) func e(_ i: Int, _ j: Int) -> Float { du[(4 * i + j) * kc + o] }
            // dU G (4 × 3): columns b = 0, 1, 2 of G are (1, ½, ½, 0), (0, ½, −½, 0), (0, ½, ½, 1).
            func rowG(_ i: Int) -> SIMD4<Float> {
                let a0 = e(i, 0), a1 = e(i, 1), a2 = e(i, 2), a3 = e(i, 3)
                return SIMD4(a0 + 0.5 * (a1 + a2), 0.5 * (a1 - a2), 0.5 * (a1 + a2) + a3, 0)
            }
            let q0 = rowG(0), q1 = rowG(1), q2 = rowG(2), q3 = rowG(3)
            // Gᵀ (dU G): rows a = 0, 1, 2.
            let g0 = q0 + 0.5 * (q1 + q2), g1 = 0.5 * (q1 - q2), g2 = 0.5 * (q1 + q2) + q3
            let d = dw + o * 9
            d[0] = g0[0]; d[1] = g0[1]; d[2] = g0[2]
            d[3] = g1[0]; d[4] = g1[1]; d[5] = g1[2]
            d[6] = g2[0]; d[7] = g2[1]; d[8] = g2[2]
        }
    }

    /// V_ξ (tiles × C) = Bᵀ d B for the tiles `range` (global tile indices), from the padded
    /// channels-last input; 16 channels per step.
    private func winogradInput(_ xs: UnsafePointer<Float>, tiles range: Range<Int>, perSample: Int, tw: Int,
                               hp: Int, wp: Int, into v: UnsafeMutablePointer<Float>) {
        let c = c, tiles = range.count, plane = tiles * c
        typealias V16 = SIMD16<Float>
        @inline(__always) func ld(_ q: UnsafePointer<Float>) -> V16 { UnsafeRawPointer(q).loadUnaligned(as: V16.self) }
        @inline(__always) func st(_ val: V16, _ q: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(q).storeBytes(of: val, as: V16.self) }
        for t in 0..<tiles {
            let gt = range.lowerBound + t
            let sample = gt / perSample, ti = (gt % perSample) / tw, tj = gt % tw
            let corner = xs + ((sample * hp + 2 * ti) * wp + 2 * tj) * c
            let dst = v + t * c
            var cc = 0
            while cc + 16 <= c {
                // Column transform of each of the 4 input rows, then the row transform.
                func cols(_ a: Int) -> (V16, V16, V16, V16) {
                    let r = corner + a * wp * c + cc
                    let d0 = ld(r), d1 = ld(r + c), d2 = ld(r + 2 * c), d3 = ld(r + 3 * c)
                    return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
                }
                let r0 = cols(0), r1 = cols(1), r2 = cols(2), r3 = cols(3)
                let o = dst + cc
                st(r0.0 - r2.0, o);              st(r0.1 - r2.1, o + plane)
                st(r0.2 - r2.2, o + 2 * plane);  st(r0.3 - r2.3, o + 3 * plane)
                st(r1.0 + r2.0, o + 4 * plane);  st(r1.1 + r2.1, o + 5 * plane)
                st(r1.2 + r2.2, o + 6 * plane);  st(r1.3 + r2.3, o + 7 * plane)
                st(r2.0 - r1.0, o + 8 * plane);  st(r2.1 - r1.1, o + 9 * plane)
                st(r2.2 - r1.2, o + 10 * plane); st(r2.3 - r1.3, o + 11 * plane)
                st(r1.0 - r3.0, o + 12 * plane); st(r1.1 - r3.1, o + 13 * plane)
                st(r1.2 - r3.2, o + 14 * plane); st(r1.3 - r3.3, o + 15 * plane)
                cc += 16
            }
            while cc < c {
                func cols(_ a: Int) -> SIMD4<Float> {
                    let r = corner + a * wp * c + cc
                    let d0 = r[0], d1 = r[c], d2 = r[2 * c], d3 = r[3 * c]
                    return SIMD4(d0 - d2, d1 + d2, d2 - d1, d1 - d3)
                }
                let col = (cols(0), cols(1), cols(2), cols(3))
                let rows = (col.0 - col.2, col.1 + col.2, col.2 - col.1, col.1 - col.3)
                let o = dst + cc
                for j in 0..<4 {
                    o[j * plane] = rows.0[j]
                    o[(4 + j) * plane] = rows.1[j]
                    o[(8 + j) * plane] = rows.2[j]
                    o[(12 + j) * plane] = rows.3[j]
                }
                cc += 1
            }
        }
    }

    /// Y = Aᵀ M A for the tiles `range` (M_ξ stored K × tiles), plus the bias, into the
    /// output: 8 tiles at a time in SIMD (tiles of different rows or samples alike), stored
    /// through a per-tile table of output offsets.
    private func winogradOutput(_ m: UnsafePointer<Float>, tiles range: Range<Int>, perSample: Int, tw: Int,
                                bias: UnsafePointer<Float>?, into out: UnsafeMutablePointer<Float>) {
        let k = k, ho = ho, wo = wo, p = p, tiles = range.count, step = k * tiles
        typealias V8 = SIMD8<Float>
        withUnsafeTemporaryAllocation(of: Int.self, capacity: tiles) { table in
            // Offset of the tile's top-left output pixel in a sample's channel-0 plane block
            // (sample · K · P + row · Wo + column), times 4, plus bit 0 = has a right column,
            // bit 1 = has a bottom row.
            for t in 0..<tiles {
                let gt = range.lowerBound + t
                let sample = gt / perSample, ti = (gt % perSample) / tw, tj = gt % tw
                let oy = 2 * ti, ox = 2 * tj
                let off = sample * k * p + oy * wo + ox
                table[t] = off * 4 + (ox + 1 < wo ? 1 : 0) + (oy + 1 < ho ? 2 : 0)
            }
            for kk in 0..<k {
                let b0 = V8(repeating: bias?[kk] ?? 0)
                let plane = out + kk * p
                var t = 0
                while t < tiles {
                    let run = Swift.min(8, tiles - t)
                    let src = m + kk * tiles + t
                    @inline(__always) func ld(_ xi: Int) -> V8 {
                        let q = src + xi * step
                        if run == 8 { return UnsafeRawPointer(q).loadUnaligned(as: V8.self) }
                        var r = V8()
                        for l in 0..<run { r[l] = q[l] }
                        return r
                    }
                    let m4 = ld(4), m5 = ld(5), m6 = ld(6), m7 = ld(7)
                    let m8 = ld(8), m9 = ld(9), m10 = ld(10), m11 = ld(11)
                    // S0 = M0 + M1 + M2, S1 = M1 − M2 − M3 (rows i of M, per column j).
                    let s00 = ld(0) + m4 + m8, s01 = ld(1) + m5 + m9
                    let s02 = ld(2) + m6 + m10, s03 = ld(3) + m7 + m11
                    let s10 = m4 - m8 - ld(12), s11 = m5 - m9 - ld(13)
                    let s12 = m6 - m10 - ld(14), s13 = m7 - m11 - ld(15)
                    let y00 = s00 + s01 + s02 + b0, y01 = s01 - s02 - s03 + b0
                    let y10 = s10 + s11 + s12 + b0, y11 = s11 - s12 - s13 + b0
                    for l in 0..<run {
                        let e = table[t + l]
                        let d = plane + (e >> 2)
                        d[0] = y00[l]
                        if e & 1 != 0 { d[1] = y01[l] }
                        if e & 2 != 0 {
                            d[wo] = y10[l]
                            if e & 1 != 0 { d[wo + 1] = y11[l] }
                        }
                    }
                    t += run
                }
            }
        }
    }
}
