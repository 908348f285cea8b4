// infp-bench-ops: GFLOP/s of the GEMM-based layers at a preset's shapes (`small` unless told), next to
// plain OpenBLAS sgemm measured in the same run. One JSON line per figure on stdout.
//
//   infp-bench-ops [--preset small|tiny|official] [--threads N] [--batches 8,1] [--filter TEXT] [--quick] [--cpu-clock] [--min]
//                  [--runs N] [--sample-ms MS] [--no-ref]
//
// --cpu-clock times with the process CPU clock and --min takes the fastest sample: both only
// for comparing variants on a machine busy with other work (the figures are wall-clock medians).
//
// Every figure is the median of several timed runs after a warm-up, each run a few calls of
// at least 20 ms; a layer and its reference are sampled in turn so that a busy machine slows
// both alike. "ratio" is our GFLOP/s over that of sgemm doing the layer's GEMMs as single
// calls on the whole batch (the faster of OpenBLAS with its own `threads` threads and
// Gemm.sgemm with ours, both printed as "sgemm" lines for each shape): forward W·col, backward
// dW = gOut·colᵀ plus dcol = Wᵀ·gOut. "ratio_1024" is over sgemm 1024³. Backward times
// exclude the recorded forward pass that precedes each call; its FLOPs count dx and dW.
//
// Package.swift: .executableTarget(name: "infp-bench-ops", dependencies: ["INFPCore", "CBLAS"],
//                                  path: "bench/ops", swiftSettings: kernelFlags)
import Glibc
import CBLAS
import INFPCore

// MARK: options

var threads = 2
var preset = "small"
var batches = [8, 1]
var filter: String? = nil
var quick = false
var cpuClock = false   // process CPU time instead of wall time (for tuning on a busy machine)
var statMin = false    // the fastest sample instead of the median
var noReference = false  // skip the sgemm references (profiling our side alone)
var runCount = 7           // timed samples per figure
var sampleSeconds = 0.02
do {
    var args = CommandLine.arguments.dropFirst()
    while let a = args.popFirst() {
        switch a {
        case "--threads": threads = Int(args.popFirst() ?? "") ?? threads
        case "--preset": preset = args.popFirst() ?? preset
        case "--batches": batches = (args.popFirst() ?? "").split(separator: ",").compactMap { Int($0) }
        case "--filter": filter = args.popFirst()
        case "--quick": quick = true
        case "--cpu-clock": cpuClock = true
        case "--min": statMin = true
        case "--no-ref": noReference = true
        case "--runs": runCount = Int(args.popFirst() ?? "") ?? runCount
        case "--sample-ms": sampleSeconds = (Double(args.popFirst() ?? "") ?? 20) / 1000
        default:
            fputs("usage: infp-bench-ops [--preset small|tiny|official] [--threads N] [--batches 8,1] [--filter TEXT] [--quick] [--cpu-clock] [--min] [--runs N] [--sample-ms MS] [--no-ref]\n", stderr)
            exit(2)
        }
    }
}

// OpenBLAS's own worker threads (used by the "openblas" references) spin for ~2^28 cycles after
// each call; on a 2-core machine that steals a core from the layer timed next. Re-run this
// program with them sleeping at once (OpenBLAS reads the variable when it loads).
if getenv("OPENBLAS_THREAD_TIMEOUT") == nil {
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
    execv("/proc/self/exe", CommandLine.unsafeArgv)
    fputs("infp-bench-ops: could not re-run with OPENBLAS_THREAD_TIMEOUT=4; figures may suffer\n", stderr)
}

/// Input height, width and width_div of each preset (INFP-SPEC §1).
let presets = ["tiny": (32, 48, 32), "small": (112, 144, 8), "official": (224, 288, 1)]
guard let (ph, pw, pdiv) = presets[preset] else { fputs("unknown preset \(preset) (tiny, small, official)\n", stderr); exit(2) }

// MARK: timing

