// A small C++ consumer of libinfp: version, a conv2d, an rfft2, and an error case turned into
// an exception. Build: see the Makefile's examples rule. Exits 0 on success.
#include "infp.h"

#include <array>
#include <cmath>
#include <complex>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Error : std::runtime_error {
    infp_status status;
    Error(infp_status s, const std::string &what) : std::runtime_error(what), status(s) {}
};

void check(infp_status status, const char *what) {
    if (status != INFP_OK)
        throw Error(status, std::string(what) + " failed (" + infp_status_name(status) + "): " + infp_last_error());
}

}  // namespace

int main() {
    try {
        std::printf("libinfp %s\n", infp_version());

        // Two output channels from one input channel: identity and a horizontal difference.
        const std::array<int64_t, 4> x_shape{1, 1, 3, 5}, w_shape{2, 1, 1, 2}, y_shape{1, 2, 3, 4};
        std::vector<float> x(15), y(24);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i * i);
        const std::vector<float> w{1.0f, 0.0f, -1.0f, 1.0f};
        infp_conv2d_params params = infp_conv2d_default_params();
        check(infp_conv2d(x.data(), x_shape.data(), w.data(), w_shape.data(), nullptr, &params, y.data(),
                          y_shape.data()),
              "infp_conv2d");
        for (int r = 0; r < 3; ++r) {
            for (int c = 0; c < 4; ++c) {
                const float a = x[static_cast<std::size_t>(r * 5 + c)], b = x[static_cast<std::size_t>(r * 5 + c + 1)];
                if (std::fabs(y[static_cast<std::size_t>(r * 4 + c)] - a) > 1e-3f ||
                    std::fabs(y[static_cast<std::size_t>(12 + r * 4 + c)] - (b - a)) > 1e-3f) {
                    std::fprintf(stderr, "conv2d mismatch at (%d, %d)\n", r, c);
                    return 1;
                }
            }
        }
        std::printf("conv2d ok\n");

        // rfft2 over the last two axes of a (2, 4, 4) stack, read as std::complex<float>.
        const std::array<int64_t, 3> stack_shape{2, 4, 4};
        std::vector<float> stack(32, 1.0f);
        std::vector<std::complex<float>> spectrum(2 * 4 * 3);
        check(infp_rfft2(stack.data(), 3, stack_shape.data(), 1, 2, INFP_FFT_ORTHO,
                         reinterpret_cast<float *>(spectrum.data()), static_cast<int64_t>(2 * spectrum.size())),
              "infp_rfft2");
        // A constant image has only a DC bin: sqrt(16) with ortho scaling.
        if (std::abs(spectrum[0] - std::complex<float>(4.0f, 0.0f)) > 1e-4f || std::abs(spectrum[1]) > 1e-4f) {
            std::fprintf(stderr, "rfft2: unexpected spectrum\n");
            return 1;
        }
        std::printf("rfft2 ok: DC = %g\n", static_cast<double>(spectrum[0].real()));

        // An error: axes out of order.
        try {
            check(infp_rfft2(stack.data(), 3, stack_shape.data(), 2, 1, INFP_FFT_ORTHO,
                             reinterpret_cast<float *>(spectrum.data()), static_cast<int64_t>(2 * spectrum.size())),
                  "infp_rfft2");
            std::fprintf(stderr, "expected an error\n");
            return 1;
        } catch (const Error &e) {
            if (e.status != INFP_ERR_INVALID_ARGUMENT) throw;
            std::printf("expected error ok: %s\n", e.what());
        }
        std::printf("ok\n");
        return 0;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
