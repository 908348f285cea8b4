// Times the model: evaluation forward (batch 1) and a training forward+backward (batch 8)
// per preset, with peak memory. One JSON line per figure. Run through `make bench`, which
// puts PyTorch's figures for the same model beside these (bench/compare.py).
import Glibc
import INFPCore

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

func peakRSSMegabytes() -> Double {
    var usage = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
    return Double(usage.ru_maxrss) / 1024
}

/// Median seconds of `runs` calls after one warm-up call.
func median(runs: Int, _ body: () -> Void) -> Double {
    body()
    var times: [Double] = []
    for _ in 0..<runs { let t0 = now(); body(); times.append(now() - t0) }
    return times.sorted()[times.count / 2]
}

func emit(_ fields: [(String, String)]) {
    print("{" + fields.map { "\"\($0.0)\": \($0.1)" }.joined(separator: ", ") + "}")
}

let args = CommandLine.arguments
let presets = args.count > 1 ? Array(args[1...]) : ["tiny", "small"]
let threads = Int(getenv("INFP_THREADS").map { String(cString: $0) } ?? "") ?? 2

for preset in presets {
    var config = try ModelConfig.preset(preset)
    config.dropout = false
    let model = try INFPModel(config: config, seed: 1)
    var rng = Rng(seed: 2)
    let runs = preset == "official" ? 2 : 5
    Parallel.withThreads(threads) {
        let clip = Tensor.uniform([1, 4, 3, config.height, config.width], -1, 1, rng: &rng)
        let eval = median(runs: runs) {
            var ctx = ForwardContext(training: false)
            _ = model.forward(clip, &ctx)
        }
        emit([("bench", "\"model\""), ("preset", "\"\(preset)\""), ("figure", "\"eval_forward_batch1_ms\""),
              ("value", String(eval * 1000)), ("threads", "\(threads)"), ("peak_rss_mb", String(peakRSSMegabytes()))])
        guard preset != "official" else { return }
        let batch = Tensor.uniform([8, 4, 3, config.height, config.width], -1, 1, rng: &rng)
        let target = Tensor.uniform([8, 3, config.height, config.width], -1, 1, rng: &rng)
        let train = median(runs: 3) {
            withGradients {
                var ctx = ForwardContext(training: true)
                let loss = Loss.official(model.forward(batch, &ctx), target)
                loss.backward()
            }
            for (_, p) in model.store.parameters { p.grad = nil }
        }
        emit([("bench", "\"model\""), ("preset", "\"\(preset)\""), ("figure", "\"train_forward_backward_batch8_s\""),
              ("value", String(train)), ("threads", "\(threads)"), ("peak_rss_mb", String(peakRSSMegabytes()))])
    }
}
