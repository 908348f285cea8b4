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
 *    "default" where documented. A struct from an older header is shorter: its size must end
 *    where one of its fields ends; a size that ends inside a field is refused.
 *  - Tensors are float32, C-contiguous (row-major), NCHW for images. Complex tensors are
 *    stored as float32 with a trailing dimension of 2 (real, imaginary).
 *  - Opaque handles are freed by their *_free function, which accepts NULL.
 *  - Nothing here traps on bad input: it returns an error status instead. Work whose memory
 *    grows with the input (batches of clips, long videos, large memories) runs in pieces of
 *    bounded size; requests beyond the machine's memory return INFP_ERR_OUT_OF_MEMORY before
 *    they start.
 *  - Files: checkpoints are read header first and must be regular files (FIFOs, devices and
 *    folders are refused at once). Saves are atomic (temporary file, fsync, rename), write
 *    through a symbolic link to its target, and remove temporaries left by killed writers of
 *    the same host. Paths are passed to the system byte for byte (any encoding).
 *  - Threads: n_threads is an upper bound on the threads a call uses. A model may be read
 *    (predicted, scored, saved, streamed) from a callback of infp_model_fit on the training
 *    thread; changing it from there returns INFP_ERR_INVALID_ARGUMENT.
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

/* ---- models ------------------------------------------------------------------------ */

/* An INFP network with its weights. Thread safety: infp_model_predict (and streams) may run
 * on several threads at once on one model; calls that change the model (loss_and_grads,
 * tensor_set, fit, calibrate) are exclusive — the library serialises them with a lock. */
typedef struct infp_model infp_model;

typedef struct infp_model_params {
    size_t size;             /* sizeof(infp_model_params) */
    const char *preset;      /* "small" (when NULL), "tiny" or "official" (INFP-SPEC §1) */
    const char *config_json; /* NULL, or a JSON object of config fields overriding the preset,
                                e.g. {"fusion": false, "filter_mode": "spatial"} */
    uint64_t seed;           /* seed of the weight initialisation */
    int32_t n_threads;       /* worker threads for this model's calls; 0 means all cores */
} infp_model_params;

infp_model_params infp_model_default_params(void);

/* A freshly initialised model. On success *out owns a handle (free with infp_model_free). */
infp_status infp_model_create(const infp_model_params *params, infp_model **out);

/* Loads a checkpoint (safetensors written by infp_model_save or by `python -m infp.convert`).
 * n_threads: 0 means all cores. Every name, shape and dtype is checked; all mismatches are
 * reported at once in infp_last_error(). Refused with INFP_ERR_FORMAT: tensors that share
 * bytes or names that appear twice, a config whose model the file cannot hold (checked before
 * the model is built), a memory of normal footage whose layout is not the model's, that is
 * empty or holds non-finite values, and training progress with impossible settings. */
infp_status infp_model_load(const char *path, int32_t n_threads, infp_model **out);

/* Writes the model atomically (temporary file, fsync, rename): a crash never leaves a
 * half-written checkpoint at `path`. The file holds the network's tensors under the released
 * state_dict names (weights, BatchNorm statistics, num_batches_tracked), followed, when the
 * model has them, by its memory of normal footage (tensors "memory.features" and
 * "memory.video_lengths", see infp_model_remember); __metadata__ holds "format": "infp",
 * "infp_config" and, once calibrated, "infp_calibration". Training checkpoints written by
 * infp_model_fit add the optimizer state as "optim.*" tensors. */
infp_status infp_model_save(infp_model *model, const char *path);

/* Writes only the network, atomically: exactly the released state_dict's tensors (names,
 * shapes and order of official-state-dict.txt, scaled to the preset) and the "infp_config"
 * metadata; no memory, calibration or optimizer state. For code that loads a state_dict
 * strictly, such as the authors' PyTorch model. infp_model_load reads it back. */
