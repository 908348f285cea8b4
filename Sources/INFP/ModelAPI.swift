import CINFP
import INFPCore

/// What an `infp_model*` points to.
final class ModelHandle {
    let model: INFPModel
    var threads: Int
    /// Gradients of the last loss_and_grads call, by parameter name.
    var grads: [String: Tensor] = [:]
    /// Optimizer state of infp_model_train_step, created on first use.
    var stepTrainer: Trainer?
    let lock = ReadWriteLock()

    init(model: INFPModel, threads: Int) { self.model = model; self.threads = threads }

    func run<T>(_ body: () throws -> T) rethrows -> T { try Parallel.withThreads(threads, body) }

    /// The float tensor behind a state_dict name (counters are not float tensors).
    func tensor(named name: String) throws -> Tensor? {
        switch model.store.slot(name) {
        case let .parameter(t)?, let .buffer(t)?: return t
        case .counter?: return nil
        case nil: throw APIError.invalid("the model has no tensor named '\(name)' (list them with infp_model_tensor_info)")
        }
    }
}

func modelHandle(_ p: OpaquePointer?) throws -> ModelHandle {
    try HandleRegistry.lookup(UnsafeRawPointer(p), as: ModelHandle.self, "model")
}

func threadCount(_ n: Int32) throws -> Int {
    guard n >= 0, n <= 1024 else { throw APIError.invalid("n_threads is \(n); use 0 (all cores) or a positive count up to 1024") }
    return Int(n)
}

/// Maps engine and file errors to API errors with their status.
func apiError(_ error: Error) -> Error {
    switch error {
    case let e as FileError: return e.kind == .io ? APIError.io(e.description) : APIError.format(e.description)
    case let e as ConfigError: return APIError.invalid(e.description)
    case let e as JSON.ParseError: return APIError.invalid("config_json: \(e.description)")
    case let e as OutOfMemory: return APIError.outOfMemory(e.description)
    default: return error
    }
}

func translatingErrors<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch { throw apiError(error) }
}

func readString(_ p: UnsafePointer<CChar>?, _ name: String) throws -> String {
    String(cString: try require(p, name))
}

/// A caller's file path, byte for byte (names that are not UTF-8 included).
func readPath(_ p: UnsafePointer<CChar>?, _ name: String) throws -> String {
    let path = SystemPath.decode(cString: try require(p, name))
    guard !path.isEmpty else { throw APIError.invalid("\(name) is empty") }
    return path
}

@_cdecl("infp_model_default_params")
public func infp_model_default_params() -> infp_model_params {
    infp_model_params(size: MemoryLayout<infp_model_params>.size, preset: nil, config_json: nil, seed: 0, n_threads: 0)
}

@_cdecl("infp_model_create")
public func infp_model_create(_ params: UnsafePointer<infp_model_params>?, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> infp_status {
    guarded {
        let out = try require(out, "out")
        out.pointee = nil
        let p = try readParams(params, defaults: infp_model_default_params(), "params")
        let threads = try threadCount(p.n_threads)
        let model: INFPModel = try translatingErrors {
            var config = try ModelConfig.preset(p.preset.map { String(cString: $0) } ?? "small")
            if let text = p.config_json {
                config = try config.applying(try JSON.parse(String(cString: text)))
            }
            try config.validate()
            let probe = try INFPModel.estimatedParameterCount(config)
            try ensureAllocatable(floats: probe)
            return try Parallel.withThreads(threads) { try INFPModel(config: config, seed: p.seed) }
        }
        out.pointee = OpaquePointer(HandleRegistry.register(ModelHandle(model: model, threads: threads)))
    }
}

@_cdecl("infp_model_load")
public func infp_model_load(_ path: UnsafePointer<CChar>?, _ nThreads: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> infp_status {
    guarded {
        let out = try require(out, "out")
        out.pointee = nil
        let path = try readPath(path, "path")
        let threads = try threadCount(nThreads)
        let (model, _) = try translatingErrors { try INFPModel.load(from: path) }
        out.pointee = OpaquePointer(HandleRegistry.register(ModelHandle(model: model, threads: threads)))
    }
}

@_cdecl("infp_model_save")
public func infp_model_save(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let path = try readPath(path, "path")
        try h.lock.reading { try translatingErrors { try h.model.save(to: path) } }
    }
}

@_cdecl("infp_model_save_weights")
public func infp_model_save_weights(_ model: OpaquePointer?, _ path: UnsafePointer<CChar>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let path = try readPath(path, "path")
        try h.lock.reading { try translatingErrors { try h.model.saveWeights(to: path) } }
    }
}

