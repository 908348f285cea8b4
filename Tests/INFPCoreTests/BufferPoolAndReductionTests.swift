import XCTest
@testable import INFPCore

/// The buffer pool behind tensor storage, and the one-run fast path of sumToShape.
final class BufferPoolAndReductionTests: XCTestCase {
    func testPooledBuffersAreAlignedAndReused() {
        let bytes = 300_000
        let a = BufferPool.allocate(bytes)
        XCTAssertEqual(Int(bitPattern: a) % 64, 0)
        a.initializeMemory(as: UInt8.self, repeating: 7, count: bytes)
        BufferPool.release(a, bytes: bytes)
        // The same rounded size comes back from the pool (this thread is the only user of
        // this odd size in the test run).
        let b = BufferPool.allocate(bytes + 1)
        XCTAssertEqual(a, b)
        BufferPool.release(b, bytes: bytes + 1)
        // Small blocks are not pooled but still aligned.
        let s = BufferPool.allocate(100)
        XCTAssertEqual(Int(bitPattern: s) % 64, 0)
        BufferPool.release(s, bytes: 100)
    }

    func testTensorsOnReusedStorageStartClean() {
        for _ in 0..<3 {
            let z = Tensor(zeros: [4, 64, 64])
            XCTAssertEqual(z.buffer.max(), 0)
            z.data.update(repeating: 5, count: z.count)
        }
    }

    /// sumToShape's one-run path against the generic broadcast loop, on every pattern.
    func testSumToShapeMatchesGenericLoop() {
        var rng = SplitMix(seed: 5)
        let x = rng.tensor([2, 3, 4, 5])
        let targets: [[Int]] = [[2, 3, 1, 1], [1, 3, 4, 5], [1, 1, 1, 5], [2, 1, 1, 5], [2, 3, 4, 1],
                                [1, 3, 1, 1], [1, 1, 1, 1], [5], [4, 5], [3, 1, 1], [1], [2, 1, 4, 1], [1, 3, 1, 5]]
        for t in targets {
            let fast = x.sumToShape(t)
            // The generic loop (what sumToShape did before the fast path).
            let slow = Tensor(zeros: t)
            let st = Broadcast.strides(of: t, in: x.shape)
            Broadcast.forEach(x.shape, st, [0, 0, 0, 0]) { i, j, _ in slow.data[j] += x.data[i] }
            XCTAssertEqual(fast.shape, t)
            for i in 0..<slow.count { XCTAssertEqual(fast.data[i], slow.data[i], accuracy: 1e-5, "\(t)") }
        }
    }
}
