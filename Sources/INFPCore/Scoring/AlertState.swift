/// Causal alert logic of a live stream: it sees one anomaly score per frame and never waits
/// for future frames.
///
/// - Outside an event, a frame *exceeds* when its score > threshold. An event starts on the
///   `minEventFrames`-th exceeding frame in a row: that frame is the first with `alert`
///   (and `eventStarted`). With minEventFrames = 1 every exceeding frame starts an event at
///   once; larger values ignore shorter bursts (a single noisy frame).
/// - Inside an event, a frame *releases* when its score < threshold − hysteresis. The event
///   ends on the `releaseFrames`-th releasing frame in a row: that frame has `eventEnded` and
///   no longer `alert`. Frames in between (scores near the threshold) keep the alert on.
/// - A frame without a score (the first frames of a stream, or no calibration) changes
///   nothing and raises no alert; a NaN score counts as neither exceeding nor releasing.
public struct AlertParams: Equatable {
    public var minEventFrames: Int = 2
    public var releaseFrames: Int = 3
    /// In anomaly-score units (z, see Calibration).
    public var hysteresis: Double = 0.5

    public init(minEventFrames: Int = 2, releaseFrames: Int = 3, hysteresis: Double = 0.5) {
        self.minEventFrames = minEventFrames; self.releaseFrames = releaseFrames; self.hysteresis = hysteresis
    }
}

public struct AlertState {
    public let params: AlertParams
    /// True while an event is on.
    public private(set) var inEvent = false
    /// Events started so far.
    public private(set) var events = 0
    var exceeding = 0
    var releasing = 0

    public init(params: AlertParams = AlertParams()) { self.params = params }

    public struct Step: Equatable {
        /// The frame is part of an event.
        public var alert: Bool
        /// The event starts on this frame.
        public var eventStarted: Bool
        /// The event ended on this frame (the frame itself is no longer alerted).
        public var eventEnded: Bool
        /// 1-based number of the event this frame starts, belongs to or ends; 0 otherwise.
        public var eventID: Int

        public init(alert: Bool = false, eventStarted: Bool = false, eventEnded: Bool = false, eventID: Int = 0) {
            self.alert = alert; self.eventStarted = eventStarted; self.eventEnded = eventEnded; self.eventID = eventID
        }
    }

    /// Advances by one frame with its anomaly score and the threshold.
    public mutating func update(score: Double, threshold: Double) -> Step {
        if !inEvent {
            if score > threshold { exceeding += 1 } else { exceeding = 0 }
            guard exceeding >= max(1, params.minEventFrames) else { return Step() }
            inEvent = true
            events += 1
            exceeding = 0
            releasing = 0
            return Step(alert: true, eventStarted: true, eventID: events)
        }
        if score < threshold - params.hysteresis { releasing += 1 } else { releasing = 0 }
        if releasing >= max(1, params.releaseFrames) {
            inEvent = false
            releasing = 0
            return Step(eventEnded: true, eventID: events)
        }
        return Step(alert: true, eventID: events)
    }

    /// A frame without a score: nothing changes; an ongoing event stays on.
    public func unscored() -> Step {
        inEvent ? Step(alert: true, eventID: events) : Step()
    }

    /// Back to the initial state (event numbering restarts).
    public mutating func reset() { self = AlertState(params: params) }
}
