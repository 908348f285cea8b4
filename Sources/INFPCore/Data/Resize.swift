/// Pillow-compatible bicubic resizing of uint8 frames, so that frames resized inside the
/// library (live streams) are bit-identical to frames resized by the Python loader
/// (`infp.data.resize_video`, Pillow's `Image.resize(size, BICUBIC)`, INFP-SPEC §4).
///
/// This follows Pillow's `ImagingResample` for 8-bit images (src/libImaging/Resample.c):
/// - separable: a horizontal pass over the source rows the vertical pass needs, rounded and
///   clipped to uint8, then a vertical pass, rounded and clipped again;
/// - cubic convolution with a = −0.5, support 2; when shrinking by `scale` the filter is
///   stretched to support 2·scale (antialiasing); taps [xmin, xmax) around the centre
///   (x + 0.5)·scale, coefficients normalised to sum 1 in double precision;
/// - coefficients in fixed point with PRECISION_BITS = 32 − 8 − 2 = 22 (rounded half away
///   from zero), int32 accumulation starting at 2^21 (rounding), result `acc >> 22` clipped
///   to 0...255;
/// - a pass whose size does not change is skipped (it would be the identity anyway).
///
/// Input channels: 3 (RGB), 4 (RGBA or RGBX: the 4th byte is ignored, as Pillow's
/// `convert("RGB")` does before resizing) or 1 (grey, replicated to R, G and B — the same
/// as resizing `convert("RGB")`, since every band is resampled alike). Output: RGB.
public struct ResizePlan {
    public let inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int

    /// Fixed-point filter of one axis: for output i, taps start at `bounds[2i]`, there are
    /// `bounds[2i + 1]` of them, with coefficients `coeffs[i·ksize ..< i·ksize + count]`.
    struct Axis {
        let ksize: Int
        let bounds: [Int]
        let coeffs: [Int32]
        let needed: Bool
    }

    let horizontal: Axis
    let vertical: Axis
    /// Source rows [firstRow, lastRow) feed the vertical pass.
    let firstRow: Int, lastRow: Int

    static let precisionBits = 32 - 8 - 2

    public init(inHeight: Int, inWidth: Int, outHeight: Int, outWidth: Int) {
        precondition(inHeight >= 1 && inWidth >= 1 && outHeight >= 1 && outWidth >= 1, "resize sizes must be positive")
        self.inHeight = inHeight; self.inWidth = inWidth; self.outHeight = outHeight; self.outWidth = outWidth
        horizontal = ResizePlan.axis(inSize: inWidth, outSize: outWidth)
        vertical = ResizePlan.axis(inSize: inHeight, outSize: outHeight)
        firstRow = vertical.bounds[0]
        lastRow = vertical.bounds[2 * outHeight - 2] + vertical.bounds[2 * outHeight - 1]
    }

    /// Pillow's bicubic filter (a = −0.5), written with the same operation order.
    @inline(__always)
    static func bicubic(_ x0: Double) -> Double {
        let a = -0.5
        let x = x0 < 0 ? -x0 : x0
        if x < 1.0 { return ((a + 2.0) * x - (a + 3.0)) * x * x + 1 }
        if x < 2.0 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0.0
    }

