/// The temporal shift module (TSM, spec §2.3), differentiable.
extension NN {
    /// Temporal shift of x (B, C, H, W) — any rank ≥ 2 with channels on axis 1 — viewed as
    /// (B, T = `frames`, C/T, H, W): with fold = (C/T)/`foldDiv`, the first `fold` channels of
    /// each frame t < T−1 take the values of frame t+1, those of frame T−1 become zero, and all
    /// other channels are copied (left shift only). The gradient is the reverse shift.
    public static func temporalShift(_ x: Tensor, frames: Int, foldDiv: Int) -> Tensor {
        precondition(x.rank >= 2, "temporalShift needs (B, C, …), shape is \(x.shape)")
        precondition(frames >= 1 && foldDiv >= 1, "temporalShift: frames \(frames), foldDiv \(foldDiv)")
        let b = x.shape[0], c = x.shape[1]
        precondition(c % frames == 0, "temporalShift: \(c) channels do not split into \(frames) frames")
        let perFrame = c / frames
        let fold = perFrame / foldDiv
        let hw = x.shape[2...].reduce(1, *)
        let frameSize = perFrame * hw, sampleSize = c * hw, foldSize = fold * hw

        // out[t, :fold] = src[t + shift, :fold] (zero outside 0..<T); rest copied.
        func shift(_ src: UnsafeMutablePointer<Float>, _ dst: UnsafeMutablePointer<Float>, by s: Int) {
            let grain = Swift.max(1, Tensor.elementwiseGrain / Swift.max(1, sampleSize))
            Parallel.forChunks(b, minChunk: grain) { r in
                for n in r {
                    for t in 0..<frames {
                        let o = dst + n * sampleSize + t * frameSize
                        let from = t + s
                        if from >= 0 && from < frames {
                            o.update(from: src + n * sampleSize + from * frameSize, count: foldSize)
                        } else {
                            o.update(repeating: 0, count: foldSize)
                        }
                        (o + foldSize).update(from: src + n * sampleSize + t * frameSize + foldSize,
                                              count: frameSize - foldSize)
                    }
                }
            }
        }
        let out = Tensor(uninitialized: x.shape)
        shift(x.data, out.data, by: 1)
        return out.recorded(from: [x]) { g in
            let dx = Tensor(uninitialized: g.shape)
            shift(g.data, dx.data, by: -1)
            return [dx]
        }
    }
}
