/* A small C consumer of libinfp: version, a conv2d, an rfft2 / irfft2 round trip, and an
 * error case. Build: see the Makefile's examples rule. Exits 0 on success. */
#include "infp.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define CHECK(call)                                                                        \
    do {                                                                                   \
        infp_status check_status_ = (call);                                                \
        if (check_status_ != INFP_OK) {                                                    \
            fprintf(stderr, "%s failed: %s: %s\n", #call, infp_status_name(check_status_), \
                    infp_last_error());                                                    \
            return 1;                                                                      \
        }                                                                                  \
    } while (0)

static int log_messages = 0;

static void on_log(infp_log_level level, const char *message, void *user) {
    (void)level;
    (void)message;
    *(int *)user += 1;
}

int main(void) {
    float x[16], w[9], bias[1] = {0.5f}, y[16], spectrum[4 * 3 * 2], back[16];
    const int64_t x_shape[4] = {1, 1, 4, 4}, w_shape[4] = {1, 1, 3, 3}, y_shape[4] = {1, 1, 4, 4};
    const int64_t image_shape[2] = {4, 4}, spectrum_shape[2] = {4, 3};
    const int64_t wrong_shape[4] = {1, 1, 5, 5};
    infp_conv2d_params params = infp_conv2d_default_params();
    infp_status status;
    int i, j, a, b;

    printf("libinfp %s\n", infp_version());
    for (i = 0; i < 16; i++) x[i] = (float)i;
    for (i = 0; i < 9; i++) w[i] = 1.0f;

    /* 3x3 box sum with zero padding 1, plus bias. */
    params.padding = 1;
    params.n_threads = 1;
    CHECK(infp_conv2d(x, x_shape, w, w_shape, bias, &params, y, y_shape));
    for (i = 0; i < 4; i++) {
        for (j = 0; j < 4; j++) {
            float want = bias[0];
            for (a = -1; a <= 1; a++)
                for (b = -1; b <= 1; b++)
                    if (i + a >= 0 && i + a < 4 && j + b >= 0 && j + b < 4) want += x[(i + a) * 4 + j + b];
            if (fabsf(y[i * 4 + j] - want) > 1e-4f) {
                fprintf(stderr, "conv2d: y[%d][%d] = %g, want %g\n", i, j, y[i * 4 + j], want);
                return 1;
            }
        }
    }
    printf("conv2d ok: y[1][1] = %g\n", y[5]);

    /* rfft2 of the 4x4 image: the DC bin is the sum, 120. Then back with irfft2. */
    CHECK(infp_rfft2(x, 2, image_shape, 0, 1, INFP_FFT_BACKWARD, spectrum, 24));
    if (fabsf(spectrum[0] - 120.0f) > 1e-3f || fabsf(spectrum[1]) > 1e-3f) {
        fprintf(stderr, "rfft2: DC bin is %g%+gi, want 120\n", spectrum[0], spectrum[1]);
        return 1;
    }
    CHECK(infp_irfft2(spectrum, 2, spectrum_shape, 0, 1, 4, INFP_FFT_BACKWARD, back, 16));
    for (i = 0; i < 16; i++) {
        if (fabsf(back[i] - x[i]) > 1e-4f) {
            fprintf(stderr, "irfft2(rfft2(x))[%d] = %g, want %g\n", i, back[i], x[i]);
            return 1;
        }
    }
    printf("rfft2 ok: DC = %g, irfft2 round trip ok\n", spectrum[0]);

    /* An error: the output shape does not fit. The call fails cleanly with a message. */
    infp_set_log_callback(on_log, &log_messages);
    status = infp_conv2d(x, x_shape, w, w_shape, NULL, &params, y, wrong_shape);
    infp_set_log_callback(NULL, NULL);
    if (status != INFP_ERR_SHAPE_MISMATCH || strlen(infp_last_error()) == 0 || log_messages == 0) {
        fprintf(stderr, "expected a shape mismatch, got %s: '%s' (%d log messages)\n",
                infp_status_name(status), infp_last_error(), log_messages);
        return 1;
    }
    printf("expected error ok: %s: %s\n", infp_status_name(status), infp_last_error());

    /* NULL pointers are rejected too. */
    status = infp_rfft2(NULL, 2, image_shape, 0, 1, INFP_FFT_BACKWARD, spectrum, 24);
    if (status != INFP_ERR_INVALID_ARGUMENT) {
        fprintf(stderr, "expected invalid argument, got %s\n", infp_status_name(status));
        return 1;
    }
    printf("ok\n");
    return 0;
}
