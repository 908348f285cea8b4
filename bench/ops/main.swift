// infp-bench-ops: GFLOP/s of the GEMM-based layers at the `small` preset's shapes, next to
// plain OpenBLAS sgemm measured in the same run. One JSON line per figure on stdout.
//
//   infp-bench-ops [--threads N] [--batches 8,1] [--filter TEXT] [--quick]
//
// Every figure is the median of several timed runs after a warm-up. "ratio" is our GFLOP/s
// over the GFLOP/s of sgemm doing the same GEMMs as single calls (the best of OpenBLAS with
// its own threads and Gemm.sgemm with ours); "ratio_1024" is over sgemm 1024³.
import Glibc
import CBLAS
import INFPCore

// MARK: options

var threads = 2
var batches = [8, 1]
var filter: String? = nil
var quick = false
do {
    var args = CommandLine.arguments.dropFirst()
    while let a = args.popFirst() {
        switch a {
        case "--threads": threads = Int(args.popFirst() ?? "") ?? threads
        case "--batches": batches = (args.popFirst() ?? "").split(separator: ",").compactMap { Int($0) }
        case "--filter": filter = args.popFirst()
        case "--quick": quick = true
        default:
            fputs("usage: infp-bench-ops [--threads N] [--batches 8,1] [--filter TEXT] [--quick]\n", stderr)
            exit(2)
        }
    }
}

// MARK: timing

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Median seconds of one call of `body`: a warm-up, then `runs` timed samples, each long
/// enough (≥ 20 ms, repeating the call) to be above timer noise.
func measure(runs: Int = quick ? 3 : 7, _ body: () -> Void) -> Double {
    body()
    var reps = 1
    while true {
        let t0 = now()
        for _ in 0..<reps { body() }
        let dt = now() - t0
        if dt >= 0.02 || reps >= 1 << 16 { break }
        reps *= max(2, min(64, Int(0.025 / max(dt, 1e-7)) + 1))
    }
    var samples: [Double] = []
    for _ in 0..<runs {
        let t0 = now()
        for _ in 0..<reps { body() }
        samples.append((now() - t0) / Double(reps))
    }
    samples.sort()
    return samples[samples.count / 2]
}

/// Like `measure`, but times only `timed` after an untimed `setup` per call.
func measureSplit(runs: Int = quick ? 3 : 7, setup: () -> Void, timed: () -> Void) -> Double {
    setup(); timed()
    var samples: [Double] = []
    var total = 0.0
    while samples.count < runs || (total < 0.15 && samples.count < 200) {
        setup()
        let t0 = now()
        timed()
        let dt = now() - t0
        samples.append(dt); total += dt
    }
    samples.sort()
    return samples[samples.count / 2]
}

func json(_ fields: [(String, Any)]) {
    let body = fields.map { key, value -> String in
        switch value {
        case let s as String: return "\"\(key)\":\"\(s)\""
        case let d as Double: return "\"\(key)\":\(d.isFinite ? String(format: "%.4g", d) : "null")"
        default: return "\"\(key)\":\(value)"
        }
    }.joined(separator: ",")
    print("{\(body)}")
    fflush(stdout)
}

func random(_ shape: [Int], seed: UInt64) -> Tensor {
    var s = seed &* 0x9E3779B97F4A7C15 | 1
    let n = shape.reduce(1, *)
    let t = Tensor(uninitialized: shape)
    for i in 0..<n {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17
        t.data[i] = Float(Int64(s >> 40) - (1 << 23)) / Float(1 << 23)
    }
    return t
}

// MARK: sgemm references

/// Seconds of one sgemm C[m×n] = op(A)·op(B), the best of OpenBLAS with `threads` threads of
/// its own and Gemm.sgemm with ours; returns both.
struct GemmTimes { var blas: Double; var ours: Double; var best: Double { min(blas, ours) } }
var gemmCache: [String: GemmTimes] = [:]