infp_status infp_model_save_weights(infp_model *model, const char *path);

void infp_model_free(infp_model *model);

infp_status infp_model_set_threads(infp_model *model, int32_t n_threads);

/* Number of trainable parameters (official preset: 317.4 M). */
infp_status infp_model_num_parameters(const infp_model *model, int64_t *out);

/* The model's config as a JSON object (spec §1 field names), NUL-terminated into buf when
 * buf_size is large enough; *needed (may be NULL) receives the size including the NUL.
 * buf may be NULL with buf_size 0 to ask for the size. */
infp_status infp_model_config_json(const infp_model *model, char *buf, size_t buf_size, size_t *needed);

/* Evaluation-mode prediction: clips (B, 4, 3, H, W) float32 in [-1, 1] -> frames (B, 3, H, W),
 * the predicted frame after each clip. H, W are the model's config height and width. */
infp_status infp_model_predict(const infp_model *model,
                               const float *clips, const int64_t clips_shape[5],
                               float *frames, const int64_t frames_shape[4]);

/* ---- model state: named tensors as in the released state_dict (research, checking) ---- */

typedef enum infp_tensor_kind {
    INFP_TENSOR_PARAMETER = 0, /* trainable float32 */
    INFP_TENSOR_BUFFER = 1,    /* BatchNorm running statistics, float32 */
    INFP_TENSOR_COUNTER = 2    /* BatchNorm num_batches_tracked: int64 scalar, read as 1 float */
} infp_tensor_kind;

infp_status infp_model_tensor_count(const infp_model *model, int64_t *out);

/* Name (NUL-terminated, truncated to name_size), rank, shape (up to 8 dims) and kind of the
 * index-th tensor (0-based, checkpoint order). Any output pointer may be NULL. */
infp_status infp_model_tensor_info(const infp_model *model, int64_t index,
                                   char *name, size_t name_size,
                                   int32_t *rank, int64_t shape[8], infp_tensor_kind *kind);

/* Copies the named tensor's values (count must equal its element count). */
infp_status infp_model_tensor_get(const infp_model *model, const char *name, float *out, int64_t count);

/* Overwrites the named tensor's values (count must equal its element count). */
infp_status infp_model_tensor_set(infp_model *model, const char *name, const float *values, int64_t count);

/* One training-mode forward and backward pass (BatchNorm batch statistics, running statistics
 * updated as in training, dropout as configured) on clips (B, 4, 3, H, W) and targets
 * (B, 3, H, W): *loss receives the config's loss; parameter gradients are kept in the model
 * until the next call and read with infp_model_grad_get. */
infp_status infp_model_loss_and_grads(infp_model *model,
                                      const float *clips, const int64_t clips_shape[5],
                                      const float *targets, const int64_t targets_shape[4],
                                      float *loss);

/* The gradient of the last infp_model_loss_and_grads for a parameter (zeros if it got none). */
infp_status infp_model_grad_get(const infp_model *model, const char *name, float *out, int64_t count);

/* ---- videos, training and scoring ---------------------------------------------------- */

/* A video at the model's frame size: uint8 RGB, frames x height x width x 3, row-major
 * (as NumPy's (n, H, W, 3)). The caller keeps the pixels alive during the call. */
typedef struct infp_video {
    const uint8_t *pixels;
    int64_t frames;
    int64_t height;
    int64_t width;
} infp_video;

/* Reported after every training step. */
typedef struct infp_train_stats {
    size_t size;             /* sizeof(infp_train_stats) */
    int32_t epoch;           /* 0-based epoch in progress */
    int32_t epochs;          /* epochs of the run */
    int32_t step;            /* 1-based step within the epoch */
    int32_t steps_per_epoch;
    float loss;              /* this step's loss */
    float epoch_mean_loss;   /* mean loss of the epoch so far */
    float clips_per_second;  /* training throughput of the epoch so far */
    float learning_rate;
} infp_train_stats;

