// line_monitor: live anomaly alerts for a production line camera, in C++17.
//
//     line_monitor CHECKPOINT RAW_VIDEO
//
// The same program as examples/c/line_monitor.c, with RAII handles: loads a calibrated
// checkpoint, reads a raw video (infp.data.write_raw_video's format) frame by frame, pushes
// every frame into a live stream, prints one line per alert start and end, a summary and the
// time per frame. Exit code 0 on success, 1 on error (with infp_last_error), 2 on bad usage.
#include "infp.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(infp_status status, const char *what) {
    if (status != INFP_OK)
        throw Error(std::string(what) + " failed: " + infp_status_name(status) + ": " + infp_last_error());
}

struct ModelFree {
    void operator()(infp_model *m) const { infp_model_free(m); }
};
struct StreamFree {
    void operator()(infp_stream *s) const { infp_stream_free(s); }
};
using Model = std::unique_ptr<infp_model, ModelFree>;
using Stream = std::unique_ptr<infp_stream, StreamFree>;

Model load_model(const std::string &path) {
    infp_model *m = nullptr;
    check(infp_model_load(path.c_str(), 0, &m), "infp_model_load");
    return Model(m);
}

Stream open_stream(infp_model *model, const infp_stream_params &params) {
    infp_stream *s = nullptr;
    check(infp_stream_create(model, &params, &s), "infp_stream_create");
    return Stream(s);
}

// Reader of infp.data.write_raw_video files: header, then frames one at a time.
class RawVideo {
public:
    explicit RawVideo(const std::string &path) : file_(path, std::ios::binary) {
        if (!file_) throw Error("cannot open " + path);
        unsigned char h[32];
        if (!file_.read(reinterpret_cast<char *>(h), sizeof h) || std::string(h, h + 8) != "INFPRAW1")
            throw Error(path + " is not an INFP raw video (no INFPRAW1 header)");
        frames = le32(h + 8);
        height = le32(h + 12);
        width = le32(h + 16);
        const uint32_t channels = le32(h + 20);
        if (channels != 3 || height == 0 || width == 0 || height > 65536 || width > 65536)
            throw Error(path + ": unsupported frames " + std::to_string(height) + "x" + std::to_string(width) + "x" +
                        std::to_string(channels));
    }

    // Reads the next frame (height x width x 3 RGB) into `pixels`.
    void next(std::vector<uint8_t> &pixels) {
        pixels.resize(static_cast<size_t>(height) * width * 3);
        if (!file_.read(reinterpret_cast<char *>(pixels.data()), static_cast<std::streamsize>(pixels.size())))
            throw Error("the video ends early");
    }

    uint32_t frames = 0, height = 0, width = 0;

private:
    static uint32_t le32(const unsigned char *p) {
        return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
    }
    std::ifstream file_;
};

int run(const std::string &checkpoint, const std::string &video_path) {
    std::printf("libinfp %s\n", infp_version());
    Model model = load_model(checkpoint);
    infp_calibration calibration{};
    calibration.size = sizeof calibration;
    check(infp_model_calibration(model.get(), &calibration), "infp_model_calibration");
    if (calibration.n_frames == 0)
        std::printf("warning: %s is not calibrated: PSNRs only, no alerts\n", checkpoint.c_str());
    else
        std::printf("calibration: threshold %.2f on the anomaly score, %s %.2f +- %.2f on normal footage\n",
                    calibration.threshold, calibration.method == INFP_SCORE_MEMORY ? "memory score" : "PSNR (dB)",
                    calibration.psnr_mean, calibration.psnr_std);

    RawVideo video(video_path);
    std::printf("video: %u frames of %ux%u\n", video.frames, video.height, video.width);

    infp_stream_params params = infp_stream_default_params();
    params.min_event_frames = 2;
    params.release_frames = 3;
    params.hysteresis = 0.5f;
    Stream stream = open_stream(model.get(), params);

    std::vector<uint8_t> pixels;
    std::vector<double> ms;
    int64_t events = 0, open_event = 0;
    for (uint32_t i = 0; i < video.frames; ++i) {
        video.next(pixels);
        infp_stream_result r{};
        r.size = sizeof r;
        const auto start = std::chrono::steady_clock::now();
        check(infp_stream_push(stream.get(), pixels.data(), video.height, video.width, 3, 0, &r, nullptr, 0),
              "infp_stream_push");
        ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        if (r.event_started) {
            ++events;
            open_event = r.event_id;
            std::printf("frame %lld: ALERT event %lld starts (anomaly score %.2f > threshold %.2f)\n",
                        static_cast<long long>(r.frame_index), static_cast<long long>(r.event_id), r.anomaly_score,
                        r.threshold);
        }
        if (r.event_ended) {
            open_event = 0;
            std::printf("frame %lld: event %lld ends\n", static_cast<long long>(r.frame_index),
                        static_cast<long long>(r.event_id));
        }
    }
    if (open_event != 0) std::printf("event %lld still on at the end of the video\n", static_cast<long long>(open_event));
    std::sort(ms.begin(), ms.end());
    const double median = ms.empty() ? 0.0 : ms[ms.size() / 2];
    std::printf("summary: %u frames, %lld events; %.2f ms per frame (median, this machine)\n", video.frames,
                static_cast<long long>(events), median);
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s CHECKPOINT RAW_VIDEO\n", argv[0]);
        return 2;
    }
    try {
        return run(argv[1], argv[2]);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "line_monitor: %s\n", e.what());
        return 1;
    }
}
