/// Saving and loading models as safetensors checkpoints (CONVENTIONS.md "Checkpoints"):
/// the released state_dict names and shapes, `__metadata__` {"format": "infp",
/// "infp_config": <config JSON>, and "infp_calibration": <Calibration JSON> once calibrated},
/// written atomically.
extension INFPModel {
    public static let checkpointFormat = "infp"

    /// The model's state as safetensors values, in state_dict order.
    public func checkpointTensors() -> [(String, SafeTensors.Value)] {
        store.entries.map { entry in
            switch entry.slot {
            case let .parameter(t), let .buffer(t): return (entry.name, .float32(t))
            case let .counter(bn): return (entry.name, .int64(shape: [], values: [bn.numBatchesTracked]))
            }
        }
    }

    /// The metadata every checkpoint carries: the format tag and the config.
    var identityMetadata: [(String, String)] {
        [("format", INFPModel.checkpointFormat), ("infp_config", config.json.serialized)]
    }

    /// Writes the model (plus `extra` tensors and metadata, e.g. optimizer state) atomically.
    /// The file holds the network under the released state_dict names, then the memory of
    /// normal footage (`memory.*`) and `extra`; the config and calibration go in the metadata.
    public func save(to path: String, extra: [(String, SafeTensors.Value)] = [], metadata: [(String, String)] = []) throws {
        var meta = identityMetadata + metadata
        if let calibration { meta.append((Calibration.metadataKey, calibration.json.serialized)) }
        if let memory { meta.append((NormalMemory.metadataKey, memory.metadata)) }
        try SafeTensors.write(path, tensors: checkpointTensors() + (memory?.checkpointTensors ?? []) + extra, metadata: meta)
    }

    /// Writes the network and its config alone, atomically: exactly the released state_dict,
    /// for code that loads it strictly (the authors' PyTorch `load_state_dict`).
    public func saveWeights(to path: String) throws {
        try SafeTensors.write(path, tensors: checkpointTensors(), metadata: identityMetadata)
    }

    /// Loads a checkpoint written by `save` (or converted from the released PyTorch code).
    /// `allowExtraPrefixes` names tensor prefixes that belong to someone else (optimizer state).
    public static func load(from path: String, allowExtraPrefixes: [String] = ["optim.", NormalMemory.tensorPrefix]) throws -> (INFPModel, SafeTensors.File) {
        let file = try SafeTensors.read(path)
        guard let configText = file.metadata("infp_config") else {
            throw FileError.format("'\(path)' has no infp_config in its metadata: it was not written by infp (convert PyTorch checkpoints with `python -m infp.convert`)")
        }
        let config: ModelConfig
        do { config = try ModelConfig.parse(configText) } catch {
            throw FileError.format("'\(path)' has an invalid infp_config: \(error)")
        }
        // Refuse a config the file cannot hold before building it (a small file naming a huge
        // model would otherwise cost the model's memory and seconds of initialisation). The
        // estimate is an upper bound, up to ~10× above variants without fusion and few blocks.
        let needed = try INFPModel.estimatedParameterCount(config)
        guard file.elementCount >= needed / 32 else {
            throw FileError.format("'\(path)' holds \(file.elementCount) values, far fewer than the ~\(needed) of the model its infp_config describes")
        }
        try BufferPool.ensureAvailable(floats: needed)
        let model = try INFPModel(config: config)
        try model.loadState(from: file, source: path, allowExtraPrefixes: allowExtraPrefixes)
        if let text = file.metadata(Calibration.metadataKey) {
            do { model.calibration = try Calibration.parse(text) } catch {
                throw FileError.format("'\(path)' has an invalid \(Calibration.metadataKey): \(error)")
            }
        }
        model.memory = try NormalMemory.load(from: file, source: path, layout: model.memoryLayout)
        return (model, file)
    }

    /// Copies every tensor of `file` into the model, after checking all names, shapes and
    /// dtypes; reports every mismatch at once.
    public func loadState(from file: SafeTensors.File, source: String, allowExtraPrefixes: [String] = ["optim.", NormalMemory.tensorPrefix]) throws {
        var problems: [String] = []
        var seen = Set<String>()
        for (name, slot) in store.entries {
            seen.insert(name)
            guard let e = file.entry(name) else { problems.append("missing tensor '\(name)'"); continue }
            switch slot {
            case let .parameter(t), let .buffer(t):
                if e.shape != t.shape { problems.append("'\(name)' has shape \(e.shape), the model needs \(t.shape)") }
                else if ![.f32, .f64, .f16, .bf16].contains(e.dtype) { problems.append("'\(name)' has dtype \(e.dtype.rawValue), expected F32") }
            case .counter:
                if e.shape != [] && e.shape != [1] { problems.append("'\(name)' has shape \(e.shape), expected a scalar") }
                else if ![.i64, .i32].contains(e.dtype) { problems.append("'\(name)' has dtype \(e.dtype.rawValue), expected I64") }
            }
        }
        for e in file.entries where !seen.contains(e.name) && !allowExtraPrefixes.contains(where: { e.name.hasPrefix($0) }) {
            problems.append("unexpected tensor '\(e.name)' (not part of this model's config)")
        }
        if !problems.isEmpty {
            let shown = problems.prefix(40).joined(separator: "\n  ")
            let more = problems.count > 40 ? "\n  … and \(problems.count - 40) more" : ""
            throw FileError.format("'\(source)' does not fit the model (\(problems.count) problem\(problems.count == 1 ? "" : "s")):\n  \(shown)\(more)")
        }
        // Everything is read and checked before the model changes: a failure leaves it as it was.
        var values: [(Tensor, Tensor)] = [], counters: [(BatchNorm2d, Int64)] = [], nonFinite: [String] = []
        for (name, slot) in store.entries {
            let e = file.entry(name)!
            switch slot {
            case let .parameter(t), let .buffer(t):
                let v = try file.tensor(e)
                if !v.allFinite { nonFinite.append(name) }
                values.append((t, v))
            case let .counter(bn):
                let n = try file.integer(e)
                guard n >= 0 else { throw FileError.format("'\(source)': '\(name)' is \(n); a batch counter cannot be negative") }
                counters.append((bn, n))
            }
        }
        if !nonFinite.isEmpty {
            throw FileError.format("'\(source)' holds NaN or infinite values in \(nonFinite.count) tensor\(nonFinite.count == 1 ? "" : "s") ('\(nonFinite.prefix(5).joined(separator: "', '"))'\(nonFinite.count > 5 ? ", …" : "")): the file is damaged or the training that wrote it diverged")
        }
        for (t, v) in values { t.assign(v) }
        for (bn, n) in counters { bn.numBatchesTracked = n }
    }
}
