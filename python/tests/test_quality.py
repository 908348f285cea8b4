"""Training-on-a-budget options of Model.fit (schedules, weight average, BatchNorm
re-estimation) and the anomaly scores of Model.anomaly_scores (psnr, patch, memory) on tiny
synthetic videos, against NumPy definitions; bad input."""

import numpy as np
import pytest

from infp import InfpError, Model, data
from infp import safetensors as st
from test_training import square_video as plain_square_video

H, W = 32, 48


def square_video(n=12, start=0, colour=(220, 180, 60)):
    """test_training's moving square, on a background with a horizontal gradient (texture)."""
    v = plain_square_video(n, start=start, colour=colour)
    background = np.all(v == 30, axis=-1)
    v[..., 1][background] = (np.arange(W, dtype=np.uint8)[None, None, :] + 40).repeat(H, 1).repeat(n, 0)[background]
    return v


VIDEOS = [square_video(12), square_video(12, start=10)]
FIT = dict(batch_size=4, lr=1e-3, seed=5, progress=False)


def patch_reference(err, p):
    """Largest mean of err (H, W) over p x p patches, stride p // 2, edge-aligned last patch."""
    h, w = err.shape
    ys = list(range(0, h - p + 1, max(1, p // 2)))
    xs = list(range(0, w - p + 1, max(1, p // 2)))
    ys += [h - p] if ys[-1] != h - p else []
    xs += [w - p] if xs[-1] != w - p else []
    return max(err[y:y + p, x:x + p].mean() for y in ys for x in xs)


@pytest.fixture(scope="module")
def model():
    m = Model("tiny", seed=1)
    m.fit(VIDEOS, epochs=1, **FIT)
    return m


def test_fit_remembers_training_footage(model):
    assert model.memory_frames == 24


def test_psnr_score_is_negative_psnr(model):
    v = square_video(10, start=3)
    np.testing.assert_allclose(model.anomaly_scores(v, "psnr"), -model.score(v), rtol=1e-6)


def test_patch_score_matches_numpy(model):
    v = square_video(10, start=3)
    err = ((model.predict_video(v) - data.to_model_input(v)[4:]) / 2) ** 2
    ref = [patch_reference(e.mean(0).astype(np.float64), 8) for e in err]
    np.testing.assert_allclose(model.anomaly_scores(v, "patch", patch_size=8), ref, rtol=1e-4)


def test_predict_video_equals_clip_predictions(model):
    v = square_video(9, start=1)
    clips, _ = data.clips(data.to_model_input(v))
    np.testing.assert_allclose(model.predict_video(v), model.predict(clips), atol=1e-5)


def test_smoothing_is_a_causal_mean(model):
    v = square_video(11, start=5)
    raw = model.anomaly_scores(v, "psnr").astype(np.float64)
    smooth = model.anomaly_scores(v, "psnr", smoothing=3)
    ref = [raw[max(0, i - 2):i + 1].mean() for i in range(len(raw))]
    np.testing.assert_allclose(smooth, ref, rtol=1e-5)


def test_memory_flags_a_recoloured_product(model):
    normal = VIDEOS[0]
    assert model.anomaly_scores(normal).max() < 1e-4  # seen in the memory: distance ~ 0
    odd = normal.copy()
    odd[6:8][np.all(odd[6:8] == (220, 180, 60), axis=-1)] = (60, 60, 220)
    s = model.anomaly_scores(odd)  # frames 4..11; clips holding frames 6, 7 are frames 6..11
    assert s[2:].min() > 100 * max(s[:2].max(), 1e-6), s


def test_memory_round_trips_through_a_checkpoint(model, tmp_path):
    path = tmp_path / "m.safetensors"
    model.save(path)
    tensors, meta = st.load(path)
    assert tensors["memory.features"].shape[0] == 24 and "infp_memory" in meta
    again = Model.load(path)
    v = square_video(10, start=7)
    np.testing.assert_array_equal(again.anomaly_scores(v), model.anomaly_scores(v))


def test_weights_only_checkpoint_is_exactly_the_state_dict(model, tmp_path):
    full, weights = tmp_path / "full.safetensors", tmp_path / "weights.safetensors"
    model.calibrate([square_video(12, start=3)], false_alarm_rate=0.1)
    try:
        model.save(full)
        model.save(weights, weights_only=True)
    finally:
        model.calibration = None  # the module's model stays uncalibrated for the other tests
    tensors, meta = st.load(weights)
    sd = model.state_dict()
    assert list(tensors) == list(sd)  # the released names, in order; no memory.* tensors
    for k in sd:
        np.testing.assert_array_equal(tensors[k], sd[k], err_msg=k)
    assert set(meta) == {"format", "infp_config"}
    assert "memory.features" in st.load(full)[0] and "infp_calibration" in st.load(full)[1]
    again = Model.load(weights)
    assert again.memory_frames == 0 and again.calibration is None
    v = square_video(10, start=7)
    np.testing.assert_array_equal(again.score(v), model.score(v))


def test_memory_needs_remembering():
    m = Model("tiny", seed=2)
    with pytest.raises(InfpError, match="remember"):
        m.anomaly_scores(square_video(8))
    m.remember([square_video(8)])
    assert m.memory_frames == 8
    assert m.anomaly_scores(square_video(8)).shape == (4,)


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="median"), "method must be one of"),
    (dict(method="patch", patch_size=1), "patch_size"),
    (dict(method="patch", patch_size=33), "patch_size"),
    (dict(method="psnr", smoothing=0), "smoothing"),
])
def test_bad_score_options(model, kwargs, message):
    with pytest.raises((ValueError, InfpError), match=message):
        model.anomaly_scores(square_video(8), **kwargs)


def test_short_videos_are_refused(model):
    with pytest.raises(ValueError, match="at least 5 frames"):
        model.anomaly_scores(square_video(4))
    with pytest.raises(InfpError, match="at least 5"):
        Model("tiny").remember([square_video(4)])


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_span_schedules_reach_their_end_rate(schedule):
    rates = []
    m = Model("tiny", seed=3)
    m.fit(VIDEOS, epochs=2, schedule=schedule, warmup=0.25, final_lr_factor=0.1, callback=lambda s: rates.append(s["learning_rate"]),
          remember=False, **FIT)
    assert len(rates) == 8 and max(rates) <= 1e-3 * (1 + 1e-6)
    if schedule == "cosine":
        # 8 steps, progress 0, 1/8, ...: warm-up over the first quarter, then down towards 1e-4.
        np.testing.assert_allclose(rates[:3], [1e-5, 5e-4, 1e-3], rtol=1e-5)
        assert rates[-1] < rates[3] and rates[-1] > 1e-4
    else:
        assert rates[0] == pytest.approx(4e-5, rel=1e-5) and np.argmax(rates) in (2, 3)
    assert m.memory_frames == 0


def test_ema_and_bn_reestimation_change_the_result_and_are_deterministic(tmp_path):
    def run(**kw):
        m = Model("tiny", seed=4)
        m.fit(VIDEOS, epochs=2, remember=False, **FIT, **kw)
        return m.state_dict()
    plain, ema, ema_again = run(), run(ema_decay=0.9, bn_batches=2), run(ema_decay=0.9, bn_batches=2)
    for k in ema:
        np.testing.assert_array_equal(ema[k], ema_again[k])
    assert any(not np.array_equal(plain[k], ema[k]) for k in plain if "running_mean" in k)
    assert any(not np.array_equal(plain[k], ema[k]) for k in plain if k.endswith("weight"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(schedule="linear"), "schedule must be one of"),
    (dict(schedule="cosine", warmup=1.0), "warmup"),
    (dict(schedule="cosine", final_lr_factor=2.0), "final_lr_factor"),
    (dict(ema_decay=1.0), "ema_decay"),
    (dict(ema_decay=-0.5), "ema_decay"),
    (dict(bn_batches=-1), "bn_batches"),
])
def test_bad_fit_options(kwargs, message):
    with pytest.raises((ValueError, InfpError), match=message):
        Model("tiny").fit(VIDEOS, epochs=1, **FIT, **kwargs)
