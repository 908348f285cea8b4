import CINFP
import Glibc
import INFPCore

// Live streams, calibration and the Pillow-compatible resize (include/infp.h, "live streams").

/// Largest frame side accepted from callers (pixels): far above any camera, low enough that
/// byte counts cannot overflow.
let maxFrameSide: Int64 = 1 << 16

/// What an `infp_stream*` points to. It holds its model handle (strongly: freeing the model
/// first is fine) and takes the model's read lock while it runs the network.
final class StreamHandle {
    let model: ModelHandle
    let stream: FrameStream
    let threads: Int
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)

    init(model: ModelHandle, stream: FrameStream, threads: Int) {
        self.model = model; self.stream = stream; self.threads = threads
        pthread_mutex_init(mutex, nil)
    }

    deinit { pthread_mutex_destroy(mutex); mutex.deallocate() }

    /// Calls on one stream are serialised.
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

func streamHandle(_ p: OpaquePointer?) throws -> StreamHandle {
    try HandleRegistry.lookup(UnsafeRawPointer(p), as: StreamHandle.self, "stream")
}

/// Writes an output struct whose first field is `size_t size`, set by the caller: only its
/// first `size` bytes are written (an older header's smaller struct is fine).
func writeSized<P: SizedStruct>(_ value: P, to pointer: UnsafeMutablePointer<P>?, _ name: String) throws {
    let p = try require(pointer, name)
    let raw = UnsafeMutableRawPointer(p)
    let size = raw.loadUnaligned(as: UInt.self)
    try checkStructSize(size, P.self, name)
    var v = value
    withUnsafeMutableBytes(of: &v) { src in
        src.storeBytes(of: size, toByteOffset: 0, as: UInt.self)
        raw.copyMemory(from: src.baseAddress!, byteCount: Int(size))
    }
}

/// A caller's frame: checked sizes, channels and row stride (0 = packed), before any read.
struct FrameArgs {
    let pixels: UnsafePointer<UInt8>
    let height: Int, width: Int, channels: Int, rowStride: Int
}

func readFrame(_ pixels: UnsafePointer<UInt8>?, _ height: Int64, _ width: Int64, _ channels: Int64, _ stride: Int64,
               _ name: String) throws -> FrameArgs {
    let p = try require(pixels, name)
    guard height >= 1, height <= maxFrameSide, width >= 1, width <= maxFrameSide else {
        throw APIError.shape("the frame is \(height)×\(width); height and width must be in 1...\(maxFrameSide)")
    }
    guard channels == 1 || channels == 3 || channels == 4 else {
        throw APIError.invalid("channels is \(channels); use 3 (RGB), 4 (RGBA/RGBX) or 1 (grey)")
    }
    let packed = width * channels
    guard stride == 0 || stride >= packed else {
        throw APIError.invalid("row_stride_bytes is \(stride), less than width × channels = \(packed) (0 means packed rows)")
    }
    guard stride <= Int64(maxElements) / height else {
        throw APIError.invalid("row_stride_bytes is \(stride): the frame would span more than 2^40 bytes")
    }
    return FrameArgs(pixels: p, height: Int(height), width: Int(width), channels: Int(channels),
                     rowStride: Int(stride == 0 ? packed : stride))
}

@_cdecl("infp_resize_rgb8")
public func infp_resize_rgb8(_ src: UnsafePointer<UInt8>?, _ height: Int64, _ width: Int64, _ channels: Int64,
                             _ rowStride: Int64, _ dst: UnsafeMutablePointer<UInt8>?, _ outHeight: Int64,
                             _ outWidth: Int64, _ dstCount: Int64) -> infp_status {
    guarded {
        let f = try readFrame(src, height, width, channels, rowStride, "src")
        let out = try require(dst, "dst")
        guard outHeight >= 1, outHeight <= maxFrameSide, outWidth >= 1, outWidth <= maxFrameSide else {
            throw APIError.shape("the output is \(outHeight)×\(outWidth); out_height and out_width must be in 1...\(maxFrameSide)")
        }
        guard dstCount == outHeight * outWidth * 3 else {
            throw APIError.shape("dst_count is \(dstCount); an RGB frame of \(outHeight)×\(outWidth) has \(outHeight * outWidth * 3) bytes")
        }
        let plan = ResizePlan(inHeight: f.height, inWidth: f.width, outHeight: Int(outHeight), outWidth: Int(outWidth))
        Parallel.withThreads(1) { plan.run(f.pixels, channels: f.channels, rowStride: f.rowStride, into: out) }
    }
}

// MARK: calibration

func cCalibration(_ c: Calibration?) -> infp_calibration {
    guard let c else {
        return infp_calibration(size: MemoryLayout<infp_calibration>.size, false_alarm_rate: .nan, psnr_mean: .nan,
                                psnr_std: .nan, threshold: .nan, n_frames: 0, n_videos: 0, method: Int32(INFP_SCORE_PSNR.rawValue))
    }
    return infp_calibration(size: MemoryLayout<infp_calibration>.size, false_alarm_rate: Float(c.falseAlarmRate),
                            psnr_mean: Float(c.mean), psnr_std: Float(c.std), threshold: Float(c.threshold),
                            n_frames: Int64(c.frames), n_videos: Int64(c.videos),
                            method: Int32(c.method == "memory" ? INFP_SCORE_MEMORY.rawValue : INFP_SCORE_PSNR.rawValue))
}

