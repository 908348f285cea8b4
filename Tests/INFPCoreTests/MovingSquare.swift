import INFPCore

/// A moving square on a gradient background: `n` frames at the tiny size (32×48).
func movingSquareVideo(_ n: Int, phase: Int = 0, h: Int = 32, w: Int = 48) -> Video {
    var px = [UInt8](repeating: 0, count: n * h * w * 3)
    for f in 0..<n {
        let x0 = (f * 3 + phase) % (w - 8)
        for y in 0..<h { for x in 0..<w {
            let i = ((f * h + y) * w + x) * 3
            let inside = y >= 12 && y < 20 && x >= x0 && x < x0 + 8
            px[i] = inside ? 230 : UInt8(40 + x)
            px[i + 1] = inside ? 40 : UInt8(60 + y)
            px[i + 2] = inside ? 40 : 90
        } }
    }
    return Video(frames: n, height: h, width: w, pixels: px)
}
