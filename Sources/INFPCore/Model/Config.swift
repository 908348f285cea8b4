/// A config problem, naming the field at fault.
public struct ConfigError: Error, CustomStringConvertible {
    public let field: String
    public let message: String
    public var description: String { "config field '\(field)': \(message)" }
}

/// The model's configuration (INFP-SPEC §1). Every variant of the paper is a field.
public struct ModelConfig: Equatable {
    public enum FilterMode: String { case official, spatial }
    public enum FreqMode: String { case polar, cartesian }
    public enum Loss: String { case official, paper }

    public var height = 224
    public var width = 288
    public var frames = 4
    public var imageChannels = 3
    public var widthDiv = 1
    public var blocks = [3, 3, 6, 3, 1, 1]
    public var fusion = true
    public var trajectoryFilter = true
    public var filterMode = FilterMode.official
    public var filterBases = 4
    public var freqMode = FreqMode.polar
    public var fusionTsmDiv = 8
    public var baselineTsmDiv = 16
    public var dropout = true
    public var loss = Loss.official
    public var lossAlpha: Float = 0.5

    public init() {}

    public static let presetNames = ["official", "small", "tiny"]

    /// The released model (317.4 M parameters, 224×288).
    public static var official: ModelConfig { ModelConfig() }

    /// CPU training in minutes; the default for the demo and line software.
    public static var small: ModelConfig {
        var c = ModelConfig()
        c.height = 112; c.width = 144; c.widthDiv = 8; c.blocks = [1, 1, 1, 1, 1, 1]
        return c
    }

    /// Unit tests.
    public static var tiny: ModelConfig {
        var c = ModelConfig()
        c.height = 32; c.width = 48; c.widthDiv = 32; c.blocks = [1, 1, 1, 1, 1, 1]
        return c
    }

    public static func preset(_ name: String) throws -> ModelConfig {
        switch name {
        case "official": return .official
        case "small": return .small
        case "tiny": return .tiny
        default: throw ConfigError(field: "preset", message: "unknown preset '\(name)'; choose one of \(presetNames.joined(separator: ", "))")
        }
    }

    /// Official channel count `n` scaled by width_div (c(n) in the spec).
    public func c(_ n: Int) -> Int { n / widthDiv }

    /// Checks every field; throws naming the first field at fault.
    public func validate() throws {
        func fail(_ f: String, _ m: String) throws -> Never { throw ConfigError(field: f, message: m) }
        if height < 8 || height % 8 != 0 || height > 4096 { try fail("height", "must be a multiple of 8 between 8 and 4096, got \(height)") }
        if width < 8 || width % 8 != 0 || width > 4096 { try fail("width", "must be a multiple of 8 between 8 and 4096, got \(width)") }
        if frames != 4 { try fail("frames", "must be 4 (the model predicts frame t+4 from frames t..t+3), got \(frames)") }
        if imageChannels != 3 { try fail("image_channels", "must be 3 (RGB), got \(imageChannels)") }
        if ![1, 2, 4, 8, 16, 32, 64].contains(widthDiv) { try fail("width_div", "must be one of 1, 2, 4, 8, 16, 32, 64 (it must divide every channel count), got \(widthDiv)") }
        if blocks.count != 6 { try fail("blocks", "needs 6 entries (modules mod2..mod7), got \(blocks.count)") }
        if let b = blocks.first(where: { $0 < 1 || $0 > 64 }) { try fail("blocks", "every entry must be between 1 and 64, got \(b)") }
        if filterBases < 1 || filterBases > 64 { try fail("filter_bases", "must be between 1 and 64, got \(filterBases)") }
        let fusionChannels = c(2048)
        if fusionChannels % frames != 0 { try fail("width_div", "c(2048) = \(fusionChannels) must be divisible by frames = \(frames)") }
        if fusionTsmDiv < 1 { try fail("fusion_tsm_div", "must be at least 1, got \(fusionTsmDiv)") }
        if baselineTsmDiv < 1 { try fail("baseline_tsm_div", "must be at least 1, got \(baselineTsmDiv)") }
        if !(lossAlpha >= 0 && lossAlpha <= 1) { try fail("loss_alpha", "must be in [0, 1], got \(lossAlpha)") }
    }

    // MARK: JSON (field names as in the spec; the checkpoint's __metadata__["infp_config"])