func sgemmTimes(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int) -> GemmTimes {
    let key = "\(transA) \(transB) \(m) \(n) \(k)"
    if let t = gemmCache[key] { return t }
    let a = random([m * k], seed: 1), b = random([k * n], seed: 2), c = Tensor(zeros: [m * n])
    let lda = transA ? m : k, ldb = transB ? k : n
    openblas_set_num_threads(Int32(threads))
    let tBlas = measure {
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), 1, a.data, Int32(lda), b.data, Int32(ldb), 0, c.data, Int32(n))
    }
    openblas_set_num_threads(1)  // INFPCore runs OpenBLAS single-threaded inside its own threads
    let tOurs = Parallel.withThreads(threads) {
        measure {
            Gemm.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a: a.data, lda: lda,
                       b: b.data, ldb: ldb, c: c.data, ldc: n)
        }
    }
    let t = GemmTimes(blas: tBlas, ours: tOurs)
    gemmCache[key] = t
    return t
}

func gflops(_ flops: Double, _ seconds: Double) -> Double { flops / seconds * 1e-9 }

_ = Parallel.withThreads(threads) { 0 }  // configures OpenBLAS for INFPCore
let cube = sgemmTimes(m: 1024, n: 1024, k: 1024)
let cubeFlops = 2.0 * 1024 * 1024 * 1024
let cubeBest = gflops(cubeFlops, cube.best)
json([("op", "sgemm"), ("impl", "openblas"), ("m", 1024), ("n", 1024), ("k", 1024), ("threads", threads),
      ("gflops", gflops(cubeFlops, cube.blas))])
json([("op", "sgemm"), ("impl", "Gemm.sgemm"), ("m", 1024), ("n", 1024), ("k", 1024), ("threads", threads),
      ("gflops", gflops(cubeFlops, cube.ours))])

// MARK: layers of the small preset

struct ConvCase {
    let layer: String
    let c, k, h, w, r, stride, pad, dil: Int
    var bias = false
    var ho: Int { (h + 2 * pad - dil * (r - 1) - 1) / stride + 1 }
    var wo: Int { (w + 2 * pad - dil * (r - 1) - 1) / stride + 1 }
}