/// Calibration methods by infp_score_method value (patch scores are not calibrated).
func calibrationMethod(_ m: Int32) throws -> String {
    switch m {
    case Int32(INFP_SCORE_PSNR.rawValue): return "psnr"
    case Int32(INFP_SCORE_MEMORY.rawValue): return "memory"
    default: throw APIError.invalid("method is \(m); calibration takes INFP_SCORE_PSNR (0) or INFP_SCORE_MEMORY (2), or -1 for the default")
    }
}

@_cdecl("infp_model_calibrate")
public func infp_model_calibrate(_ model: OpaquePointer?, _ videos: UnsafePointer<infp_video>?, _ nVideos: Int64,
                                 _ falseAlarmRate: Float, _ out: UnsafeMutablePointer<infp_calibration>?) -> infp_status {
    infp_model_calibrate_score(model, videos, nVideos, falseAlarmRate, -1, out)
}

@_cdecl("infp_model_calibrate_score")
public func infp_model_calibrate_score(_ model: OpaquePointer?, _ videos: UnsafePointer<infp_video>?, _ nVideos: Int64,
                                       _ falseAlarmRate: Float, _ method: Int32,
                                       _ out: UnsafeMutablePointer<infp_calibration>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        guard falseAlarmRate > 0, falseAlarmRate < 1 else {
            throw APIError.invalid("false_alarm_rate is \(falseAlarmRate); it must be in (0, 1), e.g. 0.01 for one normal frame in 100 above the threshold")
        }
        let chosen = method == -1 ? nil : try calibrationMethod(method)
        if let out { try writeSized(cCalibration(nil), to: out, "out") }  // checks out->size before the work
        let list = try readVideos(videos, nVideos, h.model.config)
        for (i, v) in list.enumerated() where v.frames <= h.model.config.frames {
            throw APIError.shape("videos[\(i)] has \(v.frames) frames; calibration needs at least \(h.model.config.frames + 1) per video")
        }
        // Scoring only reads the model; storing the result is a change (exclusive).
        let calibration: Calibration = try h.lock.reading {
            try h.run {
                do { return try h.model.calibrate(normal: list, falseAlarmRate: Double(falseAlarmRate), method: chosen) } catch let e as Calibration.InputError {
                    throw APIError.invalid(e.description)
                }
            }
        }
        try h.lock.writing { h.model.calibration = calibration }
        log(.info, "calibrated the \(calibration.method) score on \(calibration.frames) frames of \(calibration.videos) normal videos: \(calibration.mean) ± \(calibration.std), threshold \(calibration.threshold)")
        if calibration.method == "memory" && calibration.mean < 1e-9 {
            log(.warning, "infp_model_calibrate: the normal videos score 0 against the memory: they are the remembered footage itself; calibrate on other normal footage, or alerts will fire on ordinary variation")
        }
        if let out { try writeSized(cCalibration(calibration), to: out, "out") }
    }
}

@_cdecl("infp_model_calibration")
public func infp_model_calibration(_ model: OpaquePointer?, _ out: UnsafeMutablePointer<infp_calibration>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        let c = try h.lock.reading { h.model.calibration }
        try writeSized(cCalibration(c), to: out, "out")
    }
}

@_cdecl("infp_model_set_calibration")
public func infp_model_set_calibration(_ model: OpaquePointer?, _ calibration: UnsafePointer<infp_calibration>?) -> infp_status {
    guarded {
        let h = try modelHandle(model)
        guard let calibration else {
            try h.lock.writing { h.model.calibration = nil }
            return
        }
        let p = try readParams(calibration, defaults: cCalibration(nil), "calibration")
        let c = Calibration(method: try calibrationMethod(p.method), mean: Double(p.psnr_mean), std: Double(p.psnr_std),
                            frames: Int(p.n_frames), videos: Int(p.n_videos), falseAlarmRate: Double(p.false_alarm_rate),
                            threshold: Double(p.threshold))
        let hasMemory = try h.lock.reading { h.model.memory != nil }
        if c.method == "memory" && !hasMemory {
            throw APIError.invalid("a 'memory' calibration needs a model with a memory of normal footage (infp_model_remember)")
        }
        do { try c.validate() } catch let e as Calibration.InputError { throw APIError.invalid(e.description) }
        try h.lock.writing { h.model.calibration = c }
    }
}

// MARK: streams

@_cdecl("infp_stream_default_params")
public func infp_stream_default_params() -> infp_stream_params {
    infp_stream_params(size: MemoryLayout<infp_stream_params>.size, n_threads: 0, min_event_frames: 2, release_frames: 3,
                       hysteresis: 0.5, threshold_override: 0)
}

