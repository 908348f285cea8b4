import CBLAS

/// Row-major single-precision matrix multiply on OpenBLAS, parallelised by us:
/// C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C, split over columns (or rows when
/// N is small) so that each thread runs a single-threaded sgemm on its own block of C.
public enum Gemm {
    public static func sgemm(transA: Bool = false, transB: Bool = false,
                             m: Int, n: Int, k: Int, alpha: Float = 1,
                             a: UnsafePointer<Float>, lda: Int,
                             b: UnsafePointer<Float>, ldb: Int,
                             beta: Float = 0,
                             c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            for i in 0..<m { for j in 0..<n { c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j] } }
            return
        }
        let ta = transA ? CblasTrans : CblasNoTrans
        let tb = transB ? CblasTrans : CblasNoTrans
        let flops = 2 * m * n * k
        let threads = Parallel.threads
        if threads <= 1 || flops < 2_000_000 {
            cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(n), Int32(k), alpha,
                        a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
            return
        }
        if n >= m || n >= 64 * threads {
            // Column blocks: B's columns j..j+w (at b + j, or row j of Bᵀ).
            Parallel.forChunks(n, minChunk: 16) { r in
                let bOff = transB ? r.lowerBound * ldb : r.lowerBound
                cblas_sgemm(CblasRowMajor, ta, tb, Int32(m), Int32(r.count), Int32(k), alpha,
                            a, Int32(lda), b + bOff, Int32(ldb), beta, c + r.lowerBound, Int32(ldc))
            }
        } else {
            // Row blocks: A's rows i..i+h (at a + i·lda, or column i of Aᵀ).
            Parallel.forChunks(m, minChunk: 16) { r in
                let aOff = transA ? r.lowerBound : r.lowerBound * lda
                cblas_sgemm(CblasRowMajor, ta, tb, Int32(r.count), Int32(n), Int32(k), alpha,
                            a + aOff, Int32(lda), b, Int32(ldb), beta, c + r.lowerBound * ldc, Int32(ldc))
            }
        }
    }
}