func now() -> Double {
    var ts = timespec()
    clock_gettime(cpuClock ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Something to time: `body`, after an untimed `setup` before each call when given.
struct Timed {
    var setup: (() -> Void)? = nil
    let body: () -> Void

    /// Seconds per call over `reps` calls (setup excluded).
    func sample(_ reps: Int) -> Double {
        if let setup {
            var total = 0.0
            for _ in 0..<reps { setup(); let t0 = now(); body(); total += now() - t0 }
            return total / Double(reps)
        }
        let t0 = now()
        for _ in 0..<reps { body() }
        return (now() - t0) / Double(reps)
    }

    /// Calls per sample so that a sample takes ≥ `sampleSeconds` (after a warm-up call).
    func calibrate() -> Int {
        var reps = 1
        _ = sample(1)
        while true {
            let dt = sample(reps) * Double(reps)
            if dt >= sampleSeconds || reps >= 1 << 16 { return reps }
            reps *= max(2, min(64, Int(1.25 * sampleSeconds / max(dt, 1e-7)) + 1))
        }
    }
}

/// Median seconds per call of each of `items`, sampled in turn (a, b, c, a, b, c, …) so that
/// a busy machine slows them alike and their ratios stay meaningful.
func measure(_ items: [Timed], runs: Int = quick ? 3 : runCount) -> [Double] {
    let reps = items.map { $0.calibrate() }
    var samples = [[Double]](repeating: [], count: items.count)
    for _ in 0..<runs { for (i, item) in items.enumerated() { samples[i].append(item.sample(reps[i])) } }
    return samples.map { statMin ? $0.min()! : $0.sorted()[$0.count / 2] }
}

func format(_ d: Double) -> String {
    var buf = [CChar](repeating: 0, count: 32)
    _ = withVaList([d]) { vsnprintf(&buf, 32, "%.4g", $0) }
    return String(cString: buf)
}

func json(_ fields: [(String, Any)]) {
    let body = fields.map { key, value -> String in
        switch value {
        case let s as String: return "\"\(key)\":\"\(s)\""
        case let d as Double: return "\"\(key)\":\(d.isFinite ? format(d) : "null")"
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

/// One sgemm C[m×n] = op(A)·op(B) as a single call: with OpenBLAS's own `threads` threads
/// ("openblas") or with Gemm.sgemm under Parallel.withThreads(threads) ("Gemm.sgemm").
struct GemmCall {
    let transA: Bool, transB: Bool, m: Int, n: Int, k: Int
    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    func timed(blas: Bool) -> Timed {
        let a = random([m * k], seed: 1), b = random([k * n], seed: 2), c = Tensor(zeros: [m * n])
        let lda = transA ? m : k, ldb = transB ? k : n
        let (m, n, k, ta, tb) = (m, n, k, transA, transB)
        if blas {
            return Timed {
                openblas_set_num_threads(Int32(threads))
                cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                            Int32(m), Int32(n), Int32(k), 1, a.data, Int32(lda), b.data, Int32(ldb), 0, c.data, Int32(n))
                openblas_set_num_threads(1)  // INFPCore runs OpenBLAS single-threaded in its own threads
            }
        }
        return Timed {
            Parallel.withThreads(threads) {
                Gemm.sgemm(transA: ta, transB: tb, m: m, n: n, k: k, a: a.data, lda: lda, b: b.data, ldb: ldb,
                           c: c.data, ldc: n)
            }
        }
    }
}

/// The faster of the two single-call sgemms for a shape, decided once per shape (and printed:
/// one "sgemm" line per implementation).
var bestCache: [String: Bool] = [:]
func bestGemm(_ g: GemmCall) -> Timed {
    let key = "\(g.transA) \(g.transB) \(g.m) \(g.n) \(g.k)"
    if bestCache[key] == nil {
        let t = measure([g.timed(blas: true), g.timed(blas: false)], runs: quick ? 3 : 5)
        bestCache[key] = t[0] <= t[1]
        for (impl, seconds) in [("openblas", t[0]), ("Gemm.sgemm", t[1])] {
            json([("op", "sgemm"), ("impl", impl), ("transA", g.transA ? 1 : 0), ("transB", g.transB ? 1 : 0),
                  ("m", g.m), ("n", g.n), ("k", g.k), ("threads", threads), ("gflops", gflops(g.flops, seconds))])
        }
    }
    return g.timed(blas: bestCache[key]!)
}

/// The reference for a layer: its GEMMs run one after the other as single sgemm calls.
func reference(_ gemms: [GemmCall]) -> Timed {
    if noReference { return Timed { } }
    let calls = gemms.map(bestGemm)
    return Timed { for c in calls { c.body() } }
}

func gflops(_ flops: Double, _ seconds: Double) -> Double { flops / seconds * 1e-9 }

_ = Parallel.withThreads(threads) { 0 }  // configures OpenBLAS for INFPCore
let cube = GemmCall(transA: false, transB: false, m: 1024, n: 1024, k: 1024)
let cubeTimes = measure([cube.timed(blas: true), cube.timed(blas: false)])
let cubeBest = gflops(cube.flops, cubeTimes.min()!)
json([("op", "sgemm"), ("impl", "openblas"), ("m", 1024), ("n", 1024), ("k", 1024), ("threads", threads),
      ("gflops", gflops(cube.flops, cubeTimes[0]))])
json([("op", "sgemm"), ("impl", "Gemm.sgemm"), ("m", 1024), ("n", 1024), ("k", 1024), ("threads", threads),
      ("gflops", gflops(cube.flops, cubeTimes[1]))])

/// Times forward and backward of a layer against its reference GEMMs and prints two lines.
func report(op: String, layer: String, shape: String, batch: Int, flops: Double,
            forward: @escaping () -> Tensor, inputs: [Tensor],
            refForward: [GemmCall], refBackward: [GemmCall]) {
    let fwd = Timed { _ = Parallel.withThreads(threads) { forward() } }
    for t in inputs { t.requiresGrad = true }
    var y: Tensor? = nil
    var seed: Tensor? = nil
    let bwd = Timed(setup: {
        for t in inputs { t.grad = nil }
        y = Parallel.withThreads(threads) { withGradients { forward() } }
        if seed == nil { seed = random(y!.shape, seed: 6) }
    }, body: { Parallel.withThreads(threads) { y!.backward(seed: seed!) } })
    let t = measure([reference(refForward), fwd, reference(refBackward), bwd])
    y = nil
    for t in inputs { t.requiresGrad = false; t.grad = nil }
    for (pass, tRef, tOurs, f) in [("forward", t[0], t[1], flops), ("backward", t[2], t[3], 2 * flops)] {
        let ours = gflops(f, tOurs), ref = gflops(f, tRef)
        json([("op", op), ("pass", pass), ("layer", layer), ("shape", shape), ("batch", batch), ("threads", threads),
              ("ms", tOurs * 1e3), ("gflops", ours), ("sgemm_gflops", ref), ("ratio", ours / ref),
              ("ratio_1024", ours / cubeBest)])
    }
}

// MARK: layers of a preset

struct ConvCase {
    let layer: String
    let c, k, h, w, r, stride, pad, dil: Int
    var bias = false
    var ho: Int { (h + 2 * pad - dil * (r - 1) - 1) / stride + 1 }
    var wo: Int { (w + 2 * pad - dil * (r - 1) - 1) / stride + 1 }
}

/// The distinct convolution shapes of a preset (INFP-SPEC §2), blocks [1]*6: input H×W,
/// channels c(n) = n / width_div; x1 at H/2, x2 at H/4, x8 at H/8.
func convCases(h: Int, w: Int, div: Int) -> [ConvCase] {
    func c(_ n: Int) -> Int { max(1, n / div) }
    let (h2, w2, h4, w4, h8, w8) = (h / 2, w / 2, h / 4, w / 4, h / 8, w / 8)
    func conv3(_ layer: String, _ ci: Int, _ k: Int, _ h: Int, _ w: Int, stride: Int = 1, dil: Int = 1,
               bias: Bool = false) -> ConvCase {
        ConvCase(layer: layer, c: ci, k: k, h: h, w: w, r: 3, stride: stride, pad: dil, dil: dil, bias: bias)
    }
    func conv1(_ layer: String, _ ci: Int, _ k: Int, _ h: Int, _ w: Int, stride: Int = 1, bias: Bool = false) -> ConvCase {
        ConvCase(layer: layer, c: ci, k: k, h: h, w: w, r: 1, stride: stride, pad: 0, dil: 1, bias: bias)
    }
    return [
        conv3("mod1.conv1", 3, c(64), h, w),
        conv3("mod2.conv1", c(64), c(128), h2, w2),
        conv3("mod2.conv2", c(128), c(128), h2, w2),
        conv3("mod3.conv1", c(128), c(256), h4, w4),
        conv3("mod3.conv2", c(256), c(256), h4, w4),
        conv3("mod4.conv1", c(256), c(512), h4, w4, stride: 2),
        conv3("mod4.conv2", c(512), c(512), h8, w8),
        conv3("mod5.conv1", c(512), c(512), h8, w8, dil: 2),
        conv3("mod5.conv2", c(512), c(1024), h8, w8, dil: 2),
        conv3("mod6.conv2", c(512), c(1024), h8, w8, dil: 4),
        conv3("mod7.conv2", c(1024), c(2048), h8, w8, dil: 4),
        conv3("fusion.spatial", c(2048), c(2048), h8, w8, bias: true),
        conv3("final.1", c(128), c(128), h, w),
        conv3("final.2", c(128), 3, h, w),
        conv1("mod2.proj", c(64), c(128), h2, w2),
        conv1("mod3.proj", c(128), c(256), h4, w4),
        conv1("mod4.proj", c(256), c(512), h4, w4, stride: 2),
        conv1("mod5.proj", c(512), c(1024), h8, w8),
        conv1("mod6.conv1", c(1024), c(512), h8, w8),
        conv1("mod6.conv3", c(1024), c(2048), h8, w8),
        conv1("mod7.conv1", c(2048), c(1024), h8, w8),
        conv1("mod7.conv3", c(2048), c(4096), h8, w8),
        conv1("conv_x8", 4 * c(4096), c(2048), h8, w8),
        conv1("conv_x2", 4 * c(256), c(256), h4, w4),
        conv1("conv_x1", 4 * c(128), c(128), h2, w2),
        conv1("fusion.freq.1x1", c(2048), c(2048), h8, w8 / 2 + 1, bias: true),
        conv1("fusion.1x1", c(2048), c(2048), h8, w8, bias: true),
        conv1("fusion.cat", 2 * c(2048), c(2048), h8, w8, bias: true),
        conv1("final.0", c(256), c(128), h, w),
    ]
}

func runConv(_ cc: ConvCase, batch: Int) {
    let x = random([batch, cc.c, cc.h, cc.w], seed: 3)
    let wt = random([cc.k, cc.c, cc.r, cc.r], seed: 4)
    let b: Tensor? = cc.bias ? random([cc.k], seed: 5) : nil
    let p = cc.ho * cc.wo, crs = cc.c * cc.r * cc.r
    let flops = 2.0 * Double(batch * cc.k * p * crs)
    let shape = "\(batch)x\(cc.c)x\(cc.h)x\(cc.w) k\(cc.k) \(cc.r)x\(cc.r) s\(cc.stride) p\(cc.pad) d\(cc.dil)"
    // The same GEMMs as single sgemm calls on the whole batch: forward W·col (k × N·P, inner crs);
    // backward dW = gOut·colᵀ (k × crs, inner N·P) and dcol = Wᵀ·gOut (crs × N·P, inner k).
    report(op: "conv2d", layer: cc.layer, shape: shape, batch: batch, flops: flops,
           forward: { NN.conv2d(x, weight: wt, bias: b, stride: cc.stride, padding: cc.pad, dilation: cc.dil) },
           inputs: [x, wt] + (b.map { [$0] } ?? []),
           refForward: [GemmCall(transA: false, transB: false, m: cc.k, n: batch * p, k: crs)],
           refBackward: [GemmCall(transA: false, transB: true, m: cc.k, n: crs, k: batch * p),
                         GemmCall(transA: true, transB: false, m: crs, n: batch * p, k: cc.k)])
}

struct TransposeCase { let layer: String; let cin, cout, h, w: Int }
func transposeCases(h: Int, w: Int, div: Int) -> [TransposeCase] {
    func c(_ n: Int) -> Int { max(1, n / div) }
    return [TransposeCase(layer: "up8", cin: c(2048), cout: c(1024), h: h / 8, w: w / 8),
            TransposeCase(layer: "up4", cin: c(256) + c(1024), cout: c(512), h: h / 4, w: w / 4),
            TransposeCase(layer: "up2", cin: c(128) + c(512), cout: c(256), h: h / 2, w: w / 2)]
}

func runTranspose(_ tc: TransposeCase, batch: Int) {
    let x = random([batch, tc.cin, tc.h, tc.w], seed: 7)
    let wt = random([tc.cin, tc.cout, 2, 2], seed: 8)
    let hw = tc.h * tc.w, co4 = 4 * tc.cout
    let flops = 2.0 * Double(batch * hw * tc.cin * co4)
    report(op: "convTranspose2x2", layer: tc.layer, shape: "\(batch)x\(tc.cin)x\(tc.h)x\(tc.w) -> \(tc.cout)",
           batch: batch, flops: flops, forward: { NN.convTranspose2x2(x, weight: wt) }, inputs: [x, wt],
           refForward: [GemmCall(transA: true, transB: false, m: co4, n: batch * hw, k: tc.cin)],
           refBackward: [GemmCall(transA: false, transB: false, m: tc.cin, n: batch * hw, k: co4),
                         GemmCall(transA: false, transB: true, m: tc.cin, n: co4, k: batch * hw)])
}

struct LinearCase { let layer: String; let rows, fin, fout: Int }
func linearCases(h: Int, w: Int, div: Int, batch: Int) -> [LinearCase] {
    // Trajectory filter (official mode): Y is (B, P=c(256), Q=H, D=W), M = 2·D.
    let p = max(1, 256 / div)
    return [LinearCase(layer: "filter.pwconv1", rows: batch * p * h, fin: w, fout: 2 * w),
            LinearCase(layer: "filter.pwconv2", rows: batch * p * h, fin: 2 * w, fout: w)]
}

func runLinear(_ lc: LinearCase, batch: Int) {
    let x = random([lc.rows, lc.fin], seed: 10), wt = random([lc.fout, lc.fin], seed: 11)
    let flops = 2.0 * Double(lc.rows * lc.fin * lc.fout)
    report(op: "linear", layer: lc.layer, shape: "\(lc.rows)x\(lc.fin) -> \(lc.fout)", batch: batch, flops: flops,
           forward: { NN.linear(x, weight: wt, bias: nil) }, inputs: [x, wt],
           refForward: [GemmCall(transA: false, transB: true, m: lc.rows, n: lc.fout, k: lc.fin)],
           refBackward: [GemmCall(transA: false, transB: false, m: lc.rows, n: lc.fin, k: lc.fout),
                         GemmCall(transA: true, transB: false, m: lc.fout, n: lc.fin, k: lc.rows)])
}

func selected(_ layer: String) -> Bool { filter.map { layer.contains($0) } ?? true }

for batch in batches {
    for cc in convCases(h: ph, w: pw, div: pdiv) where selected(cc.layer) { runConv(cc, batch: batch) }
    for tc in transposeCases(h: ph, w: pw, div: pdiv) where selected(tc.layer) { runTranspose(tc, batch: batch) }
    for lc in linearCases(h: ph, w: pw, div: pdiv, batch: batch) where selected(lc.layer) { runLinear(lc, batch: batch) }
}