@_cdecl("infp_stream_create")
public func infp_stream_create(_ model: OpaquePointer?, _ params: UnsafePointer<infp_stream_params>?,
                               _ out: UnsafeMutablePointer<OpaquePointer?>?) -> infp_status {
    guarded {
        let out = try require(out, "out")
        out.pointee = nil
        let h = try modelHandle(model)
        let p = try readParams(params, defaults: infp_stream_default_params(), "params")
        let threads = try threadCount(p.n_threads)
        guard p.min_event_frames >= 0, p.min_event_frames <= 1_000_000 else {
            throw APIError.invalid("min_event_frames is \(p.min_event_frames); use 0 (default 2) or a count >= 1")
        }
        guard p.release_frames >= 0, p.release_frames <= 1_000_000 else {
            throw APIError.invalid("release_frames is \(p.release_frames); use 0 (default 3) or a count >= 1")
        }
        guard p.hysteresis.isFinite else { throw APIError.invalid("hysteresis is \(p.hysteresis)") }
        guard p.threshold_override.isFinite else { throw APIError.invalid("threshold_override is \(p.threshold_override)") }
        let alerts = AlertParams(minEventFrames: p.min_event_frames == 0 ? 2 : Int(p.min_event_frames),
                                 releaseFrames: p.release_frames == 0 ? 3 : Int(p.release_frames),
                                 hysteresis: p.hysteresis == 0 ? 0.5 : Double(max(0, p.hysteresis)))
        let (stream, modelThreads): (FrameStream, Int) = try h.lock.reading {
            let calibrated = h.model.calibration != nil
            if p.threshold_override != 0 && !calibrated {
                throw APIError.invalid("threshold_override needs a calibrated model (the anomaly score is computed from the calibration's PSNR statistics): call infp_model_calibrate first")
            }
            if !calibrated {
                log(.warning, "infp_stream_create: the model is not calibrated: the stream gives PSNRs but no anomaly scores and never alerts (call infp_model_calibrate on normal footage)")
            }
            return (FrameStream(model: h.model, alerts: alerts, thresholdOverride: p.threshold_override == 0 ? nil : Double(p.threshold_override)),
                    h.threads)
        }
        let handle = StreamHandle(model: h, stream: stream, threads: threads == 0 ? modelThreads : threads)
        out.pointee = OpaquePointer(HandleRegistry.register(handle))
    }
}

@_cdecl("infp_stream_push")
public func infp_stream_push(_ stream: OpaquePointer?, _ pixels: UnsafePointer<UInt8>?, _ height: Int64, _ width: Int64,
                             _ channels: Int64, _ rowStride: Int64, _ result: UnsafeMutablePointer<infp_stream_result>?,
                             _ errorMap: UnsafeMutablePointer<Float>?, _ errorMapCount: Int64) -> infp_status {
    guarded {
        let s = try streamHandle(stream)
        let f = try readFrame(pixels, height, width, channels, rowStride, "pixels")
        let res = try require(result, "result")
        // The result's size is checked before any work, so that a bad struct costs no frame.
        try writeSized(infp_stream_result(size: MemoryLayout<infp_stream_result>.size, frame_index: -1, has_score: false,
                                          psnr: .nan, anomaly_score: .nan, threshold: .nan, alert: false, event_started: false,
                                          event_ended: false, event_id: 0), to: res, "result")
        let plane = s.stream.height * s.stream.width
        if errorMap != nil {
            guard errorMapCount == Int64(plane) else {
                throw APIError.shape("error_map_count is \(errorMapCount); the error map is the model's \(s.stream.height)×\(s.stream.width) = \(plane) floats")
            }
        } else if errorMapCount != 0 {
            throw APIError.invalid("error_map is NULL but error_map_count is \(errorMapCount)")
        }
        let r: FrameStream.Result = try s.locked {
            try s.model.lock.reading {
                Parallel.withThreads(s.threads) {
                    s.stream.push(pixels: f.pixels, height: f.height, width: f.width, channels: f.channels,
                                  rowStride: f.rowStride, errorMap: errorMap)
                }
            }
        }
        try writeSized(infp_stream_result(size: MemoryLayout<infp_stream_result>.size, frame_index: Int64(r.frameIndex),
                                          has_score: r.hasScore, psnr: Float(r.psnr), anomaly_score: Float(r.anomalyScore),
                                          threshold: Float(r.threshold), alert: r.alert.alert, event_started: r.alert.eventStarted,
                                          event_ended: r.alert.eventEnded, event_id: Int64(r.alert.eventID)), to: res, "result")
    }
}

@_cdecl("infp_stream_reset")
public func infp_stream_reset(_ stream: OpaquePointer?) -> infp_status {
    guarded {
        let s = try streamHandle(stream)
        s.locked { s.stream.reset() }
    }
}

@_cdecl("infp_stream_free")
public func infp_stream_free(_ stream: OpaquePointer?) {
    HandleRegistry.release(UnsafeRawPointer(stream))
}
