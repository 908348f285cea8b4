/*
 * infp.h — C API of libinfp, industrial video anomaly detection (INFP, IJCAI 2025).
 *
 * Conventions
 *  - Every fallible call returns infp_status: INFP_OK (0) or a negative error kind.
 *    infp_last_error() then gives a human-readable message for the calling thread.
 *  - Buffers are allocated by the caller. Every pointer travels with its shape or element
 *    count, and the library checks them before touching memory.
 *  - Parameter structs start with a `size` field (set it to sizeof the struct, or get a filled
 *    struct from the matching *_default_params() function). A 0 in a numeric field means
 *    "default" where documented.
 *  - Tensors are float32, C-contiguous (row-major), NCHW for images. Complex tensors are
 *    stored as float32 with a trailing dimension of 2 (real, imaginary).
 *  - Opaque handles are freed by their *_free function, which accepts NULL.
 *  - Nothing here traps on bad input: it returns an error status instead.
 */
#ifndef INFP_H
#define INFP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status, errors, version, logging ------------------------------------------------ */

typedef enum infp_status {
    INFP_OK = 0,
    INFP_ERR_INVALID_ARGUMENT = -1, /* a NULL pointer, a value out of range, a bad option */
    INFP_ERR_SHAPE_MISMATCH = -2,   /* buffer shapes or counts do not fit together        */
    INFP_ERR_IO = -3,               /* a file could not be read or written                 */
    INFP_ERR_FORMAT = -4,           /* a file is not in the expected format                */
    INFP_ERR_OUT_OF_MEMORY = -5,    /* an allocation failed                                */
    INFP_ERR_INTERNAL = -6,         /* a bug in libinfp: please report it                  */
    INFP_ERR_CANCELLED = -7         /* a progress callback returned false                  */
} infp_status;

/* Message for the last failed call on this thread. Never NULL; "" if no call failed yet.
 * Valid until the next failing call on the same thread. */
const char *infp_last_error(void);

/* Library version, "MAJOR.MINOR.PATCH". Static string. */
const char *infp_version(void);

/* Short name of a status code ("ok", "invalid argument", ...). Static string. */
const char *infp_status_name(infp_status status);

typedef enum infp_log_level {
    INFP_LOG_DEBUG = 0,
    INFP_LOG_INFO = 1,
    INFP_LOG_WARNING = 2,
    INFP_LOG_ERROR = 3
} infp_log_level;

/* Receives log messages. The message is only valid during the call. */
typedef void (*infp_log_fn)(infp_log_level level, const char *message, void *user);

/* Routes library log messages to `fn` (NULL restores the default: stderr, warnings and
 * errors only). Process-wide. */
void infp_set_log_callback(infp_log_fn fn, void *user);

/* Progress of long calls: `done` in [0, 1]. Return false to cancel (INFP_ERR_CANCELLED). */
typedef bool (*infp_progress_fn)(float done, void *user);

/* ---- single operations (research, debugging, checking other implementations) -------- */

/* 2-D convolution, as torch.nn.functional.conv2d with groups = 1. */
typedef struct infp_conv2d_params {
    size_t size;      /* sizeof(infp_conv2d_params) */
    int32_t stride;   /* >= 1; 0 means 1 */
    int32_t padding;  /* >= 0, zero padding on every side */
    int32_t dilation; /* >= 1; 0 means 1 */
    int32_t n_threads;/* worker threads; 0 means all cores */
} infp_conv2d_params;

infp_conv2d_params infp_conv2d_default_params(void);

/* y = conv2d(x, w) + bias.
 * x: (N, C, H, W); w: (K, C, R, S); bias: K floats or NULL;
 * y: (N, K, Ho, Wo) with Ho = (H + 2p - d(R-1) - 1)/stride + 1, likewise Wo. */
infp_status infp_conv2d(const float *x, const int64_t x_shape[4],
                        const float *w, const int64_t w_shape[4],
                        const float *bias,
                        const infp_conv2d_params *params,
                        float *y, const int64_t y_shape[4]);

/* Gradients of sum(y * dy) for the same call: dx like x, dw like w, dbias K floats.
 * Any of dx, dw, dbias may be NULL when not wanted. */
infp_status infp_conv2d_backward(const float *x, const int64_t x_shape[4],
                                 const float *w, const int64_t w_shape[4],
                                 const infp_conv2d_params *params,
                                 const float *dy, const int64_t dy_shape[4],
                                 float *dx, float *dw, float *dbias);

typedef enum infp_fft_norm {
    INFP_FFT_BACKWARD = 0, /* forward unscaled, inverse scaled by 1/n (numpy/torch default) */
    INFP_FFT_ORTHO = 1     /* both scaled by 1/sqrt(n) */
} infp_fft_norm;

/* Real-to-complex 2-D FFT over axes (axis0, axis1) of a real tensor with `ndim` dims,
 * axis0 < axis1, as torch.fft.rfft2(x, dim=(axis0, axis1)).
 * y: shape of x with dim axis1 -> shape[axis1]/2 + 1, plus a trailing 2 (re, im);
 * y_count: number of floats in y (checked). */
infp_status infp_rfft2(const float *x, int32_t ndim, const int64_t *x_shape,
                       int32_t axis0, int32_t axis1, infp_fft_norm norm,
                       float *y, int64_t y_count);

/* Gradient of sum(y * dy) with respect to x for infp_rfft2 (dy laid out like y). */
infp_status infp_rfft2_backward(int32_t ndim, const int64_t *x_shape,
                                int32_t axis0, int32_t axis1, infp_fft_norm norm,
                                const float *dy, int64_t dy_count, float *dx);

/* Complex-to-real inverse 2-D FFT, as torch.fft.irfft2(z, s=(n0, n1), dim=(axis0, axis1)).
 * z: complex tensor given by `ndim` dims (without the trailing 2) in z_shape, with
 * z_shape[axis0] == n0 and z_shape[axis1] == n1/2 + 1; y: real, z_shape with axis1 -> n1.
 * Only the real parts of the DC and (even n1) Nyquist columns are used, as in FFTW. */
infp_status infp_irfft2(const float *z, int32_t ndim, const int64_t *z_shape,
                        int32_t axis0, int32_t axis1, int64_t n1, infp_fft_norm norm,
                        float *y, int64_t y_count);

/* Gradient of sum(y * dy) with respect to z for infp_irfft2 (dz laid out like z). */
infp_status infp_irfft2_backward(int32_t ndim, const int64_t *z_shape,
                                 int32_t axis0, int32_t axis1, int64_t n1, infp_fft_norm norm,
                                 const float *dy, int64_t dy_count, float *dz);

#ifdef __cplusplus
}
#endif

#endif /* INFP_H */