/* Return false to cancel training (infp_model_fit then returns INFP_ERR_CANCELLED; the model
 * keeps the weights of the last completed step). */
typedef bool (*infp_train_callback)(const infp_train_stats *stats, void *user);

typedef struct infp_fit_params {
    size_t size;                 /* sizeof(infp_fit_params) */
    int32_t epochs;              /* epochs of the run; 0 means 150 (the released recipe) */
    int32_t batch_size;          /* clips per step, >= 2; 0 means 8 */
    float learning_rate;         /* Adam's rate; 0 means 2e-4 */
    int32_t milestones[8];       /* epochs at which the rate is multiplied by gamma ... */
    int32_t n_milestones;        /* ... how many of them; -1 means the default [100, 120] */
    float gamma;                 /* 0 means 0.5 */
    uint64_t seed;               /* clip shuffling and dropout */
    int32_t checkpoint_every;    /* save every this many epochs (and at the end); 0 = never */
    const char *checkpoint_path; /* where to save (weights, optimizer state, progress) */
    const char *resume_path;     /* NULL, or a checkpoint saved during a run: its weights,
                                    optimizer state and progress are restored and the run goes
                                    on from its epoch up to `epochs`, exactly as if unbroken */
    infp_progress_fn progress;   /* optional: fraction of the run done */
    infp_train_callback on_step; /* optional: statistics after every step */
    void *user;                  /* passed to both callbacks */
    float max_minutes;           /* time budget: stop after the step that exceeds it, as a
                                    normal end of the run; 0 means no limit */
    /* The fields below were added after the first release: set them from
     * infp_fit_default_params() (zero is a meaningful value for them). */
    int32_t schedule;            /* infp_schedule; default INFP_SCHEDULE_MULTISTEP (the released
                                    recipe: learning_rate, x gamma at each milestone epoch) */
    float warmup;                /* COSINE: fraction of the run warming up linearly; default 0.05 */
    float final_lr_factor;       /* COSINE: last rate / learning_rate; default 0.01 */
    float ema_decay;             /* exponential moving average of the weights, per step (e.g.
                                    0.998), put into the model when the run ends; 0 = off */
    int32_t bn_batches;          /* when the run ends, re-estimate BatchNorm running statistics
                                    over this many batches of training clips; 0 = off */
} infp_fit_params;

/* Learning-rate schedules of infp_fit_params.schedule. COSINE and ONECYCLE span the run: its
 * progress is the fraction of steps done (epochs x steps per epoch) or, with max_minutes, the
 * fraction of the time budget used, whichever is larger. */
typedef enum infp_schedule {
    INFP_SCHEDULE_MULTISTEP = 0, /* released recipe (spec section 4) */
    INFP_SCHEDULE_COSINE = 1,    /* linear warm-up, then half cosine to learning_rate x final_lr_factor */
    INFP_SCHEDULE_ONECYCLE = 2   /* PyTorch OneCycleLR shape: lr/25 up to lr over 30 %, cosine down to lr/25e4 */
} infp_schedule;

infp_fit_params infp_fit_default_params(void);

/* Trains the model on the training clips of normal videos (spec §4: 5-frame clips, shuffled,
 * Adam, multi-step schedule). Each call is one run with a fresh optimizer, unless
 * resume_path is given. Exclusive: no other call may use the model meanwhile. */
infp_status infp_model_fit(infp_model *model, const infp_video *videos, int64_t n_videos,
                           const infp_fit_params *params);

/* One Adam step (training mode) on a batch: clips (B, 4, 3, H, W), targets (B, 3, H, W).
 * The optimizer state lives in the model handle across calls; learning_rate 0 means 2e-4. */
infp_status infp_model_train_step(infp_model *model,
                                  const float *clips, const int64_t clips_shape[5],
                                  const float *targets, const int64_t targets_shape[4],
                                  float learning_rate, float *loss);

