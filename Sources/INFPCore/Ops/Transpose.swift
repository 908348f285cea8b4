/// out (cols × rows) = inᵀ for a row-major rows × cols matrix, in 32×32 tiles so that both
/// sides are read and written a cache line at a time; tiles are spread over the threads.
func transpose(_ input: UnsafePointer<Float>, rows: Int, cols: Int, into out: UnsafeMutablePointer<Float>) {
    let tile = 32
    let colTiles = (cols + tile - 1) / tile
    Parallel.forChunks(colTiles, minChunk: Swift.max(1, (1 << 15) / Swift.max(1, tile * rows))) { range in
        for ct in range {
            let c0 = ct * tile, c1 = Swift.min(cols, c0 + tile)
            var r0 = 0
            while r0 < rows {
                let r1 = Swift.min(rows, r0 + tile)
                for c in c0..<c1 {
                    let dst = out + c * rows
                    for r in r0..<r1 { dst[r] = input[r * cols + c] }
                }
                r0 = r1
            }
        }
    }
}
