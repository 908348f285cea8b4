import XCTest
@testable import INFPCore

/// The causal alert logic on constructed score sequences (threshold 1 unless stated).
final class AlertStateTests: XCTestCase {
    /// Runs scores through a fresh state; returns per frame "." (no alert), "S" (event
    /// starts), "A" (alert, in event), "E" (event ends), and the event ids.
    func run(_ scores: [Double], threshold: Double = 1, _ params: AlertParams) -> (String, [Int]) {
        var state = AlertState(params: params)
        var marks = "", ids: [Int] = []
        for s in scores {
            let step = s.isNaN ? state.unscored() : state.update(score: s, threshold: threshold)
            XCTAssertFalse(step.eventStarted && !step.alert, "a starting frame is alerted")
            XCTAssertFalse(step.eventEnded && step.alert, "an ending frame is not alerted")
            marks += step.eventStarted ? "S" : step.eventEnded ? "E" : step.alert ? "A" : "."
            ids.append(step.eventID)
        }
        return (marks, ids)
    }

    func testSingleNoisyFrameDoesNotAlertWithDefaults() {
        let (marks, ids) = run([0, 2, 0, 0, 5, 0, 0], AlertParams())
        XCTAssertEqual(marks, ".......")
        XCTAssertEqual(ids, [0, 0, 0, 0, 0, 0, 0])
    }

    func testEventStartsOnTheMinEventFramesthExceedingFrame() {
        XCTAssertEqual(run([0, 2, 2, 2, 0.9], AlertParams(minEventFrames: 2)).0, "..SAA")
        XCTAssertEqual(run([0, 2, 2, 2, 2], AlertParams(minEventFrames: 3)).0, "...SA")
        XCTAssertEqual(run([2, 0, 2, 0, 2], AlertParams(minEventFrames: 1)).0, "SAAAA")  // 0 < 1 − 0.5 only 2 in a row
        // Exceeding means strictly above the threshold.
        XCTAssertEqual(run([1, 1, 1], AlertParams(minEventFrames: 1)).0, "...")
        // An interrupted run starts counting again.
        XCTAssertEqual(run([2, 0, 2, 2, 2], AlertParams(minEventFrames: 3)).0, "....S")
    }

    func testReleaseNeedsReleaseFramesBelowThresholdMinusHysteresis() {
        let p = AlertParams(minEventFrames: 1, releaseFrames: 3, hysteresis: 0.5)
        // 0.6 is below the threshold but inside the hysteresis band: the alert stays on.
        XCTAssertEqual(run([2, 0.6, 0.6, 0.6, 0.6, 0.6], p).0, "SAAAAA")
        // Three frames below 0.5 end the event on the third.
        XCTAssertEqual(run([2, 0.4, 0.4, 0.4, 0.4], p).0, "SAAE.")
        // A frame back in the band restarts the release count.
        XCTAssertEqual(run([2, 0.4, 0.4, 0.7, 0.4, 0.4, 0.4, 0], p).0, "SAAAAAE.")
        // Exactly threshold − hysteresis does not release (strictly below is needed).
        XCTAssertEqual(run([2, 0.5, 0.5, 0.5, 0.5], p).0, "SAAAA")
    }

    func testNoHysteresisAndImmediateRelease() {
        let p = AlertParams(minEventFrames: 1, releaseFrames: 1, hysteresis: 0)
        XCTAssertEqual(run([2, 0.99, 2, 1, 2], p).0, "SESAA")  // 1 is not below 1
    }

    func testEventIdsCountEvents() {
        let p = AlertParams(minEventFrames: 2, releaseFrames: 2, hysteresis: 0.5)
        let (marks, ids) = run([2, 2, 0, 0, 0, 3, 3, 3, 0, 0], p)
        XCTAssertEqual(marks, ".SAE..SAAE")
        XCTAssertEqual(ids, [0, 1, 1, 1, 0, 0, 2, 2, 2, 2])
    }

    func testUnscoredFramesChangeNothing() {
        let p = AlertParams(minEventFrames: 2, releaseFrames: 2, hysteresis: 0)
        // NaN frames (no score) neither count nor break runs ...
        XCTAssertEqual(run([2, .nan, 2, 0, .nan, 0], p).0, "..SAAE")
        // ... but a real score in between does.
        XCTAssertEqual(run([2, 0.5, 2, 2], p).0, "...S")
    }

    func testNaNScoreUpdateBreaksRuns() {
        var s = AlertState(params: AlertParams(minEventFrames: 2))
        XCTAssertFalse(s.update(score: 2, threshold: 1).alert)
        XCTAssertFalse(s.update(score: .nan, threshold: 1).alert)
        XCTAssertFalse(s.update(score: 2, threshold: 1).alert)
        XCTAssertTrue(s.update(score: 2, threshold: 1).eventStarted)
        XCTAssertTrue(s.update(score: .nan, threshold: 1).alert)  // neither releases
    }

    func testReset() {
        var s = AlertState(params: AlertParams(minEventFrames: 1))
        XCTAssertTrue(s.update(score: 5, threshold: 1).eventStarted)
        s.reset()
        XCTAssertFalse(s.inEvent)
        XCTAssertEqual(s.update(score: 5, threshold: 1), AlertState.Step(alert: true, eventStarted: true, eventEnded: false, eventID: 1))
    }
}