/* PSNR of the predicted frames 4..n-1 of a video (spec §5), evaluation mode: psnr receives
 * n_psnr = frames - 4 values. Higher = more normal. */
infp_status infp_model_score(const infp_model *model, const infp_video *video,
                             float *psnr, int64_t n_psnr);

/* Predicted frames 4..n-1 of a video, evaluation mode, each frame through the backbone once
 * (as infp_model_score): frames receives n_frames = frames - 4 images (3, H, W), float32 in
 * [-1, 1], contiguous. */
infp_status infp_model_predict_video(const infp_model *model, const infp_video *video,
                                     float *frames, int64_t n_frames);

/* ---- anomaly scores ----------------------------------------------------------------- */

/* How infp_model_anomaly_scores scores a frame (higher = more anomalous); docs/quality.md
 * has the measurements behind the default. */
typedef enum infp_score_method {
    INFP_SCORE_PSNR = 0,   /* the paper: -PSNR of the predicted frame */
    INFP_SCORE_PATCH = 1,  /* largest mean squared prediction error over patch_size patches */
    INFP_SCORE_MEMORY = 2  /* distance of the frame's 5-frame clip, in the model's backbone
                              features, to the nearest clip of normal footage (largest over
                              grid cells); needs infp_model_remember. The default. */
} infp_score_method;

typedef struct infp_score_params {
    size_t size;          /* sizeof(infp_score_params) */
    int32_t method;       /* infp_score_method */
    int32_t patch_size;   /* INFP_SCORE_PATCH: patch side in pixels (stride half of it); 16 */
    int32_t smoothing;    /* causal moving average over this many frames; 1 = none */
} infp_score_params;

infp_score_params infp_score_default_params(void);

/* Anomaly scores of frames 4..n-1 of a video (n_scores = frames - 4), evaluation mode;
 * params NULL means the defaults. Reads the model (runs beside predictions and streams). */
infp_status infp_model_anomaly_scores(const infp_model *model, const infp_video *video,
                                      const infp_score_params *params, float *scores, int64_t n_scores);

/* Builds the memory of normal footage used by INFP_SCORE_MEMORY from normal videos (at
 * least 5 frames each), replacing any earlier one; saved with the model. Build it again
 * after training: it holds the model's features. */
infp_status infp_model_remember(infp_model *model, const infp_video *videos, int64_t n_videos);

/* Frames held by the model's memory of normal footage (0 = none). */
infp_status infp_model_memory_frames(const infp_model *model, int64_t *frames);

/* ---- metrics ------------------------------------------------------------------------ */

/* ROC AUC of scores (higher = more anomalous) against 0/1 labels, ties counted 1/2 (equal to
 * scikit-learn's roc_auc_score). Both classes must be present. */
infp_status infp_roc_auc(const int32_t *labels, const double *scores, int64_t n, double *auc);

/* ROC curve points from the highest threshold down, starting at (0, 0, +inf): at most n + 1
 * points; *n_points receives how many were written (capacity must be >= n + 1). */
infp_status infp_roc_curve(const int32_t *labels, const double *scores, int64_t n,
                           double *fpr, double *tpr, double *thresholds,
                           int64_t capacity, int64_t *n_points);

/* Frame-level AUC of the field's protocol (spec §5) over several videos: per video, PSNR of
 * frames 4..n-1 (psnr_counts[v] values), min-max normalised within the video, and per-frame
 * 0/1 labels of all n frames (label_counts[v] = psnr_counts[v] + 4; the first 4 are dropped)
 * or of frames 4..n-1 only (label_counts[v] = psnr_counts[v]). */
infp_status infp_frame_auc(const double *const *psnr, const int64_t *psnr_counts,
                           const int32_t *const *labels, const int64_t *label_counts,
                           int64_t n_videos, double *auc);

