"""Model.fit, train_step and score on tiny synthetic videos: loss decrease, determinism, the
step callback (statistics, cancelling, exceptions), checkpoints and exact resume, resizing,
input errors, and PSNR scoring against NumPy (INFP-SPEC §4–5)."""

import json

import numpy as np
import pytest

import infp
from infp import InfpError, Model
from infp import safetensors as st

H, W = 32, 48  # tiny preset
STATS_KEYS = {"epoch", "epochs", "step", "steps_per_epoch", "loss", "epoch_mean_loss", "clips_per_second",
              "learning_rate"}


def square_video(n=12, h=H, w=W, size=8, step=2, start=0, colour=(220, 180, 60)):
    """A square moving right by `step` pixels per frame (wrapping) on a dark background."""
    v = np.full((n, h, w, 3), 30, np.uint8)
    y0 = (h - size) // 2
    for f in range(n):
        x0 = (start + f * step) % (w - size)
        v[f, y0:y0 + size, x0:x0 + size] = colour
    return v


# 2 videos x 12 frames: 8 training clips each (spec §4 sampler), so 4 steps of 4 per epoch.
VIDEOS = [square_video(12), square_video(12, start=10)]
CLIPS_PER_EPOCH = 16
FIT = dict(batch_size=4, lr=1e-3, seed=5, progress=False)


def weights(model, tmp_path, name="w.safetensors"):
    """Every tensor of the model (weights, BatchNorm statistics and counters), read back from a
    checkpoint written by save (the same tensors as state_dict; the memory of normal footage
    that fit builds at the end is not part of the weights)."""
    path = tmp_path / name
    model.save(path)
    tensors, _ = st.load(path)
    return {k: v for k, v in tensors.items() if not k.startswith("memory.")}


