import CINFP
import Foundation
import Glibc
import INFPCore
import XCTest
@testable import INFP

/// The C entry points (called through the header's declarations, module CINFP) of the single operations: good calls agree with the engine, bad calls
/// return the right status and a message naming the problem, and nothing traps.
final class OpsAPITests: XCTestCase {
    // MARK: helpers

    private var rng = Rng(seed: 42)

    private func random(_ shape: [Int]) -> Tensor { Tensor.uniform(shape, -1, 1, rng: &rng) }

    private func assertClose(_ a: [Float], _ b: [Float], tol: Float = 1e-5,
                             file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, "counts differ", file: file, line: line)
        var worst: Float = 0
        for (x, y) in zip(a, b) { worst = max(worst, abs(x - y) / max(1, abs(y))) }
        XCTAssertLessThanOrEqual(worst, tol, "largest difference \(worst)", file: file, line: line)
    }

    private func shape(_ s: [Int]) -> [Int64] { s.map(Int64.init) }

    private func params(stride: Int32 = 1, padding: Int32 = 0, dilation: Int32 = 1,
                        threads: Int32 = 1) -> infp_conv2d_params {
        var p = CINFP.infp_conv2d_default_params()
        p.stride = stride; p.padding = padding; p.dilation = dilation; p.n_threads = threads
        return p
    }

    /// Calls infp_conv2d on tensors; returns (status, y).
    private func callConv(_ x: Tensor, _ w: Tensor, _ b: Tensor?, _ p: infp_conv2d_params,
                          yShape: [Int]) -> (infp_status, [Float]) {
        var y = [Float](repeating: .nan, count: yShape.reduce(1, *))
        var p = p
        let status = CINFP.infp_conv2d(x.data, shape(x.shape), w.data, shape(w.shape), b.map { UnsafePointer($0.data) },
                                 &p, &y, shape(yShape))
        return (status, y)
    }

    // MARK: conv2d

    func testDefaultParams() {
        let p = CINFP.infp_conv2d_default_params()
        XCTAssertEqual(p.size, MemoryLayout<infp_conv2d_params>.size)
        XCTAssertEqual(p.stride, 1)
        XCTAssertEqual(p.padding, 0)
        XCTAssertEqual(p.dilation, 1)
        XCTAssertEqual(p.n_threads, 0)
    }

    func testConv2dMatchesEngine() {
        for (stride, padding, dilation) in [(1, 0, 1), (2, 1, 1), (1, 2, 2), (3, 1, 2)] {
            let x = random([2, 3, 9, 8]), w = random([4, 3, 3, 2]), b = random([4])
            let ref = NN.conv2d(x, weight: w, bias: b, stride: stride, padding: padding, dilation: dilation)
            for threads: Int32 in [1, 0, 2] {
                let p = params(stride: Int32(stride), padding: Int32(padding), dilation: Int32(dilation), threads: threads)
                let (status, y) = callConv(x, w, b, p, yShape: ref.shape)
                XCTAssertEqual(status, INFP_OK, lastError)
                assertClose(y, ref.scalars)
            }
        }
    }

    func testConv2dWithoutBias() {
        let x = random([1, 2, 5, 5]), w = random([3, 2, 3, 3])
        let ref = NN.conv2d(x, weight: w, bias: nil, stride: 1, padding: 1, dilation: 1)
        let (status, y) = callConv(x, w, nil, params(padding: 1), yShape: [1, 3, 5, 5])
        XCTAssertEqual(status, INFP_OK, lastError)
        assertClose(y, ref.scalars)
    }

    func testConv2dZeroMeansDefault() {
        let x = random([1, 2, 6, 6]), w = random([2, 2, 3, 3])
        let ref = NN.conv2d(x, weight: w, bias: nil, stride: 1, padding: 0, dilation: 1)
        let (status, y) = callConv(x, w, nil, params(stride: 0, dilation: 0, threads: 0), yShape: [1, 2, 4, 4])
        XCTAssertEqual(status, INFP_OK, lastError)
        assertClose(y, ref.scalars)
    }

    func testConv2dBackwardMatchesEngine() {
        let x = random([2, 3, 7, 6]), w = random([4, 3, 3, 3]), b = random([4])
        let p = params(stride: 2, padding: 1, dilation: 1, threads: 0)
        let y = NN.conv2d(x, weight: w, bias: b, stride: 2, padding: 1, dilation: 1)
        let dy = random(y.shape)
        x.requiresGrad = true; w.requiresGrad = true; b.requiresGrad = true
        withGradients { NN.conv2d(x, weight: w, bias: b, stride: 2, padding: 1, dilation: 1).backward(seed: dy) }

        var dx = [Float](repeating: .nan, count: x.count)
        var dw = [Float](repeating: .nan, count: w.count)
        var db = [Float](repeating: .nan, count: 4)
        var pp = p
        let status = CINFP.infp_conv2d_backward(x.data, shape(x.shape), w.data, shape(w.shape), &pp,
                                          dy.data, shape(dy.shape), &dx, &dw, &db)
        XCTAssertEqual(status, INFP_OK, lastError)
        assertClose(dx, x.grad?.scalars ?? [])
        assertClose(dw, w.grad?.scalars ?? [])
        assertClose(db, b.grad?.scalars ?? [])

        // Any output may be NULL.
        var dxOnly = [Float](repeating: .nan, count: x.count)
        XCTAssertEqual(CINFP.infp_conv2d_backward(x.data, shape(x.shape), w.data, shape(w.shape), &pp,
                                            dy.data, shape(dy.shape), &dxOnly, nil, nil), INFP_OK, lastError)
        assertClose(dxOnly, x.grad?.scalars ?? [])
        var dbOnly = [Float](repeating: .nan, count: 4)
        XCTAssertEqual(CINFP.infp_conv2d_backward(x.data, shape(x.shape), w.data, shape(w.shape), &pp,
                                            dy.data, shape(dy.shape), nil, nil, &dbOnly), INFP_OK, lastError)
        assertClose(dbOnly, b.grad?.scalars ?? [])
        XCTAssertEqual(CINFP.infp_conv2d_backward(x.data, shape(x.shape), w.data, shape(w.shape), &pp,
                                            dy.data, shape(dy.shape), nil, nil, nil), INFP_OK, lastError)
    }

    func testConv2dOutputMayAliasInput() {
        // 1x1 convolution with as many outputs as inputs: y can be written over x.
        let x = random([1, 2, 3, 3]), w = random([2, 2, 1, 1])
        let ref = NN.conv2d(x, weight: w, bias: nil, stride: 1, padding: 0, dilation: 1)
        var buffer = x.scalars
        var p = params()
        let xs = shape(x.shape)
        let status = buffer.withUnsafeMutableBufferPointer { b in
            CINFP.infp_conv2d(b.baseAddress, xs, w.data, shape(w.shape), nil, &p, b.baseAddress, xs)
        }
        XCTAssertEqual(status, INFP_OK, lastError)
        assertClose(buffer, ref.scalars)
    }

    func testConv2dRejectsNullPointers() {
        let x = random([1, 1, 4, 4]), w = random([1, 1, 3, 3])
        var p = params()
        var y = [Float](repeating: 0, count: 4)
        let xs = shape(x.shape), ws = shape(w.shape), ys: [Int64] = [1, 1, 2, 2]
        assertFails(CINFP.infp_conv2d(nil, xs, w.data, ws, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "infp_conv2d", "x is NULL")
        assertFails(CINFP.infp_conv2d(x.data, nil, w.data, ws, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "x_shape is NULL")
        assertFails(CINFP.infp_conv2d(x.data, xs, nil, ws, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "w is NULL")
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, nil, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "w_shape is NULL")
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, ws, nil, nil, &y, ys), INFP_ERR_INVALID_ARGUMENT, "params is NULL")
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, ws, nil, &p, nil, ys), INFP_ERR_INVALID_ARGUMENT, "y is NULL")
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, ws, nil, &p, &y, nil), INFP_ERR_INVALID_ARGUMENT, "y_shape is NULL")
        assertFails(CINFP.infp_conv2d_backward(x.data, xs, w.data, ws, &p, nil, ys, nil, nil, nil),
                    INFP_ERR_INVALID_ARGUMENT, "infp_conv2d_backward", "dy is NULL")
    }

    func testConv2dRejectsBadShapes() {
        let x = random([1, 2, 5, 5]), w = random([3, 2, 3, 3])
        var p = params()
        var y = [Float](repeating: 0, count: 1000)
        // Wrong output shape: the message gives the expected one.
        assertFails(CINFP.infp_conv2d(x.data, shape(x.shape), w.data, shape(w.shape), nil, &p, &y, [1, 3, 5, 5]),
                    INFP_ERR_SHAPE_MISMATCH, "y_shape", "[1, 3, 3, 3]")
        // Channel mismatch.
        assertFails(CINFP.infp_conv2d(x.data, [1, 3, 5, 5], w.data, shape(w.shape), nil, &p, &y, [1, 3, 3, 3]),
                    INFP_ERR_SHAPE_MISMATCH, "x_shape[1]", "w_shape[1]")
        // Negative and zero dimensions.
        assertFails(CINFP.infp_conv2d(x.data, [1, 2, -5, 5], w.data, shape(w.shape), nil, &p, &y, [1, 3, 3, 3]),
                    INFP_ERR_INVALID_ARGUMENT, "x_shape[2]", "-5")
        assertFails(CINFP.infp_conv2d(x.data, shape(x.shape), w.data, [0, 2, 3, 3], nil, &p, &y, [1, 3, 3, 3]),
                    INFP_ERR_INVALID_ARGUMENT, "w_shape[0]")
        // Kernel larger than the padded input.
        assertFails(CINFP.infp_conv2d(x.data, shape(x.shape), w.data, [3, 2, 7, 3], nil, &p, &y, [1, 3, 1, 3]),
                    INFP_ERR_SHAPE_MISMATCH, "kernel height")
        // Huge dimensions: no overflow, no allocation, no crash.
        assertFails(CINFP.infp_conv2d(x.data, [Int64.max, 2, 5, 5], w.data, shape(w.shape), nil, &p, &y, [1, 3, 3, 3]),
                    INFP_ERR_SHAPE_MISMATCH, "x_shape[0]")
        assertFails(CINFP.infp_conv2d(x.data, [1 << 20, 1 << 20, 1 << 20, 5], w.data, shape(w.shape), nil, &p, &y, [1, 3, 3, 3]),
                    INFP_ERR_SHAPE_MISMATCH, "2^40")
        var big = params(dilation: Int32.max)
        assertFails(CINFP.infp_conv2d(x.data, shape(x.shape), w.data, [1, 2, 1 << 38, 1], nil, &big, &y, [1, 1, 3, 3]),
                    INFP_ERR_INVALID_ARGUMENT, "overflows")
        // Wrong dy shape for the backward pass.
        var dx = [Float](repeating: 0, count: x.count)
        assertFails(CINFP.infp_conv2d_backward(x.data, shape(x.shape), w.data, shape(w.shape), &p, y, [1, 3, 3, 4], &dx, nil, nil),
                    INFP_ERR_SHAPE_MISMATCH, "dy_shape")
    }

    func testConv2dRejectsBadParams() {
        let x = random([1, 1, 4, 4]), w = random([1, 1, 3, 3])
        var y = [Float](repeating: 0, count: 4)
        let xs = shape(x.shape), ws = shape(w.shape), ys: [Int64] = [1, 1, 2, 2]
        var p = params(stride: -1)
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, ws, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "stride")
        p = params(padding: -2)
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, ws, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "padding")
        p = params(dilation: -1)
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, ws, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "dilation")
        p = params(threads: -3)
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, ws, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "n_threads")
        p = params(); p.size = 0
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, ws, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "size")
        p = params(); p.size = MemoryLayout<infp_conv2d_params>.size + 8
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, ws, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "size", "newer")
        p = params(); p.size = -1  // (size_t)-1: uninitialised memory
        assertFails(CINFP.infp_conv2d(x.data, xs, w.data, ws, nil, &p, &y, ys), INFP_ERR_INVALID_ARGUMENT, "size")
    }

    func testConv2dAcceptsOlderSmallerParams() {
        // A caller compiled against an older header with only `size` and `stride`: the fields
        // past `size` bytes are not read (here they hold garbage) and keep their defaults.
        let x = random([1, 1, 6, 6]), w = random([1, 1, 3, 3])
        var p = params(stride: 2, padding: 99, dilation: 77, threads: -5)
        p.size = MemoryLayout<infp_conv2d_params>.offset(of: \.padding)!
        let ref = NN.conv2d(x, weight: w, bias: nil, stride: 2, padding: 0, dilation: 1)
        let (status, y) = callConv(x, w, nil, p, yShape: [1, 1, 2, 2])
        XCTAssertEqual(status, INFP_OK, lastError)
        assertClose(y, ref.scalars)
    }

    // MARK: FFT

    func testRfft2MatchesEngine() {
        for (shapeIn, axes) in [([4, 6], (0, 1)), ([3, 5, 7], (0, 2)), ([2, 4, 5, 3], (1, 2)), ([2, 3, 8], (1, 2))] {
            for (norm, engineNorm) in [(INFP_FFT_BACKWARD, FFTNorm.backward), (INFP_FFT_ORTHO, .ortho)] {
                let x = random(shapeIn)
                let ref = FFT.rfft2(x, axes: axes, norm: engineNorm)
                var y = [Float](repeating: .nan, count: ref.count)
                let status = CINFP.infp_rfft2(x.data, Int32(shapeIn.count), shape(shapeIn), Int32(axes.0), Int32(axes.1),
                                        norm, &y, Int64(y.count))
                XCTAssertEqual(status, INFP_OK, lastError)
                assertClose(y, ref.scalars)

                // Backward.
                let dy = random(ref.shape)
                x.requiresGrad = true
                withGradients { FFT.rfft2(x, axes: axes, norm: engineNorm).backward(seed: dy) }
                var dx = [Float](repeating: .nan, count: x.count)
                XCTAssertEqual(CINFP.infp_rfft2_backward(Int32(shapeIn.count), shape(shapeIn), Int32(axes.0), Int32(axes.1),
                                                   norm, dy.data, Int64(dy.count), &dx), INFP_OK, lastError)
                assertClose(dx, x.grad?.scalars ?? [])
            }
        }
    }

    func testIrfft2MatchesEngine() {
        for (realShape, axes) in [([4, 6], (0, 1)), ([3, 5, 7], (0, 2)), ([2, 4, 5, 3], (1, 2))] {
            let n1 = realShape[axes.1]
            var zShape = realShape
            zShape[axes.1] = n1 / 2 + 1
            for (norm, engineNorm) in [(INFP_FFT_BACKWARD, FFTNorm.backward), (INFP_FFT_ORTHO, .ortho)] {
                let z = random(zShape + [2])
                let ref = FFT.irfft2(z, axes: axes, lastSize: n1, norm: engineNorm)
                XCTAssertEqual(ref.shape, realShape)
                var y = [Float](repeating: .nan, count: ref.count)
                let status = CINFP.infp_irfft2(z.data, Int32(zShape.count), shape(zShape), Int32(axes.0), Int32(axes.1),
                                         Int64(n1), norm, &y, Int64(y.count))
                XCTAssertEqual(status, INFP_OK, lastError)
                assertClose(y, ref.scalars)

                let dy = random(realShape)
                z.requiresGrad = true
                withGradients { FFT.irfft2(z, axes: axes, lastSize: n1, norm: engineNorm).backward(seed: dy) }
                var dz = [Float](repeating: .nan, count: z.count)
                XCTAssertEqual(CINFP.infp_irfft2_backward(Int32(zShape.count), shape(zShape), Int32(axes.0), Int32(axes.1),
                                                    Int64(n1), norm, dy.data, Int64(dy.count), &dz), INFP_OK, lastError)
                assertClose(dz, z.grad?.scalars ?? [])
            }
        }
    }

    func testRfft2ThenIrfft2RoundTrips() {
        let x = random([3, 8, 5])
        var z = [Float](repeating: 0, count: 3 * 8 * 3 * 2)
        XCTAssertEqual(CINFP.infp_rfft2(x.data, 3, [3, 8, 5], 1, 2, INFP_FFT_ORTHO, &z, Int64(z.count)), INFP_OK, lastError)
        var back = [Float](repeating: 0, count: x.count)
        XCTAssertEqual(CINFP.infp_irfft2(z, 3, [3, 8, 3], 1, 2, 5, INFP_FFT_ORTHO, &back, Int64(back.count)), INFP_OK, lastError)
        assertClose(back, x.scalars, tol: 1e-5)
    }

    func testFFTRejectsBadArguments() {
        let x = random([4, 6])
        var y = [Float](repeating: 0, count: 4 * 4 * 2)
        let xs: [Int64] = [4, 6]
        let n = Int64(y.count)
        assertFails(CINFP.infp_rfft2(nil, 2, xs, 0, 1, INFP_FFT_BACKWARD, &y, n), INFP_ERR_INVALID_ARGUMENT, "infp_rfft2", "x is NULL")
        assertFails(CINFP.infp_rfft2(x.data, 2, nil, 0, 1, INFP_FFT_BACKWARD, &y, n), INFP_ERR_INVALID_ARGUMENT, "x_shape is NULL")
        assertFails(CINFP.infp_rfft2(x.data, 2, xs, 0, 1, INFP_FFT_BACKWARD, nil, n), INFP_ERR_INVALID_ARGUMENT, "y is NULL")
        assertFails(CINFP.infp_rfft2(x.data, 2, xs, 1, 0, INFP_FFT_BACKWARD, &y, n), INFP_ERR_INVALID_ARGUMENT, "axis0 < axis1")
        assertFails(CINFP.infp_rfft2(x.data, 2, xs, 0, 0, INFP_FFT_BACKWARD, &y, n), INFP_ERR_INVALID_ARGUMENT, "axes")
        assertFails(CINFP.infp_rfft2(x.data, 2, xs, 0, 2, INFP_FFT_BACKWARD, &y, n), INFP_ERR_INVALID_ARGUMENT, "ndim")
        assertFails(CINFP.infp_rfft2(x.data, 2, xs, -1, 1, INFP_FFT_BACKWARD, &y, n), INFP_ERR_INVALID_ARGUMENT, "axes")
        assertFails(CINFP.infp_rfft2(x.data, 1, xs, 0, 1, INFP_FFT_BACKWARD, &y, n), INFP_ERR_INVALID_ARGUMENT, "ndim")
        assertFails(CINFP.infp_rfft2(x.data, -3, xs, 0, 1, INFP_FFT_BACKWARD, &y, n), INFP_ERR_INVALID_ARGUMENT, "ndim")
        assertFails(CINFP.infp_rfft2(x.data, 2, [4, -6], 0, 1, INFP_FFT_BACKWARD, &y, n), INFP_ERR_INVALID_ARGUMENT, "x_shape[1]")
        assertFails(CINFP.infp_rfft2(x.data, 2, xs, 0, 1, INFP_FFT_BACKWARD, &y, n - 1), INFP_ERR_SHAPE_MISMATCH, "y_count", "32")
        assertFails(CINFP.infp_rfft2(x.data, 2, xs, 0, 1, infp_fft_norm(rawValue: 7), &y, n), INFP_ERR_INVALID_ARGUMENT, "norm")
        assertFails(CINFP.infp_rfft2(x.data, 2, [1 << 16, 1 << 16], 0, 1, INFP_FFT_BACKWARD, &y, n), INFP_ERR_INVALID_ARGUMENT, "2^31")
        var dx = [Float](repeating: 0, count: 24)
        assertFails(CINFP.infp_rfft2_backward(2, xs, 0, 1, INFP_FFT_BACKWARD, y, n + 2, &dx), INFP_ERR_SHAPE_MISMATCH, "dy_count")
        assertFails(CINFP.infp_rfft2_backward(2, xs, 0, 1, INFP_FFT_BACKWARD, y, n, nil), INFP_ERR_INVALID_ARGUMENT, "dx is NULL")

        // irfft2: n1 must match z_shape[axis1].
        var out = [Float](repeating: 0, count: 24)
        let zs: [Int64] = [4, 4]
        assertFails(CINFP.infp_irfft2(y, 2, zs, 0, 1, 9, INFP_FFT_BACKWARD, &out, 24), INFP_ERR_SHAPE_MISMATCH, "z_shape[axis1", "n1")
        assertFails(CINFP.infp_irfft2(y, 2, zs, 0, 1, 0, INFP_FFT_BACKWARD, &out, 24), INFP_ERR_INVALID_ARGUMENT, "n1")
        assertFails(CINFP.infp_irfft2(y, 2, zs, 0, 1, -6, INFP_FFT_BACKWARD, &out, 24), INFP_ERR_INVALID_ARGUMENT, "n1")
        assertFails(CINFP.infp_irfft2(y, 2, zs, 0, 1, 6, INFP_FFT_BACKWARD, &out, 25), INFP_ERR_SHAPE_MISMATCH, "y_count")
        assertFails(CINFP.infp_irfft2(y, 2, zs, 1, 0, 6, INFP_FFT_BACKWARD, &out, 24), INFP_ERR_INVALID_ARGUMENT, "axes")
        var out7 = [Float](repeating: 0, count: 28)
        XCTAssertEqual(CINFP.infp_irfft2(y, 2, zs, 0, 1, 7, INFP_FFT_BACKWARD, &out7, 28), INFP_OK, lastError)
        assertFails(CINFP.infp_irfft2_backward(2, zs, 0, 1, 6, INFP_FFT_BACKWARD, out, 24, nil), INFP_ERR_INVALID_ARGUMENT, "dz is NULL")
        assertFails(CINFP.infp_irfft2_backward(2, zs, 0, 1, 6, INFP_FFT_BACKWARD, out, 23, &y), INFP_ERR_SHAPE_MISMATCH, "dy_count")
    }

    // MARK: errors, status names, logging

    func testStatusNames() {
        XCTAssertEqual(String(cString: CINFP.infp_status_name(INFP_OK)), "ok")
        XCTAssertEqual(String(cString: CINFP.infp_status_name(INFP_ERR_INVALID_ARGUMENT)), "invalid argument")
        XCTAssertEqual(String(cString: CINFP.infp_status_name(INFP_ERR_SHAPE_MISMATCH)), "shape mismatch")
        XCTAssertEqual(String(cString: CINFP.infp_status_name(INFP_ERR_CANCELLED)), "cancelled")
        XCTAssertEqual(String(cString: CINFP.infp_status_name(infp_status(rawValue: 12345))), "unknown status")
    }

    func testLastErrorIsPerThreadAndStable() {
        var y = [Float](repeating: 0, count: 8)
        XCTAssertNotEqual(CINFP.infp_rfft2(nil, 2, [2, 2], 0, 1, INFP_FFT_BACKWARD, &y, 8), INFP_OK)
        let mine: UnsafePointer<CChar> = CINFP.infp_last_error()
        let text = String(cString: mine)
        XCTAssertTrue(text.contains("x is NULL"), text)

        // A success does not clear it; a failure on another thread does not change it.
        let x: [Float] = [1, 2, 3, 4]
        XCTAssertEqual(CINFP.infp_rfft2(x, 2, [2, 2], 0, 1, INFP_FFT_BACKWARD, &y, 8), INFP_OK, lastError)
        final class Seen: @unchecked Sendable { var before = "unset", after = "" }
        let seen = Seen()
        let finished = DispatchSemaphore(value: 0)
        let thread = Thread {
            seen.before = String(cString: CINFP.infp_last_error())
            var out = [Float](repeating: 0, count: 8)
            _ = CINFP.infp_rfft2(x, 2, [2, 2], 1, 0, INFP_FFT_BACKWARD, &out, 8)
            seen.after = String(cString: CINFP.infp_last_error())
            finished.signal()
        }
        thread.start()
        XCTAssertEqual(finished.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(seen.before, "", "a new thread starts with no error")
        XCTAssertTrue(seen.after.contains("axis0 < axis1"), seen.after)
        XCTAssertEqual(String(cString: mine), text, "the pointer stays valid until this thread's next failure")
        XCTAssertEqual(lastError, text)
    }

    func testLogCallbackReceivesMessages() {
        final class Box { var messages: [(UInt32, String)] = [] }
        let box = Box()
        let user = Unmanaged.passUnretained(box).toOpaque()
        CINFP.infp_set_log_callback({ level, message, user in
            let box = Unmanaged<Box>.fromOpaque(user!).takeUnretainedValue()
            box.messages.append((level.rawValue, String(cString: message!)))
        }, user)
        INFP.log(.warning, "hello from the test")
        var y = [Float](repeating: 0, count: 4)
        _ = CINFP.infp_rfft2(nil, 2, [2, 2], 0, 1, INFP_FFT_BACKWARD, &y, 4)
        CINFP.infp_set_log_callback(nil, nil)
        INFP.log(.debug, "not delivered")

        XCTAssertEqual(box.messages.first?.0, INFP_LOG_WARNING.rawValue)
        XCTAssertEqual(box.messages.first?.1, "hello from the test")
        XCTAssertTrue(box.messages.contains { $0.0 == INFP_LOG_DEBUG.rawValue && $0.1.contains("x is NULL") }, "\(box.messages)")
        XCTAssertFalse(box.messages.contains { $0.1 == "not delivered" })
    }
}