    /// Pillow's precompute_coeffs + normalize_coeffs_8bpc for box (0, inSize).
    static func axis(inSize: Int, outSize: Int) -> Axis {
        let support0 = 2.0
        let scale = Double(Float(inSize) - Float(0)) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = support0 * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds = [Int](repeating: 0, count: 2 * outSize)
        var coeffs = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        let one = Double(1 << precisionBits)
        for xx in 0..<outSize {
            let center = 0.0 + (Double(xx) + 0.5) * scale
            var ww = 0.0
            let ss = 1.0 / filterScale
            var xmin = Int(center - support + 0.5)  // truncation toward zero, as C's (int)
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            for x in 0..<ksize { k[x] = 0 }
            for x in 0..<xmax {
                let w = bicubic((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for x in 0..<xmax where ww != 0.0 { k[x] /= ww }
            for x in 0..<ksize {
                let v = k[x]
                coeffs[xx * ksize + x] = v < 0 ? Int32(-0.5 + v * one) : Int32(0.5 + v * one)
            }
            bounds[2 * xx] = xmin
            bounds[2 * xx + 1] = xmax
        }
        return Axis(ksize: ksize, bounds: bounds, coeffs: coeffs, needed: inSize != outSize)
    }

    @inline(__always)
    static func clip8(_ v: Int32) -> UInt8 {
        let s = v >> Int32(precisionBits)  // arithmetic shift: floor, as in C
        return s <= 0 ? 0 : (s >= 255 ? 255 : UInt8(truncatingIfNeeded: s))
    }

    /// Resizes one frame.
    /// - Parameters:
    ///   - src: `inHeight` rows of `inWidth` pixels of `channels` bytes (1, 3 or 4), rows
    ///     `rowStride` bytes apart (>= inWidth·channels).
    ///   - dst: `outHeight × outWidth × 3` bytes, RGB, row-major.
    /// Work is spread over `Parallel.threads` (rows of each pass).
    public func run(_ src: UnsafePointer<UInt8>, channels: Int, rowStride: Int, into dst: UnsafeMutablePointer<UInt8>) {
        precondition(channels == 1 || channels == 3 || channels == 4, "channels must be 1, 3 or 4")
        precondition(rowStride >= inWidth * channels, "row stride too small")
        let bands = channels == 1 ? 1 : 3
        let half: Int32 = 1 << Int32(ResizePlan.precisionBits - 1)

        // Horizontal pass: rows [firstRow, lastRow) into a (rows, outWidth, bands) buffer.
        var temp: UnsafeMutablePointer<UInt8>? = nil
        var vBase: UnsafePointer<UInt8> = src, vRowStride = rowStride, vStep = channels, rowOffset = 0
        if horizontal.needed {
            let rows = lastRow - firstRow, outW = outWidth, ks = horizontal.ksize
            let t = UnsafeMutablePointer<UInt8>.allocate(capacity: max(1, rows * outW * bands))
            temp = t
            horizontal.bounds.withUnsafeBufferPointer { hb in
                horizontal.coeffs.withUnsafeBufferPointer { hc in
                    let hb = hb.baseAddress!, hc = hc.baseAddress!
                    Parallel.forChunks(rows, minChunk: 8) { range in
                        for r in range {
                            let row = src + (firstRow + r) * rowStride
                            let out = t + r * outW * bands
                            for xx in 0..<outW {
                                let xmin = hb[2 * xx], n = hb[2 * xx + 1]
                                let k = hc + xx * ks
                                var p = row + xmin * channels
                                if bands == 1 {
                                    var s0 = half
                                    for x in 0..<n { s0 &+= Int32(p[0]) &* k[x]; p += 1 }
                                    out[xx] = ResizePlan.clip8(s0)
                                } else {
                                    var s0 = half, s1 = half, s2 = half
                                    for x in 0..<n {
                                        let c = k[x]
                                        s0 &+= Int32(p[0]) &* c; s1 &+= Int32(p[1]) &* c; s2 &+= Int32(p[2]) &* c
                                        p += channels
                                    }
                                    out[3 * xx] = ResizePlan.clip8(s0)
                                    out[3 * xx + 1] = ResizePlan.clip8(s1)
                                    out[3 * xx + 2] = ResizePlan.clip8(s2)
                                }
                            }
                        }
                    }
                }
            }
            vBase = UnsafePointer(t); vRowStride = outW * bands; vStep = bands; rowOffset = firstRow
        }
        defer { temp?.deallocate() }

        let width = outWidth  // width after the horizontal pass
        let base = vBase, rs = vRowStride, step = vStep, offset = rowOffset
        if vertical.needed {
            let ks = vertical.ksize
            vertical.bounds.withUnsafeBufferPointer { vb in
                vertical.coeffs.withUnsafeBufferPointer { vc in
                    let vb = vb.baseAddress!, vc = vc.baseAddress!
                    Parallel.forChunks(outHeight, minChunk: 4) { range in
                        for yy in range {
                            let ymin = vb[2 * yy] - offset, n = vb[2 * yy + 1]
                            let k = vc + yy * ks
                            let out = dst + yy * width * 3
                            for xx in 0..<width {
                                var p = base + ymin * rs + xx * step
                                if bands == 1 {
                                    var s0 = half
                                    for y in 0..<n { s0 &+= Int32(p[0]) &* k[y]; p += rs }
                                    let v = ResizePlan.clip8(s0)
                                    out[3 * xx] = v; out[3 * xx + 1] = v; out[3 * xx + 2] = v
                                } else {
                                    var s0 = half, s1 = half, s2 = half
                                    for y in 0..<n {
                                        let c = k[y]
                                        s0 &+= Int32(p[0]) &* c; s1 &+= Int32(p[1]) &* c; s2 &+= Int32(p[2]) &* c
                                        p += rs
                                    }
                                    out[3 * xx] = ResizePlan.clip8(s0)
                                    out[3 * xx + 1] = ResizePlan.clip8(s1)
                                    out[3 * xx + 2] = ResizePlan.clip8(s2)
                                }
                            }
                        }
                    }
                }
            }
        } else {
            // Same height: every row, as it is (firstRow is 0 here); copy out as RGB.
            for y in 0..<outHeight {
                let row = base + y * rs
                let out = dst + y * width * 3
                for x in 0..<width {
                    let p = row + x * step
                    if bands == 1 { out[3 * x] = p[0]; out[3 * x + 1] = p[0]; out[3 * x + 2] = p[0] }
                    else { out[3 * x] = p[0]; out[3 * x + 1] = p[1]; out[3 * x + 2] = p[2] }
                }
            }
        }
    }
}