// (112×144 input, width_div 8: channels 8, 16, 32, 64, 128, 256, 512; blocks [1]*6)
let convs: [ConvCase] = [
    ConvCase(layer: "mod1.conv1", c: 3, k: 8, h: 112, w: 144, r: 3, stride: 1, pad: 1, dil: 1),
    ConvCase(layer: "mod2.conv1", c: 8, k: 16, h: 56, w: 72, r: 3, stride: 1, pad: 1, dil: 1),
    ConvCase(layer: "mod2.conv2", c: 16, k: 16, h: 56, w: 72, r: 3, stride: 1, pad: 1, dil: 1),
    ConvCase(layer: "mod3.conv1", c: 16, k: 32, h: 28, w: 36, r: 3, stride: 1, pad: 1, dil: 1),
    ConvCase(layer: "mod3.conv2", c: 32, k: 32, h: 28, w: 36, r: 3, stride: 1, pad: 1, dil: 1),
    ConvCase(layer: "mod4.conv1", c: 32, k: 64, h: 28, w: 36, r: 3, stride: 2, pad: 1, dil: 1),
    ConvCase(layer: "mod4.conv2", c: 64, k: 64, h: 14, w: 18, r: 3, stride: 1, pad: 1, dil: 1),
    ConvCase(layer: "mod5.conv1", c: 64, k: 64, h: 14, w: 18, r: 3, stride: 1, pad: 2, dil: 2),
    ConvCase(layer: "mod5.conv2", c: 64, k: 128, h: 14, w: 18, r: 3, stride: 1, pad: 2, dil: 2),
    ConvCase(layer: "mod6.conv2", c: 64, k: 128, h: 14, w: 18, r: 3, stride: 1, pad: 4, dil: 4),
    ConvCase(layer: "mod7.conv2", c: 128, k: 256, h: 14, w: 18, r: 3, stride: 1, pad: 4, dil: 4),
    ConvCase(layer: "fusion.spatial", c: 256, k: 256, h: 14, w: 18, r: 3, stride: 1, pad: 1, dil: 1, bias: true),
    ConvCase(layer: "final.1", c: 16, k: 16, h: 112, w: 144, r: 3, stride: 1, pad: 1, dil: 1),
    ConvCase(layer: "final.2", c: 16, k: 3, h: 112, w: 144, r: 3, stride: 1, pad: 1, dil: 1),
    ConvCase(layer: "mod2.proj", c: 8, k: 16, h: 56, w: 72, r: 1, stride: 1, pad: 0, dil: 1),
    ConvCase(layer: "mod3.proj", c: 16, k: 32, h: 28, w: 36, r: 1, stride: 1, pad: 0, dil: 1),
    ConvCase(layer: "mod4.proj", c: 32, k: 64, h: 28, w: 36, r: 1, stride: 2, pad: 0, dil: 1),
    ConvCase(layer: "mod5.proj", c: 64, k: 128, h: 14, w: 18, r: 1, stride: 1, pad: 0, dil: 1),
    ConvCase(layer: "mod6.conv1", c: 128, k: 64, h: 14, w: 18, r: 1, stride: 1, pad: 0, dil: 1),
    ConvCase(layer: "mod6.conv3", c: 128, k: 256, h: 14, w: 18, r: 1, stride: 1, pad: 0, dil: 1),
    ConvCase(layer: "mod7.conv1", c: 256, k: 128, h: 14, w: 18, r: 1, stride: 1, pad: 0, dil: 1),
    ConvCase(layer: "mod7.conv3", c: 256, k: 512, h: 14, w: 18, r: 1, stride: 1, pad: 0, dil: 1),
    ConvCase(layer: "conv_x8", c: 2048, k: 256, h: 14, w: 18, r: 1, stride: 1, pad: 0, dil: 1),
    ConvCase(layer: "conv_x2", c: 128, k: 32, h: 28, w: 36, r: 1, stride: 1, pad: 0, dil: 1),
    ConvCase(layer: "conv_x1", c: 64, k: 16, h: 56, w: 72, r: 1, stride: 1, pad: 0, dil: 1),
    ConvCase(layer: "fusion.freq.1x1", c: 256, k: 256, h: 14, w: 10, r: 1, stride: 1, pad: 0, dil: 1, bias: true),
    ConvCase(layer: "fusion.1x1", c: 256, k: 256, h: 14, w: 18, r: 1, stride: 1, pad: 0, dil: 1, bias: true),
    ConvCase(layer: "fusion.cat", c: 512, k: 256, h: 14, w: 18, r: 1, stride: 1, pad: 0, dil: 1, bias: true),
    ConvCase(layer: "final.0", c: 32, k: 16, h: 112, w: 144, r: 1, stride: 1, pad: 0, dil: 1),
]