def assert_same_weights(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def differing(a, b):
    return [k for k in a if not np.array_equal(a[k], b[k])]


def model_input(video):
    """uint8 (n, H, W, 3) -> float32 (n, 3, H, W) in [-1, 1] (spec §4), written here independently."""
    return (video.astype(np.float32) / np.float32(127.5) - np.float32(1)).transpose(0, 3, 1, 2).copy()


# ---- fit -------------------------------------------------------------------------------

def test_fit_reduces_the_loss():
    with Model("tiny", seed=0) as m:
        losses = m.fit(VIDEOS, epochs=3, **FIT)
    assert isinstance(losses, list) and len(losses) == 3
    assert all(isinstance(l, float) and np.isfinite(l) and l > 0 for l in losses)
    assert losses[1] < losses[0] and losses[2] < losses[1]
    assert losses[-1] < 0.9 * losses[0]


def test_fit_is_deterministic_per_seed(tmp_path):
    runs = {}
    for key, seed in (("a", 5), ("b", 5), ("c", 6)):
        with Model("tiny", seed=0) as m:
            losses = m.fit(VIDEOS, epochs=2, **{**FIT, "seed": seed})
            runs[key] = (losses, weights(m, tmp_path, f"{key}.safetensors"))
    assert runs["a"][0] == runs["b"][0]
    assert_same_weights(runs["a"][1], runs["b"][1])
    # another shuffling seed gives other weights
    assert runs["a"][0] != runs["c"][0]
    assert differing(runs["a"][1], runs["c"][1])


def test_fit_changes_the_weights(tmp_path):
    with Model("tiny", seed=0) as m:
        before = weights(m, tmp_path, "before.safetensors")
        m.fit(VIDEOS, epochs=1, **FIT)
        after = weights(m, tmp_path, "after.safetensors")
    changed = differing(before, after)
    assert "final.2.weight" in changed and "wrn38.mod1.conv1.weight" in changed
    # 4 steps x 4 frames through the backbone, 4 steps through the decoder
    assert after["wrn38.mod2.block1.bn1.0.num_batches_tracked"] == 16
    assert after["up8.bn.num_batches_tracked"] == 4


def test_fit_same_seed_same_state_dict():
    states = []
    for _ in range(2):
        with Model("tiny", seed=0) as m:
            m.fit(VIDEOS, epochs=1, **FIT)
            states.append(m.state_dict())
    assert_same_weights(*states)


def test_callback_receives_documented_stats():
    seen = []
    with Model("tiny", seed=0) as m:
        losses = m.fit(VIDEOS, epochs=2, milestones=[1], gamma=0.5, callback=seen.append, **FIT)
    steps = CLIPS_PER_EPOCH // FIT["batch_size"]
    assert len(seen) == 2 * steps
    for i, s in enumerate(seen):
        assert isinstance(s, dict) and set(s) == STATS_KEYS
        assert (s["epoch"], s["step"]) == (i // steps, i % steps + 1)
        assert (s["epochs"], s["steps_per_epoch"]) == (2, steps)
        assert np.isfinite(s["loss"]) and s["loss"] > 0
        assert s["clips_per_second"] > 0
        # the learning rate is halved at the milestone epoch 1
        assert s["learning_rate"] == pytest.approx(1e-3 if s["epoch"] == 0 else 5e-4, rel=1e-6)
    for e in range(2):
        epoch = seen[e * steps:(e + 1) * steps]
        for k, s in enumerate(epoch):
            assert s["epoch_mean_loss"] == pytest.approx(np.mean([t["loss"] for t in epoch[:k + 1]]), rel=1e-5)
        assert losses[e] == pytest.approx(epoch[-1]["epoch_mean_loss"], rel=1e-6)


def test_callback_returning_false_cancels(tmp_path):
    calls = []

    def stop_after_three(stats):
        calls.append(stats)
        return len(calls) < 3

    with Model("tiny", seed=0) as m:
        with pytest.raises(InfpError) as e:
            m.fit(VIDEOS, epochs=2, callback=stop_after_three, **FIT)
    assert e.value.status_name == "cancelled" and e.value.status == infp._lib.ERR_CANCELLED
    assert "cancelled" in e.value.message
    assert len(calls) == 3  # no step after the one that said stop

    # None (no return value) does not cancel
    with Model("tiny", seed=0) as m:
        assert len(m.fit(VIDEOS, epochs=1, callback=lambda s: None, **FIT)) == 1


def test_cancel_keeps_the_weights_of_the_last_completed_step(tmp_path):
    """Stopping at the end of epoch 0 of a 2-epoch run leaves the weights of a 1-epoch run."""
    with Model("tiny", seed=0) as m:
        with pytest.raises(InfpError, match="cancelled"):
            m.fit(VIDEOS, epochs=2, callback=lambda s: not (s["epoch"] == 0 and s["step"] == s["steps_per_epoch"]),
                  **FIT)
        stopped = weights(m, tmp_path, "stopped.safetensors")
    with Model("tiny", seed=0) as m:
        m.fit(VIDEOS, epochs=1, **FIT)
        one_epoch = weights(m, tmp_path, "one.safetensors")
    assert_same_weights(stopped, one_epoch)


def test_callback_exception_propagates():
    class Boom(Exception):
        pass

    calls = []

    def explode(stats):
        calls.append(stats)
        raise Boom("from the callback")

    with Model("tiny", seed=0) as m:
        with pytest.raises(Boom, match="from the callback"):
            m.fit(VIDEOS, epochs=2, callback=explode, **FIT)
        assert len(calls) == 1  # training stopped at the first step
        # the model is still usable
        assert len(m.fit(VIDEOS, epochs=1, **FIT)) == 1


def test_checkpoint_every_writes_a_checkpoint(tmp_path):
    path = tmp_path / "run.safetensors"
    with Model("tiny", seed=0) as m:
        m.fit(VIDEOS, epochs=2, checkpoint_every=1, checkpoint_path=path, **FIT)
        final = weights(m, tmp_path, "final.safetensors")
        config = m.config
    assert path.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final.safetensors", "run.safetensors"]  # no temporaries
    tensors, meta = st.load(path)
    assert meta["format"] == "infp" and json.loads(meta["infp_config"]) == config
    progress = json.loads(meta["infp_training"])
    assert progress["epoch"] == 2 and progress["epochs"] == 2
    for k in final:  # the model's tensors, as at the end of the run
        np.testing.assert_array_equal(tensors[k], final[k], err_msg=k)
    assert any(k.startswith("optim.") for k in tensors)  # optimizer state for resuming
    with Model.load(path) as back:  # and it loads as a model
        assert back.config == config


def test_resume_is_exactly_an_unbroken_run(tmp_path):
    fit = dict(FIT, milestones=[1], gamma=0.5)  # the schedule must be restored too
    with Model("tiny", seed=0) as m:
        full_losses = m.fit(VIDEOS, epochs=2, **fit)
        full = weights(m, tmp_path, "full.safetensors")

    ckpt = tmp_path / "epoch1.safetensors"
    with Model("tiny", seed=0) as m:
        first = m.fit(VIDEOS, epochs=1, checkpoint_every=1, checkpoint_path=ckpt, **fit)
    assert first == full_losses[:1]
    assert json.loads(st.load(ckpt)[1]["infp_training"])["epoch"] == 1

    # a model with other initial weights: everything comes from the checkpoint
    with Model("tiny", seed=9) as m:
        rest = m.fit(VIDEOS, epochs=2, resume=ckpt, **fit)
        resumed = weights(m, tmp_path, "resumed.safetensors")
    assert rest == full_losses[1:]
    assert_same_weights(full, resumed)


def test_resume_from_missing_checkpoint(tmp_path):
    with Model("tiny", seed=0) as m:
        with pytest.raises(InfpError) as e:
            m.fit(VIDEOS, epochs=2, resume=tmp_path / "nope.safetensors", **FIT)
    assert e.value.status_name == "io error" and "nope.safetensors" in e.value.message


def test_fit_resizes_videos_of_another_size(tmp_path):
    pytest.importorskip("PIL")
    data = pytest.importorskip("infp.data", reason="infp.data (resize_video) does not exist yet")
    if not hasattr(data, "resize_video"):
        pytest.skip("infp.data.resize_video does not exist yet")
    big = [square_video(12, h=2 * H, w=2 * W, size=16, step=4), square_video(12, h=2 * H, w=2 * W, size=16, start=20)]
    small = [data.resize_video(v, H, W) for v in big]
    assert small[0].shape == (12, H, W, 3) and small[0].dtype == np.uint8
    # Pillow's bicubic resize, done here independently
    from PIL import Image
    ref = np.asarray(Image.fromarray(big[0][3]).resize((W, H), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(small[0][3], ref)

    with Model("tiny", seed=0) as a, Model("tiny", seed=0) as b:
        la = a.fit(big, epochs=1, **FIT)
        lb = b.fit(small, epochs=1, **FIT)
        assert la == lb
        assert_same_weights(weights(a, tmp_path, "a.safetensors"), weights(b, tmp_path, "b.safetensors"))
        np.testing.assert_array_equal(a.score(big[0]), a.score(small[0]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16])
def test_wrong_video_dtype(dtype):
    video = square_video(12).astype(dtype)
    with Model("tiny", seed=0) as m:
        with pytest.raises(ValueError, match=r"videos\[1\] must be uint8") as e:
            m.fit([VIDEOS[0], video], epochs=1, **FIT)
        assert str(np.dtype(dtype)) in str(e.value)
        with pytest.raises(ValueError, match="uint8"):
            m.score(video)


@pytest.mark.parametrize("shape", [(12, H, W), (12, H, W, 4), (H, W, 3)])
def test_wrong_video_shape(shape):
    with Model("tiny", seed=0) as m:
        with pytest.raises(ValueError, match=r"\(n, H, W, 3\)"):
            m.fit([np.zeros(shape, np.uint8)], epochs=1, **FIT)
        with pytest.raises(ValueError, match=r"\(n, H, W, 3\)"):
            m.score(np.zeros(shape, np.uint8))


def test_fit_argument_errors():
    with Model("tiny", seed=0) as m:
        with pytest.raises(ValueError, match="at least one video"):
            m.fit([], epochs=1, progress=False)
        with pytest.raises(InfpError, match="batch_size is 1"):
            m.fit(VIDEOS, epochs=1, batch_size=1, progress=False)
        with pytest.raises(InfpError, match="0 training clips"):
            m.fit([square_video(4)], epochs=1, batch_size=2, progress=False)
        with pytest.raises(ValueError, match="at most 8 milestones"):
            m.fit(VIDEOS, epochs=1, milestones=range(1, 10), progress=False)


# ---- score ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained():
    m = Model("tiny", seed=0)
    m.fit(VIDEOS, epochs=2, **FIT)
    yield m
    m.close()


def test_score_is_psnr_of_predictions(trained):
    video = square_video(15, start=3)
    video[10:, 2:8, 2:8] = 255  # an anomaly: a white blob appears
    psnr = trained.score(video)
    assert psnr.shape == (15 - 4,) and psnr.dtype == np.float32
    assert np.all(np.isfinite(psnr))

    x = model_input(video)
    clips = np.stack([x[f:f + 4] for f in range(len(video) - 4)])  # frames f..f+3 -> frame f+4
    pred = trained.predict(clips).astype(np.float64)
    target = x[4:].astype(np.float64)
    mse = (((pred + 1) / 2 - (target + 1) / 2) ** 2).reshape(len(pred), -1).mean(axis=1)
    want = 10 * np.log10(1 / mse)
    np.testing.assert_allclose(psnr, want, rtol=0, atol=1e-3)
    assert np.ptp(want) > 0.01  # the video has structure the check can see
    # the anomaly lowers the PSNR of the frames that show it
    assert psnr[10 - 4:].max() < psnr[:10 - 4].min()


def test_score_minimum_length(trained):
    assert trained.score(square_video(5)).shape == (1,)
    with pytest.raises(ValueError, match="at least 5 frames"):
        trained.score(square_video(4))


def test_score_depends_on_the_model(trained):
    video = square_video(10, start=7)
    with Model("tiny", seed=0) as fresh:
        assert not np.allclose(fresh.score(video), trained.score(video), atol=1e-3)


# ---- train_step ------------------------------------------------------------------------------

def test_train_step_reduces_the_loss(tmp_path):
    x = model_input(VIDEOS[0])
    clips = np.stack([x[f:f + 4] for f in range(4)])
    targets = x[4:8]
    with Model("tiny", seed=0) as m:
        before = weights(m, tmp_path, "before.safetensors")
        losses = [m.train_step(clips, targets, lr=1e-3) for _ in range(6)]
        after = weights(m, tmp_path, "after.safetensors")
    assert all(isinstance(l, float) and np.isfinite(l) for l in losses)
    assert all(b < a for a, b in zip(losses, losses[1:])), losses
    assert losses[-1] < 0.9 * losses[0]
    assert "final.2.weight" in differing(before, after)


def test_train_step_optimizer_state_persists(tmp_path):
    """Adam's moments carry over between calls: two steps differ from two fresh-optimizer steps."""
    x = model_input(VIDEOS[1])
    clips = np.stack([x[f:f + 4] for f in range(2)])
    targets = x[4:6]
    with Model("tiny", seed=0) as a:
        a.train_step(clips, targets, lr=1e-3)
        a.train_step(clips, targets, lr=1e-3)
        wa = weights(a, tmp_path, "a.safetensors")
    with Model("tiny", seed=0) as b:
        b.train_step(clips, targets, lr=1e-3)
        b.save(tmp_path / "b1.safetensors")
    with Model.load(tmp_path / "b1.safetensors") as c:  # a checkpoint has no step-wise optimizer state
        c.train_step(clips, targets, lr=1e-3)
        wc = weights(c, tmp_path, "c.safetensors")
    assert differing(wa, wc)


def test_train_step_rejects_bad_shapes():
    with Model("tiny", seed=0) as m:
        with pytest.raises(ValueError, match="clips must have shape"):
            m.train_step(np.zeros((2, 3, 3, H, W), np.float32), np.zeros((2, 3, H, W), np.float32))
        with pytest.raises(ValueError, match=r"targets must have shape \(2, 3, 32, 48\)"):
            m.train_step(np.zeros((2, 4, 3, H, W), np.float32), np.zeros((2, 3, H, W - 8), np.float32))