    public var json: JSON {
        .object([
            ("height", .number(Double(height))), ("width", .number(Double(width))),
            ("frames", .number(Double(frames))), ("image_channels", .number(Double(imageChannels))),
            ("width_div", .number(Double(widthDiv))), ("blocks", .array(blocks.map { .number(Double($0)) })),
            ("fusion", .bool(fusion)), ("trajectory_filter", .bool(trajectoryFilter)),
            ("filter_mode", .string(filterMode.rawValue)), ("filter_bases", .number(Double(filterBases))),
            ("freq_mode", .string(freqMode.rawValue)), ("fusion_tsm_div", .number(Double(fusionTsmDiv))),
            ("baseline_tsm_div", .number(Double(baselineTsmDiv))), ("dropout", .bool(dropout)),
            ("loss", .string(loss.rawValue)), ("loss_alpha", .number(Double(lossAlpha))),
        ])
    }

    public static let fieldNames = ["height", "width", "frames", "image_channels", "width_div", "blocks", "fusion",
                                    "trajectory_filter", "filter_mode", "filter_bases", "freq_mode", "fusion_tsm_div",
                                    "baseline_tsm_div", "dropout", "loss", "loss_alpha"]

    /// Applies the fields present in `json` on top of `self` (unknown fields are an error),
    /// then validates. A "preset" key, if present, is applied first.
    public func applying(_ json: JSON) throws -> ModelConfig {
        guard let pairs = json.object else { throw ConfigError(field: "config", message: "must be a JSON object") }
        var c = self
        if let p = json["preset"] {
            guard let name = p.string else { throw ConfigError(field: "preset", message: "must be a string") }
            c = try ModelConfig.preset(name)
        }
        func int(_ k: String, _ v: JSON) throws -> Int {
            guard let i = v.int else { throw ConfigError(field: k, message: "must be an integer, got \(v.serialized)") }
            return i
        }
        func bool(_ k: String, _ v: JSON) throws -> Bool {
            guard let b = v.bool else { throw ConfigError(field: k, message: "must be true or false, got \(v.serialized)") }
            return b
        }
        func choice<E: RawRepresentable>(_ k: String, _ v: JSON, _ all: [E]) throws -> E where E.RawValue == String {
            guard let s = v.string, let e = E(rawValue: s) else {
                throw ConfigError(field: k, message: "must be one of \(all.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")), got \(v.serialized)")
            }
            return e
        }
        for (k, v) in pairs {
            switch k {
            case "preset": continue
            case "height": c.height = try int(k, v)
            case "width": c.width = try int(k, v)
            case "frames": c.frames = try int(k, v)
            case "image_channels": c.imageChannels = try int(k, v)
            case "width_div": c.widthDiv = try int(k, v)
            case "blocks":
                guard let a = v.array else { throw ConfigError(field: k, message: "must be a list of 6 integers") }
                c.blocks = try a.map { try int(k, $0) }
            case "fusion": c.fusion = try bool(k, v)
            case "trajectory_filter": c.trajectoryFilter = try bool(k, v)
            case "filter_mode": c.filterMode = try choice(k, v, [FilterMode.official, .spatial])
            case "filter_bases": c.filterBases = try int(k, v)
            case "freq_mode": c.freqMode = try choice(k, v, [FreqMode.polar, .cartesian])
            case "fusion_tsm_div": c.fusionTsmDiv = try int(k, v)
            case "baseline_tsm_div": c.baselineTsmDiv = try int(k, v)
            case "dropout": c.dropout = try bool(k, v)
            case "loss": c.loss = try choice(k, v, [Loss.official, .paper])
            case "loss_alpha":
                guard let n = v.number else { throw ConfigError(field: k, message: "must be a number") }
                c.lossAlpha = Float(n)
            default:
                throw ConfigError(field: k, message: "unknown field; known fields: preset, \(ModelConfig.fieldNames.joined(separator: ", "))")
            }
        }
        try c.validate()
        return c
    }

    /// Parses a config JSON text (as stored in checkpoints), starting from the official preset.
    public static func parse(_ text: String) throws -> ModelConfig {
        let json: JSON
        do { json = try JSON.parse(text) } catch { throw ConfigError(field: "config", message: "\(error)") }
        return try ModelConfig.official.applying(json)
    }
}