@_cdecl("infp_model_free")
public func infp_model_free(_ model: OpaquePointer?) {
    HandleRegistry.release(UnsafeRawPointer(model))
}

@_cdecl("infp_model_set_threads")
public func infp_model_set_threads(_ model: OpaquePointer?, _ n: Int32) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let t = try threadCount(n)
        try h.lock.writing { h.threads = t }
    }
}

@_cdecl("infp_model_num_parameters")
public func infp_model_num_parameters(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        try require(out, "out").pointee = Int64(h.model.parameterCount)
    }
}

/// Copies a NUL-terminated string into a caller's buffer when it fits.
func copyString(_ s: String, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int, _ needed: UnsafeMutablePointer<Int>?) throws {
    let bytes = Array(s.utf8)
    needed?.pointee = bytes.count + 1
    guard let buf else {
        if size != 0 { throw APIError.invalid("buf is NULL but buf_size is \(size)") }
        return
    }
    guard size >= bytes.count + 1 else {
        throw APIError.invalid("buf_size \(size) is too small: \(bytes.count + 1) bytes needed")
    }
    for (i, b) in bytes.enumerated() { buf[i] = CChar(bitPattern: b) }
    buf[bytes.count] = 0
}

@_cdecl("infp_model_config_json")
public func infp_model_config_json(_ model: OpaquePointer?, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int,
                                   _ needed: UnsafeMutablePointer<Int>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        try copyString(h.model.config.json.serialized, buf, size, needed)
    }
}

/// Checks a clip batch against the model: (B, T, C, H, W) with the config's sizes.
func clipShape(_ p: UnsafePointer<Int64>?, _ c: ModelConfig, _ name: String) throws -> [Int] {
    let s = try readShape(p, rank: 5, name)
    let want = [c.frames, c.imageChannels, c.height, c.width]
    guard Array(s[1...]) == want else {
        throw APIError.shape("\(name) is \(describe(s)); this model needs (B, \(want.map(String.init).joined(separator: ", ")))")
    }
    return s
}

func frameShape(_ p: UnsafePointer<Int64>?, batch: Int, _ c: ModelConfig, _ name: String) throws -> [Int] {
    let s = try readShape(p, rank: 4, name)
    let want = [batch, c.imageChannels, c.height, c.width]
    guard s == want else { throw APIError.shape("\(name) is \(describe(s)); expected \(describe(want))") }
    return s
}

@_cdecl("infp_model_predict")
public func infp_model_predict(_ model: OpaquePointer?, _ clips: UnsafePointer<Float>?, _ clipsShape: UnsafePointer<Int64>?,
                               _ frames: UnsafeMutablePointer<Float>?, _ framesShape: UnsafePointer<Int64>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let cs = try clipShape(clipsShape, h.model.config, "clips_shape")
        let fs = try frameShape(framesShape, batch: cs[0], h.model.config, "frames_shape")
        let input = try require(clips, "clips"), output = try require(frames, "frames")
        try h.lock.reading {
            // A few clips at a time: memory stays flat however many clips come (evaluation-mode
            // BatchNorm uses running statistics, so batches are independent).
            let clipSize = cs[1...].reduce(1, *), frameSize = fs[1...].reduce(1, *), chunk = 8
            var first = 0
            while first < cs[0] {
                let b = min(chunk, cs[0] - first)
                let x = tensor(copying: input + first * clipSize, shape: [b] + cs[1...])
                try requireFinite(x, "clips")
                let y = h.run { () -> Tensor in
                    var ctx = ForwardContext(training: false)
                    return h.model.forward(x, &ctx)
                }
                try copyOut(y, to: output + first * frameSize, count: b * frameSize, "frames")
                first += b
            }
        }
    }
}

@_cdecl("infp_model_tensor_count")
public func infp_model_tensor_count(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<Int64>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        try require(out, "out").pointee = Int64(h.model.store.entries.count)
    }
}

@_cdecl("infp_model_tensor_info")
public func infp_model_tensor_info(_ model: OpaquePointer?, _ index: Int64, _ name: UnsafeMutablePointer<CChar>?, _ nameSize: Int,
                                   _ rank: UnsafeMutablePointer<Int32>?, _ shape: UnsafeMutablePointer<Int64>?,
                                   _ kind: UnsafeMutablePointer<infp_tensor_kind>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let entries = h.model.store.entries
        guard index >= 0, index < Int64(entries.count) else {
            throw APIError.invalid("index \(index) is out of range 0..<\(entries.count)")
        }
        let e = entries[Int(index)]
        let dims: [Int]
        switch e.slot {
        case let .parameter(t): dims = t.shape; kind?.pointee = INFP_TENSOR_PARAMETER
        case let .buffer(t): dims = t.shape; kind?.pointee = INFP_TENSOR_BUFFER
        case .counter: dims = []; kind?.pointee = INFP_TENSOR_COUNTER
        }
        if let name, nameSize > 0 {
            let bytes = Array(e.name.utf8.prefix(nameSize - 1))
            for (i, b) in bytes.enumerated() { name[i] = CChar(bitPattern: b) }
            name[bytes.count] = 0
        }
        rank?.pointee = Int32(dims.count)
        if let shape { for (i, d) in dims.prefix(8).enumerated() { shape[i] = Int64(d) } }
    }
}