/* Mean of per-video frame AUCs (videos with one class only are skipped). */
infp_status infp_macro_auc(const double *const *psnr, const int64_t *psnr_counts,
                           const int32_t *const *labels, const int64_t *label_counts,
                           int64_t n_videos, double *auc);

/* ---- live streams: one camera, one frame at a time, calibrated alerts ------------------ */

/* Pillow-compatible bicubic resize (as Image.resize(size, BICUBIC) and the Python loader,
 * spec §4): antialiased when shrinking, bit-identical to Pillow's 8-bit path.
 * src: height rows of width pixels of `channels` bytes — 3 (RGB), 4 (RGBA/RGBX, the 4th byte
 * is ignored) or 1 (grey, replicated to RGB) — rows row_stride_bytes apart (0 means
 * width * channels; otherwise >= width * channels). dst: out_height x out_width x 3 bytes,
 * RGB, row-major; dst_count must equal out_height * out_width * 3. */
infp_status infp_resize_rgb8(const uint8_t *src, int64_t height, int64_t width, int64_t channels,
                             int64_t row_stride_bytes, uint8_t *dst, int64_t out_height,
                             int64_t out_width, int64_t dst_count);

/* Calibration of live alerts on normal footage. The anomaly score of a frame is a z-score
 * of its raw score against normal footage (0 = a typical normal frame, higher = more
 * anomalous):
 *     method INFP_SCORE_PSNR:    anomaly_score = (psnr_mean - psnr) / psnr_std
 *     method INFP_SCORE_MEMORY:  anomaly_score = (memory_score - psnr_mean) / psnr_std
 * where psnr_mean and psnr_std are the mean and sample standard deviation (n - 1) of the raw
 * score (PSNR in dB, or the memory score of infp_model_anomaly_scores) over every scored frame
 * (frames 4..n-1) of the normal videos. threshold is the (1 - false_alarm_rate) quantile of
 * the normal frames' anomaly scores (linear interpolation, NumPy's default): about that
 * fraction of normal frames score above it. Calibrate on normal footage neither trained on nor
 * remembered (infp_model_remember), from the same camera; calibrate again after training. */
typedef struct infp_calibration {
    size_t size;            /* sizeof(infp_calibration), set by the caller */
    float false_alarm_rate; /* per-frame rate asked for, in (0, 1) */
    float psnr_mean;        /* mean of the raw score: dB for PSNR (name kept from version 1) */
    float psnr_std;         /* its sample standard deviation */
    float threshold;        /* on the anomaly score */
    int64_t n_frames;       /* scored normal frames; 0 = the model is not calibrated */
    int64_t n_videos;
    int32_t method;         /* INFP_SCORE_PSNR or INFP_SCORE_MEMORY (added later: a struct
                               of the first version's size reads as PSNR) */
} infp_calibration;

/* Scores the normal videos (each at the model's frame size, >= 5 frames), computes the
 * calibration and stores it in the model: infp_model_save writes it into the checkpoint
 * (__metadata__["infp_calibration"], JSON) and infp_model_load reads it back. out may be NULL.
 * The score is the memory score when the model has a memory of normal footage
 * (infp_model_remember; docs/quality.md), else PSNR. Streams created afterwards use it;
 * existing streams keep the calibration they started with. */
infp_status infp_model_calibrate(infp_model *model, const infp_video *normal_videos, int64_t n_videos,
                                 float false_alarm_rate, infp_calibration *out);

/* The same with the score chosen: INFP_SCORE_PSNR, INFP_SCORE_MEMORY, or -1 for the default. */
infp_status infp_model_calibrate_score(infp_model *model, const infp_video *normal_videos, int64_t n_videos,
                                       float false_alarm_rate, int32_t method, infp_calibration *out);

/* The model's calibration. An uncalibrated model is not an error: *out gets n_frames = 0,
 * n_videos = 0 and NaN in every float field. out->size must be set. */
infp_status infp_model_calibration(const infp_model *model, infp_calibration *out);

