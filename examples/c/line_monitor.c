/* line_monitor: live anomaly alerts for a production line camera, in C99.
 *
 *     line_monitor CHECKPOINT RAW_VIDEO
 *
 * Loads a calibrated checkpoint (infp.Model.calibrate(...) then save(...)), reads a raw video
 * (the format of infp.data.write_raw_video: a 32-byte header "INFPRAW1", uint32 frames,
 * height, width, channels = 3, 8 reserved bytes, then frames of height x width x 3 RGB bytes)
 * frame by frame, as a camera would deliver them, pushes each frame into a live stream and
 * prints one line per alert start and end, then a summary. Frames of any size are resized
 * inside the library to the model's size. Exit code 0 on success, 1 on any error (with
 * infp_last_error), 2 on bad usage. */
#include "infp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t read_le32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static int fail(const char *what, infp_status status) {
    fprintf(stderr, "line_monitor: %s failed: %s: %s\n", what, infp_status_name(status), infp_last_error());
    return 1;
}

int main(int argc, char **argv) {
    infp_model *model = NULL;
    infp_stream *stream = NULL;
    infp_stream_params params = infp_stream_default_params();
    infp_calibration calibration;
    infp_stream_result result;
    unsigned char header[32];
    unsigned char *frame = NULL;
    FILE *file = NULL;
    uint32_t n_frames, height, width, channels, i;
    size_t frame_bytes;
    int64_t events = 0, alerted_frames = 0, open_event = 0;
    float worst_score = 0.0f;
    int64_t worst_frame = -1;
    infp_status status;
    int rc = 1;

    if (argc != 3) {
        fprintf(stderr, "usage: %s CHECKPOINT RAW_VIDEO\n", argv[0]);
        return 2;
    }
    printf("libinfp %s\n", infp_version());

    status = infp_model_load(argv[1], 0, &model);
    if (status != INFP_OK) return fail("infp_model_load", status);
    calibration.size = sizeof calibration;
    status = infp_model_calibration(model, &calibration);
    if (status != INFP_OK) { rc = fail("infp_model_calibration", status); goto done; }
    if (calibration.n_frames == 0) {
        printf("warning: %s is not calibrated: PSNRs only, no alerts\n", argv[1]);
    } else {
        /* The raw score's statistics on normal footage: the memory score, or PSNR in dB. */
        int memory = calibration.method == INFP_SCORE_MEMORY;
        printf("calibration: %s %.2f +- %.2f%s over %lld normal frames, threshold %.2f "
               "(false-alarm rate %.3f per frame)\n", memory ? "memory score" : "PSNR",
               calibration.psnr_mean, calibration.psnr_std, memory ? "" : " dB", (long long)calibration.n_frames,
               calibration.threshold, calibration.false_alarm_rate);
    }

    file = fopen(argv[2], "rb");
    if (file == NULL) {
        fprintf(stderr, "line_monitor: cannot open %s\n", argv[2]);
        goto done;
    }
    if (fread(header, 1, sizeof header, file) != sizeof header || memcmp(header, "INFPRAW1", 8) != 0) {
        fprintf(stderr, "line_monitor: %s is not an INFP raw video (no INFPRAW1 header)\n", argv[2]);
        goto done;
    }
    n_frames = read_le32(header + 8);
    height = read_le32(header + 12);
    width = read_le32(header + 16);
    channels = read_le32(header + 20);
    if (channels != 3 || height == 0 || width == 0 || height > 65536 || width > 65536) {
        fprintf(stderr, "line_monitor: %s: unsupported frames %ux%ux%u\n", argv[2], height, width, channels);
        goto done;
    }
    frame_bytes = (size_t)height * width * channels;
    frame = (unsigned char *)malloc(frame_bytes);
    if (frame == NULL) {
        fprintf(stderr, "line_monitor: out of memory\n");
        goto done;
    }
    printf("video: %u frames of %ux%u\n", n_frames, height, width);

    /* Alerts: two frames in a row above the threshold start an event; three frames in a row
     * below threshold - 0.5 end it. One stream per camera; one thread here. */
    params.min_event_frames = 2;
    params.release_frames = 3;
    params.hysteresis = 0.5f;
    status = infp_stream_create(model, &params, &stream);
    if (status != INFP_OK) { rc = fail("infp_stream_create", status); goto done; }
    /* The stream keeps the model alive: the model handle may go now. */
    infp_model_free(model);
    model = NULL;

    for (i = 0; i < n_frames; i++) {
        if (fread(frame, 1, frame_bytes, file) != frame_bytes) {
            fprintf(stderr, "line_monitor: %s ends at frame %u of %u\n", argv[2], i, n_frames);
            goto done;
        }
        result.size = sizeof result;
        status = infp_stream_push(stream, frame, height, width, 3, 0, &result, NULL, 0);
        if (status != INFP_OK) { rc = fail("infp_stream_push", status); goto done; }
        if (result.has_score && !isnan(result.anomaly_score) && result.anomaly_score > worst_score) {
            worst_score = result.anomaly_score;
            worst_frame = result.frame_index;
        }
        if (result.alert) alerted_frames++;
        if (result.event_started) {
            events++;
            open_event = result.event_id;
            printf("frame %lld: ALERT event %lld starts (anomaly score %.2f > threshold %.2f, PSNR %.2f dB)\n",
                   (long long)result.frame_index, (long long)result.event_id, result.anomaly_score,
                   result.threshold, result.psnr);
        }
        if (result.event_ended) {
            open_event = 0;
            printf("frame %lld: event %lld ends (anomaly score %.2f)\n", (long long)result.frame_index,
                   (long long)result.event_id, result.anomaly_score);
        }
    }
    if (open_event != 0) printf("event %lld still on at the end of the video\n", (long long)open_event);
    printf("summary: %u frames, %lld events, %lld alerted frames, highest anomaly score %.2f at frame %lld\n",
           n_frames, (long long)events, (long long)alerted_frames, worst_score, (long long)worst_frame);
    rc = 0;

done:
    infp_stream_free(stream);
    infp_model_free(model);
    free(frame);
    if (file != NULL) fclose(file);
    return rc;
}
