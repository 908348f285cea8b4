import CINFP

// Structs of the C API start with `size_t size`, set to sizeof the struct by the caller's
// header. An older header's struct is shorter: it ends after one of the fields that header had.
// A size that ends inside a field (a pointer half given, say) is refused rather than read.

/// A C struct whose `size` must end on one of its fields.
protocol SizedStruct {
    /// Byte offsets where each field ends, in order.
    static var fieldEnds: [Int] { get }
}

/// Where the field at `path` ends in `P`.
private func end<P, V>(_ path: KeyPath<P, V>) -> Int { MemoryLayout<P>.offset(of: path)! + MemoryLayout<V>.size }

/// Checks a caller's `size` field of a `P`: one of the field ends, or the padded size.
func checkStructSize<P: SizedStruct>(_ size: UInt, _ type: P.Type, _ name: String) throws {
    let ours = MemoryLayout<P>.size
    guard size >= UInt(MemoryLayout<UInt>.size) else {
        throw APIError.invalid("\(name)->size is \(size); set it to sizeof the struct (\(ours)) or start from the *_default_params() function")
    }
    guard size <= UInt(ours) else {
        throw APIError.invalid("\(name)->size is \(size), larger than this library's struct (\(ours) bytes): the header is newer than libinfp")
    }
    guard size == UInt(ours) || P.fieldEnds.contains(Int(size)) else {
        throw APIError.invalid("\(name)->size is \(size), which ends inside a field of the struct (fields end at \(P.fieldEnds.map(String.init).joined(separator: ", "))); set it to sizeof the struct (\(ours))")
    }
}

extension infp_conv2d_params: SizedStruct {
    static let fieldEnds = [end(\Self.size), end(\Self.stride), end(\Self.padding), end(\Self.dilation), end(\Self.n_threads)]
}

extension infp_model_params: SizedStruct {
    static let fieldEnds = [end(\Self.size), end(\Self.preset), end(\Self.config_json), end(\Self.seed), end(\Self.n_threads)]
}

extension infp_fit_params: SizedStruct {
    static let fieldEnds = [end(\Self.size), end(\Self.epochs), end(\Self.batch_size), end(\Self.learning_rate), end(\Self.milestones),
                            end(\Self.n_milestones), end(\Self.gamma), end(\Self.seed), end(\Self.checkpoint_every),
                            end(\Self.checkpoint_path), end(\Self.resume_path), end(\Self.progress), end(\Self.on_step), end(\Self.user),
                            end(\Self.max_minutes), end(\Self.schedule), end(\Self.warmup), end(\Self.final_lr_factor),
                            end(\Self.ema_decay), end(\Self.bn_batches)]
}

extension infp_score_params: SizedStruct {
    static let fieldEnds = [end(\Self.size), end(\Self.method), end(\Self.patch_size), end(\Self.smoothing)]
}

extension infp_calibration: SizedStruct {
    static let fieldEnds = [end(\Self.size), end(\Self.false_alarm_rate), end(\Self.psnr_mean), end(\Self.psnr_std), end(\Self.threshold),
                            end(\Self.n_frames), end(\Self.n_videos), end(\Self.method)]
}

extension infp_stream_params: SizedStruct {
    static let fieldEnds = [end(\Self.size), end(\Self.n_threads), end(\Self.min_event_frames), end(\Self.release_frames),
                            end(\Self.hysteresis), end(\Self.threshold_override)]
}

extension infp_stream_result: SizedStruct {
    static let fieldEnds = [end(\Self.size), end(\Self.frame_index), end(\Self.has_score), end(\Self.psnr), end(\Self.anomaly_score),
                            end(\Self.threshold), end(\Self.alert), end(\Self.event_started), end(\Self.event_ended), end(\Self.event_id)]
}