/* Replaces the model's calibration with the caller's (e.g. a threshold tuned by hand; the
 * fields are checked: finite, psnr_std >= 0, false_alarm_rate in [0, 1)), or removes it when
 * calibration is NULL. */
infp_status infp_model_set_calibration(infp_model *model, const infp_calibration *calibration);

/* A live stream of one camera through a model. Thread safety: calls on one stream are
 * serialised by a lock (use a stream from one thread at a time); several streams may share
 * one model on different threads. The stream keeps its model alive: infp_model_free may come
 * first. Each frame goes through the backbone once (the features of the last 4 frames are
 * kept), so a frame costs one backbone pass plus fusion and decoder; its PSNR equals the batch
 * infp_model_score of the same frames (to float rounding). */
typedef struct infp_stream infp_stream;

/* Alerts need no future frames. Outside an event, a frame exceeds when anomaly_score >
 * threshold; an event starts on the min_event_frames-th exceeding frame in a row (that frame
 * is the first with alert). Inside an event, a frame releases when anomaly_score <
 * threshold - hysteresis; the event ends on the release_frames-th releasing frame in a row
 * (that frame has event_ended and no alert). */
typedef struct infp_stream_params {
    size_t size;              /* sizeof(infp_stream_params) */
    int32_t n_threads;        /* worker threads of this stream's pushes; 0 means the model's */
    int32_t min_event_frames; /* >= 1; 0 means 2 */
    int32_t release_frames;   /* >= 1; 0 means 3 */
    float hysteresis;         /* z units; 0 means 0.5; negative means none (0) */
    float threshold_override; /* 0 means the calibration's threshold; otherwise this threshold
                                 (z units; needs a calibrated model) */
} infp_stream_params;

infp_stream_params infp_stream_default_params(void);

/* A stream on a model. An uncalibrated model gives PSNRs but no anomaly score (NaN) and never
 * alerts (a warning is logged). The stream uses the model's calibration at creation. */
infp_status infp_stream_create(infp_model *model, const infp_stream_params *params, infp_stream **out);

typedef struct infp_stream_result {
    size_t size;          /* sizeof(infp_stream_result), set by the caller */
    int64_t frame_index;  /* 0-based index of the pushed frame since creation or reset */
    bool has_score;       /* false for the first 4 frames (nothing to predict them from) */
    float psnr;           /* dB, higher = more normal; NaN without a score */
    float anomaly_score;  /* the calibration's z-score (see infp_calibration); NaN without
                             score or calibration */
    float threshold;      /* threshold in use; NaN without calibration */
    bool alert;           /* the frame is part of an event */
    bool event_started;   /* an event starts on this frame */
    bool event_ended;     /* the event ended on this frame (this frame is not alerted) */
    int64_t event_id;     /* 1-based number of the event this frame starts, is in or ends; else 0 */
} infp_stream_result;

/* Pushes one frame: height x width pixels of `channels` bytes (3 RGB, 4 RGBA/RGBX, 1 grey),
 * rows row_stride_bytes apart (0 means width * channels), any size: resized to the model's
 * size as infp_resize_rgb8 does (the same resize as the Python loader). result receives the
 * frame's scores. error_map: NULL (error_map_count 0), or the model's height x width floats
 * receiving, per pixel, the mean over RGB of the squared prediction error on [0, 1] images
 * (zeros while has_score is false). */
infp_status infp_stream_push(infp_stream *stream, const uint8_t *pixels, int64_t height, int64_t width,
                             int64_t channels, int64_t row_stride_bytes, infp_stream_result *result,
                             float *error_map, int64_t error_map_count);

/* Forgets past frames and events: the next frame is frame 0 again (e.g. after a camera gap). */
infp_status infp_stream_reset(infp_stream *stream);

void infp_stream_free(infp_stream *stream);

#ifdef __cplusplus
}
#endif

#endif /* INFP_H */