func runConv(_ cc: ConvCase, batch: Int) {
    let x = random([batch, cc.c, cc.h, cc.w], seed: 3)
    let wt = random([cc.k, cc.c, cc.r, cc.r], seed: 4)
    let b: Tensor? = cc.bias ? random([cc.k], seed: 5) : nil
    let p = cc.ho * cc.wo, crs = cc.c * cc.r * cc.r
    let flops = 2.0 * Double(batch * cc.k * p * crs)
    let shape = "\(batch)x\(cc.c)x\(cc.h)x\(cc.w) k\(cc.k) \(cc.r)x\(cc.r) s\(cc.stride) p\(cc.pad) d\(cc.dil)"
    func conv(_ x: Tensor, _ w: Tensor, _ b: Tensor?) -> Tensor {
        NN.conv2d(x, weight: w, bias: b, stride: cc.stride, padding: cc.pad, dilation: cc.dil)
    }

    // The same GEMMs as single sgemm calls on the whole batch: forward W·col (k × crs × N·P);
    // backward dW = gOut·colᵀ (k × crs, inner N·P) and dcol = Wᵀ·gOut (crs × N·P, inner k).
    let refFwd = sgemmTimes(m: cc.k, n: batch * p, k: crs).best
    let refBwd = sgemmTimes(transB: true, m: cc.k, n: crs, k: batch * p).best
        + sgemmTimes(transA: true, m: crs, n: batch * p, k: cc.k).best

    let tFwd = Parallel.withThreads(threads) { measure { _ = conv(x, wt, b) } }
    let gFwd = gflops(flops, tFwd)
    json([("op", "conv2d"), ("pass", "forward"), ("layer", cc.layer), ("shape", shape), ("batch", batch),
          ("threads", threads), ("ms", tFwd * 1e3), ("gflops", gFwd), ("sgemm_gflops", gflops(flops, refFwd)),
          ("ratio", gFwd / gflops(flops, refFwd)), ("ratio_1024", gFwd / cubeBest)])

    x.requiresGrad = true; wt.requiresGrad = true; b?.requiresGrad = true
    let seed = random([batch, cc.k, cc.ho, cc.wo], seed: 6)
    var y: Tensor? = nil
    let tBwd = Parallel.withThreads(threads) {
        measureSplit(setup: {
            x.grad = nil; wt.grad = nil; b?.grad = nil
            y = withGradients { conv(x, wt, b) }
        }, timed: { y!.backward(seed: seed) })
    }
    y = nil
    let gBwd = gflops(2 * flops, tBwd)
    json([("op", "conv2d"), ("pass", "backward"), ("layer", cc.layer), ("shape", shape), ("batch", batch),
          ("threads", threads), ("ms", tBwd * 1e3), ("gflops", gBwd), ("sgemm_gflops", gflops(2 * flops, refBwd)),
          ("ratio", gBwd / gflops(2 * flops, refBwd)), ("ratio_1024", gBwd / cubeBest)])
}

struct TransposeCase { let layer: String; let cin, cout, h, w: Int }
let transposes: [TransposeCase] = [
    TransposeCase(layer: "up8", cin: 256, cout: 128, h: 14, w: 18),
    TransposeCase(layer: "up4", cin: 160, cout: 64, h: 28, w: 36),
    TransposeCase(layer: "up2", cin: 80, cout: 32, h: 56, w: 72),
]

func runTranspose(_ tc: TransposeCase, batch: Int) {
    let x = random([batch, tc.cin, tc.h, tc.w], seed: 7)
    let wt = random([tc.cin, tc.cout, 2, 2], seed: 8)
    let hw = tc.h * tc.w, co4 = 4 * tc.cout
    let flops = 2.0 * Double(batch * hw * tc.cin * co4)
    let shape = "\(batch)x\(tc.cin)x\(tc.h)x\(tc.w) -> \(tc.cout)"
    let refFwd = sgemmTimes(transA: true, m: co4, n: batch * hw, k: tc.cin).best
    let refBwd = sgemmTimes(m: tc.cin, n: batch * hw, k: co4).best
        + sgemmTimes(transB: true, m: tc.cin, n: co4, k: batch * hw).best
    let tFwd = Parallel.withThreads(threads) { measure { _ = NN.convTranspose2x2(x, weight: wt) } }
    let gFwd = gflops(flops, tFwd)
    json([("op", "convTranspose2x2"), ("pass", "forward"), ("layer", tc.layer), ("shape", shape), ("batch", batch),
          ("threads", threads), ("ms", tFwd * 1e3), ("gflops", gFwd), ("sgemm_gflops", gflops(flops, refFwd)),
          ("ratio", gFwd / gflops(flops, refFwd)), ("ratio_1024", gFwd / cubeBest)])
    x.requiresGrad = true; wt.requiresGrad = true
    let seed = random([batch, tc.cout, 2 * tc.h, 2 * tc.w], seed: 9)
    var y: Tensor? = nil
    let tBwd = Parallel.withThreads(threads) {
        measureSplit(setup: {
            x.grad = nil; wt.grad = nil
            y = withGradients { NN.convTranspose2x2(x, weight: wt) }
        }, timed: { y!.backward(seed: seed) })
    }
    y = nil
    let gBwd = gflops(2 * flops, tBwd)
    json([("op", "convTranspose2x2"), ("pass", "backward"), ("layer", tc.layer), ("shape", shape), ("batch", batch),
          ("threads", threads), ("ms", tBwd * 1e3), ("gflops", gBwd), ("sgemm_gflops", gflops(2 * flops, refBwd)),
          ("ratio", gBwd / gflops(2 * flops, refBwd)), ("ratio_1024", gBwd / cubeBest)])
}