@_cdecl("infp_model_tensor_get")
public func infp_model_tensor_get(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Float>?,
                                  _ count: Int64) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let n = try readString(name, "name")
        let out = try require(out, "out")
        try h.lock.reading {
            if let t = try h.tensor(named: n) {
                guard count == Int64(t.count) else { throw APIError.shape("'\(n)' has \(t.count) values, count is \(count)") }
                out.update(from: t.data, count: t.count)
            } else if case let .counter(bn)? = h.model.store.slot(n) {
                guard count == 1 else { throw APIError.shape("'\(n)' is a scalar counter, count is \(count)") }
                out.pointee = Float(bn.numBatchesTracked)
            }
        }
    }
}

@_cdecl("infp_model_tensor_set")
public func infp_model_tensor_set(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ values: UnsafePointer<Float>?,
                                  _ count: Int64) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let n = try readString(name, "name")
        let values = try require(values, "values")
        try h.lock.writing {
            if let t = try h.tensor(named: n) {
                guard count == Int64(t.count) else { throw APIError.shape("'\(n)' has \(t.count) values, count is \(count)") }
                t.data.update(from: values, count: t.count)
            } else if case let .counter(bn)? = h.model.store.slot(n) {
                guard count == 1 else { throw APIError.shape("'\(n)' is a scalar counter, count is \(count)") }
                guard values.pointee >= 0, values.pointee.rounded() == values.pointee, values.pointee < 9.2e18 else {
                    throw APIError.invalid("'\(n)' must be a whole number between 0 and 2^63, got \(values.pointee)")
                }
                bn.numBatchesTracked = Int64(values.pointee)
            }
        }
    }
}

@_cdecl("infp_model_loss_and_grads")
public func infp_model_loss_and_grads(_ model: OpaquePointer?, _ clips: UnsafePointer<Float>?, _ clipsShape: UnsafePointer<Int64>?,
                                      _ targets: UnsafePointer<Float>?, _ targetsShape: UnsafePointer<Int64>?,
                                      _ loss: UnsafeMutablePointer<Float>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let cs = try clipShape(clipsShape, h.model.config, "clips_shape")
        let ts = try frameShape(targetsShape, batch: cs[0], h.model.config, "targets_shape")
        let input = try require(clips, "clips"), target = try require(targets, "targets")
        let lossOut = try require(loss, "loss")
        try ensureAllocatable(floats: try checkedMul(cs[0], h.model.trainingFloatsPerClip, "the batch's training memory"))
        try h.lock.writing {
            let x = tensor(copying: input, shape: cs), g = tensor(copying: target, shape: ts)
            try requireFinite(x, "clips"); try requireFinite(g, "targets")
            let params = h.model.store.parameters
            for (_, t) in params { t.grad = nil }
            let value: Float = h.run {
                withGradients {
                    var ctx = ForwardContext(training: true, rng: Rng(seed: 0x1f2e3d))
                    let l = Loss.forConfig(h.model.config, h.model.forward(x, &ctx), g)
                    l.backward()
                    return l.item
                }
            }
            h.grads = [:]
            for (name, t) in params { if let gr = t.grad { h.grads[name] = gr }; t.grad = nil }
            guard value.isFinite else { throw APIError.invalid("the loss is not finite (\(value)): check the inputs for NaN or infinite values") }
            lossOut.pointee = value
        }
    }
}

@_cdecl("infp_model_grad_get")
public func infp_model_grad_get(_ model: OpaquePointer?, _ name: UnsafePointer<CChar>?, _ out: UnsafeMutablePointer<Float>?,
                                _ count: Int64) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let n = try readString(name, "name")
        let out = try require(out, "out")
        try h.lock.reading {
            guard case let .parameter(t)? = h.model.store.slot(n) else {
                throw APIError.invalid("'\(n)' is not a trainable parameter of this model")
            }
            guard count == Int64(t.count) else { throw APIError.shape("'\(n)' has \(t.count) values, count is \(count)") }
            try copyOut(h.grads[n], to: out, count: t.count, n)
        }
    }
}
