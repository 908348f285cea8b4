import CINFP
import INFPCore

// Anomaly scores of whole videos (frames 4..n-1) by a chosen method, and the memory of
// normal footage the default method compares against.

let scoreMethods: [ScoreMethod] = [.psnr, .patch, .memory]  // by infp_score_method value

@_cdecl("infp_score_default_params")
public func infp_score_default_params() -> infp_score_params {
    let d = ScoreOptions()
    return infp_score_params(size: MemoryLayout<infp_score_params>.size, method: Int32(scoreMethods.firstIndex(of: d.method)!),
                             patch_size: Int32(d.patchSize), smoothing: Int32(d.smoothing))
}

func scoreOptions(_ p: infp_score_params, _ config: ModelConfig) throws -> ScoreOptions {
    guard p.method >= 0, Int(p.method) < scoreMethods.count else {
        throw APIError.invalid("method is \(p.method); use INFP_SCORE_PSNR (0), INFP_SCORE_PATCH (1) or INFP_SCORE_MEMORY (2)")
    }
    let o = ScoreOptions(method: scoreMethods[Int(p.method)], patchSize: Int(p.patch_size), smoothing: Int(p.smoothing))
    do { try o.validate(height: config.height, width: config.width) } catch let e as ScoreOptions.InputError {
        throw APIError.invalid(e.description)
    }
    return o
}

@_cdecl("infp_model_anomaly_scores")
public func infp_model_anomaly_scores(_ model: OpaquePointer?, _ video: UnsafePointer<infp_video>?,
                                      _ params: UnsafePointer<infp_score_params>?, _ scores: UnsafeMutablePointer<Float>?,
                                      _ nScores: Int64) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let cfg = h.model.config
        let p = params == nil ? infp_score_default_params() : try readParams(params, defaults: infp_score_default_params(), "params")
        let options = try scoreOptions(p, cfg)
        let v = try readScoredVideo(video, cfg, count: nScores, "n_scores")
        let out = try require(scores, "scores")
        let values: [Double] = try h.lock.reading {
            try h.run {
                do { return try h.model.anomalyScores(v, options: options) } catch let e as INFPModel.ScoringError {
                    throw APIError.invalid(e.description)
                }
            }
        }
        for (i, s) in values.enumerated() { out[i] = Float(s) }
    }
}

@_cdecl("infp_model_remember")
public func infp_model_remember(_ model: OpaquePointer?, _ videos: UnsafePointer<infp_video>?, _ nVideos: Int64) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let list = try readVideos(videos, nVideos, h.model.config)
        for (i, v) in list.enumerated() where v.frames < NormalMemory.clipFrames {
            throw APIError.shape("videos[\(i)] has \(v.frames) frames; the memory needs at least \(NormalMemory.clipFrames) per video")
        }
        // Encoding only reads the model; storing the result is a change (exclusive).
        let memory: NormalMemory = try h.lock.reading {
            try h.run {
                do { return try h.model.buildMemory(normal: list) } catch let e as INFPModel.ScoringError { throw APIError.invalid(e.description) }
            }
        }
        try h.lock.writing { h.model.memory = memory }
        log(.info, "remembered \(memory.features.shape[0]) frames of \(memory.videoLengths.count) normal videos (\(memory.descriptorSize) features per frame)")
    }
}

@_cdecl("infp_model_memory_frames")
public func infp_model_memory_frames(_ model: OpaquePointer?, _ frames: UnsafeMutablePointer<Int64>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let out = try require(frames, "frames")
        out.pointee = Int64(try h.lock.reading { h.model.memory?.features.shape[0] ?? 0 })
    }
}