struct LinearCase { let layer: String; let rows, fin, fout: Int }
func linears(batch: Int) -> [LinearCase] {
    // Trajectory filter (official mode): Y is (B, P=32, Q=112, D=144), M = 2·D.
    [LinearCase(layer: "filter.pwconv1", rows: batch * 32 * 112, fin: 144, fout: 288),
     LinearCase(layer: "filter.pwconv2", rows: batch * 32 * 112, fin: 288, fout: 144)]
}

func runLinear(_ lc: LinearCase, batch: Int) {
    let x = random([lc.rows, lc.fin], seed: 10), wt = random([lc.fout, lc.fin], seed: 11)
    let flops = 2.0 * Double(lc.rows * lc.fin * lc.fout)
    let shape = "\(lc.rows)x\(lc.fin) -> \(lc.fout)"
    let refFwd = sgemmTimes(transB: true, m: lc.rows, n: lc.fout, k: lc.fin).best
    let refBwd = sgemmTimes(m: lc.rows, n: lc.fin, k: lc.fout).best
        + sgemmTimes(transA: true, m: lc.fout, n: lc.fin, k: lc.rows).best
    let tFwd = Parallel.withThreads(threads) { measure { _ = NN.linear(x, weight: wt, bias: nil) } }
    let gFwd = gflops(flops, tFwd)
    json([("op", "linear"), ("pass", "forward"), ("layer", lc.layer), ("shape", shape), ("batch", batch),
          ("threads", threads), ("ms", tFwd * 1e3), ("gflops", gFwd), ("sgemm_gflops", gflops(flops, refFwd)),
          ("ratio", gFwd / gflops(flops, refFwd)), ("ratio_1024", gFwd / cubeBest)])
    x.requiresGrad = true; wt.requiresGrad = true
    let seed = random([lc.rows, lc.fout], seed: 12)
    var y: Tensor? = nil
    let tBwd = Parallel.withThreads(threads) {
        measureSplit(setup: {
            x.grad = nil; wt.grad = nil
            y = withGradients { NN.linear(x, weight: wt, bias: nil) }
        }, timed: { y!.backward(seed: seed) })
    }
    y = nil
    let gBwd = gflops(2 * flops, tBwd)
    json([("op", "linear"), ("pass", "backward"), ("layer", lc.layer), ("shape", shape), ("batch", batch),
          ("threads", threads), ("ms", tBwd * 1e3), ("gflops", gBwd), ("sgemm_gflops", gflops(2 * flops, refBwd)),
          ("ratio", gBwd / gflops(2 * flops, refBwd)), ("ratio_1024", gBwd / cubeBest)])
}

func selected(_ layer: String) -> Bool { filter.map { layer.contains($0) } ?? true }

for batch in batches {
    for cc in convs where selected(cc.layer) { runConv(cc, batch: batch) }
    for tc in transposes where selected(tc.layer) { runTranspose(tc, batch: batch) }
    for lc in linears(batch: batch) where selected(lc.layer) { runLinear(lc, batch: batch) }
}
