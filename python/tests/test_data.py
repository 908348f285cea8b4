"""infp.data: synthetic production lines, the IPAD loader, model inputs, clips, raw videos."""

import os

import numpy as np
import pytest

from infp import data
from infp.data import ANOMALIES, SCENES, Event

H, W = 32, 48  # the `tiny` preset's frame size


def tiny(scene="conveyor", n=60, events=(), seed=0, **kw):
    return data.synthetic_video(scene, n, events, height=H, width=W, seed=seed, **kw)


# ---- synthetic lines ---------------------------------------------------------------------

def test_synthetic_line_shapes_and_determinism():
    kw = dict(n_train_videos=2, n_test_videos=3, frames_per_video=50, height=H, width=W)
    a = data.synthetic_line("conveyor", seed=5, **kw)
    b = data.synthetic_line("conveyor", seed=5, **kw)
    c = data.synthetic_line("conveyor", seed=6, **kw)
    assert len(a.train) == 2 and len(a.test) == 3 and len(a.labels) == 3 and len(a.events) == 3
    for v in a.train + a.test:
        assert v.dtype == np.uint8 and v.shape == (50, H, W, 3) and v.flags.c_contiguous
    for lab in a.labels:
        assert lab.dtype == np.int64 and lab.shape == (50,) and set(np.unique(lab)) <= {0, 1}
    for x, y in zip(a.train + a.test, b.train + b.test):
        np.testing.assert_array_equal(x, y)
    for x, y in zip(a.labels, b.labels):
        np.testing.assert_array_equal(x, y)
    assert a.events == b.events
    assert not np.array_equal(a.train[0], c.train[0])
    assert not np.array_equal(a.train[0], a.train[1])  # videos of one line differ (phase, noise, light)
    assert a.scene == "conveyor" and a.info["period"] > 0
    assert "conveyor" in repr(a) and "anomalous frames" in repr(a)


@pytest.mark.parametrize("scene", SCENES)
def test_every_scene_labels_match_events(scene):
    ds = data.synthetic_line(scene, n_train_videos=1, n_test_videos=3, frames_per_video=80, height=H, width=W,
                             seed=1)
    train = ds.train[0].astype(np.int16)
    assert np.abs(np.diff(train, axis=0)).max() > 50  # things move
    for video, lab, evs in zip(ds.test, ds.labels, ds.events):
        assert video.shape == (80, H, W, 3)
        union = np.zeros(80, np.int64)
        for e in evs:
            assert isinstance(e, Event) and e.kind in ANOMALIES and 0 <= e.start < e.end <= 80
            union[e.start:e.end] = 1
        np.testing.assert_array_equal(lab, union)
        assert [e.start for e in evs] == sorted(e.start for e in evs)
        assert lab[4:].any() and not lab[4:].all()  # normal and anomalous frames after the first four


def test_all_kinds_appear_across_test_videos():
    ds = data.synthetic_line("bottling", n_train_videos=0, n_test_videos=8, frames_per_video=120, height=H,
                             width=W, seed=2)
    assert {e.kind for evs in ds.events for e in evs} == set(ANOMALIES)
    only = data.synthetic_line("press", 0, 2, 80, H, W, anomalies=["color", "missing"], seed=3)
    assert {e.kind for evs in only.events for e in evs} <= {"colour", "missing"}


@pytest.mark.parametrize("scene", SCENES)
@pytest.mark.parametrize("kind", ANOMALIES)
def test_every_kind_changes_the_labelled_frames(scene, kind):
    """The same video with and without the event: identical before it, different in every
    labelled frame."""
    n, start, end = 90, 30, 44
    with_event, lab, evs = tiny(scene, n, [(start, end, kind)], seed=7)
    normal, lab0, evs0 = tiny(scene, n, [], seed=7)
    assert not lab0.any() and evs0 == []
    assert lab.any() and all(e.kind == kind for e in evs)
    diff = np.abs(with_event.astype(np.int16) - normal.astype(np.int16)).reshape(n, -1).max(1)
    assert (diff[:start - 5] == 0).all()
    assert (diff[lab.astype(bool)] > 0).all()
    assert diff.max() >= 20
    if kind in ("speed", "stopped"):
        np.testing.assert_array_equal(np.nonzero(lab)[0], np.arange(start, end))


def test_stopped_line_freezes_but_lighting_goes_on():
    quiet = dict(noise=0.0, flicker=0.0, lighting=0.0)
    v, lab, _ = tiny("pick_and_place", 60, [(20, 35, "stopped")], **quiet)
    assert (np.diff(v[20:35].astype(np.int16), axis=0) == 0).all()
    assert np.abs(np.diff(v[:20].astype(np.int16), axis=0)).reshape(19, -1).max(1).min() > 0
    lit, _, _ = tiny("pick_and_place", 60, [(20, 35, "stopped")], noise=0.0, flicker=0.0)
    assert np.abs(np.diff(lit[20:35].astype(np.int16), axis=0)).max() > 0  # the light still drifts


@pytest.mark.parametrize("scene", SCENES)
def test_normal_footage_is_periodic(scene):
    sc = data._scene(scene, H, W, 0)
    period = int(sc.period) * (sc.slots if scene == "turntable" else 1)  # the table's marker turns once per revolution
    quiet = dict(noise=0.0, flicker=0.0, lighting=0.0, jitter=0.0)
    v, _, _ = tiny(scene, 2 * period + 5, seed=3, **quiet)
    assert float(sc.period).is_integer()
    d = np.abs(v[period:].astype(np.int16) - v[:-period].astype(np.int16))
    assert d.max() <= 1
    assert np.abs(v[1:].astype(np.int16) - v[:-1].astype(np.int16)).max() > 20


def test_lighting_drifts_in_normal_videos():
    n = 200
    lit, _, _ = tiny("conveyor", n, seed=4, noise=0.0, flicker=0.0)
    flat, _, _ = tiny("conveyor", n, seed=4, noise=0.0, flicker=0.0, lighting=0.0)
    ratio = lit.reshape(n, -1).mean(1) / flat.reshape(n, -1).mean(1)
    assert ratio.max() / ratio.min() > 1.03          # brightness drifts over the video
    # and the training videos of a dataset have it too: the static background's brightness moves
    ds = data.synthetic_line("conveyor", 1, 0, n, H, W, seed=4)
    corner = ds.train[0][:, :4, :4].reshape(n, -1).mean(1)
    assert corner.max() - corner.min() > 4


def test_flicker_is_occasional_and_unlabelled():
    n = 200
    v, lab, _ = tiny("cutter", n, seed=5, noise=0.0, flicker=0.05, lighting=0.0)
    ref, _, _ = tiny("cutter", n, seed=5, noise=0.0, flicker=0.0, lighting=0.0)
    ratio = v.reshape(n, -1).mean(1) / ref.reshape(n, -1).mean(1)
    jumps = np.abs(ratio - 1) > 0.04
    assert 0 < jumps.sum() < n // 4 and not lab.any()


def test_noise_and_jitter_are_controlled_by_the_seed():
    a, _, _ = tiny("turntable", 30, seed=9)
    b, _, _ = tiny("turntable", 30, seed=9)
    c, _, _ = tiny("turntable", 30, seed=10)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    clean, _, _ = tiny("turntable", 30, seed=9, noise=0.0)
    resid = a.astype(np.float64) - clean
    assert 1.0 < resid.std() < 3.0  # σ = 2 grey levels by default


def test_synthetic_errors():
    with pytest.raises(ValueError, match="unknown scene"):
        data.synthetic_line("assembly")
    with pytest.raises(ValueError, match="unknown anomaly kind"):
        data.synthetic_line("conveyor", 1, 1, 60, H, W, anomalies=["wobble"])
    with pytest.raises(ValueError, match="at least one kind"):
        data.synthetic_line("conveyor", 1, 1, 60, H, W, anomalies=[])
    with pytest.raises(ValueError, match="at least 16"):
        data.synthetic_video("conveyor", 10, height=8, width=8)
    with pytest.raises(ValueError, match="empty"):
        tiny(events=[(70, 80, "colour")])


# ---- model inputs and clips -----------------------------------------------------------

def test_to_model_input_and_back(rng):
    v = rng.integers(0, 256, (3, 4, 5, 3), dtype=np.uint8)
    v[0, 0, 0] = (0, 127, 255)
    x = data.to_model_input(v)
    assert x.dtype == np.float32 and x.shape == (3, 3, 4, 5) and x.flags.c_contiguous
    np.testing.assert_array_equal(x, np.transpose(v, (0, 3, 1, 2)).astype(np.float32) / np.float32(127.5) - 1)
    assert x[0, 0, 0, 0] == -1 and x[0, 2, 0, 0] == 1
    np.testing.assert_array_equal(data.to_uint8(x), v)
    assert data.to_model_input(v[0]).shape == (3, 4, 5)
    with pytest.raises(ValueError, match="uint8"):
        data.to_model_input(v.astype(np.float32))


def test_clips_are_windows_of_the_video(rng):
    x = rng.standard_normal((9, 3, 4, 5)).astype(np.float32)
    cl, tg = data.clips(x)
    assert cl.shape == (5, 4, 3, 4, 5) and tg.shape == (5, 3, 4, 5)
    for i in range(5):
        np.testing.assert_array_equal(cl[i], x[i:i + 4])
        np.testing.assert_array_equal(tg[i], x[i + 4])
    assert not cl.flags.writeable and np.shares_memory(cl, x)
    cl2, tg2 = data.clips(x, step=2)
    assert cl2.shape[0] == 3
    np.testing.assert_array_equal(tg2, x[[4, 6, 8]])
    np.testing.assert_array_equal(cl2[2], x[4:8])
    np.testing.assert_array_equal(np.ascontiguousarray(cl2[1:3]), np.stack([x[2:6], x[4:8]]))
    with pytest.raises(ValueError, match="to_model_input"):
        data.clips(np.zeros((9, 4, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="more than 4 frames"):
        data.clips(x[:4])


def test_training_clips_follow_the_released_sampler():
    lengths = [7, 12, 100, 101, 203, 3]
    idx = data.training_clips(lengths, seed=0)
    expected = []
    for v, n in enumerate(lengths):
        step = 2 if n > 100 else 1
        for s in range(0, n // 5 * 5, step):
            if len(range(n)[s:s + 5]) == 5:
                expected.append((v, s))
    assert idx.dtype == np.int64 and idx.shape == (len(expected), 2)
    assert sorted(map(tuple, idx.tolist())) == sorted(expected)
    np.testing.assert_array_equal(idx, data.training_clips(lengths, seed=0))
    assert not np.array_equal(idx, data.training_clips(lengths, seed=1))
    assert (4, 198) in expected and (3, 96) in expected  # 101 frames: starts 0, 2, .., 98 → 96 is the last that fits


def test_take_clips(rng):
    videos = [rng.integers(0, 256, (n, 4, 6, 3), dtype=np.uint8) for n in (8, 11)]
    idx = data.training_clips(videos, seed=3)[:4]
    cl, tg = data.take_clips(videos, idx)
    assert cl.shape == (4, 4, 3, 4, 6) and tg.shape == (4, 3, 4, 6) and cl.dtype == np.float32
    for i, (v, s) in enumerate(idx):
        x = data.to_model_input(videos[v][s:s + 5])
        np.testing.assert_array_equal(cl[i], x[:4])
        np.testing.assert_array_equal(tg[i], x[4])
    with pytest.raises(IndexError):
        data.take_clips(videos, [(0, 5)])


# ---- raw videos ------------------------------------------------------------------------

def test_raw_video_round_trip(tmp_path, rng):
    v = rng.integers(0, 256, (5, 6, 7, 3), dtype=np.uint8)
    path = tmp_path / "line.raw"
    data.write_raw_video(path, v)
    raw = path.read_bytes()
    assert len(raw) == 32 + v.size
    assert raw[:8] == b"INFPRAW1"
    assert np.frombuffer(raw[8:24], "<u4").tolist() == [5, 6, 7, 3]
    assert raw[24:32] == bytes(8)
    assert raw[32:] == v.tobytes()
    np.testing.assert_array_equal(data.read_raw_video(path), v)
    np.testing.assert_array_equal(data.read_raw_video(str(path), mmap=True), v)
    assert os.listdir(tmp_path) == ["line.raw"]  # no temporary file left behind

    (tmp_path / "short.raw").write_bytes(raw[:-1])
    with pytest.raises(ValueError, match="bytes"):
        data.read_raw_video(tmp_path / "short.raw")
    (tmp_path / "bad.raw").write_bytes(b"NOTRAW00" + raw[8:])
    with pytest.raises(ValueError, match="not an INFP raw video"):
        data.read_raw_video(tmp_path / "bad.raw")
    with pytest.raises(ValueError, match="uint8"):
        data.write_raw_video(path, v.astype(np.float32))


# ---- IPAD layout -------------------------------------------------------------------------

def _frame(value, h=40, w=60):
    """A frame that JPEG keeps recognisable: a flat grey level plus a gradient."""
    f = np.full((h, w, 3), value, np.uint8)
    f[:, : w // 2, 0] = min(255, value + 40)
    return f


def _write_video(folder, values, ext=".jpg"):
    Image = pytest.importorskip("PIL.Image")
    folder.mkdir(parents=True)
    for name, value in values.items():
        Image.fromarray(_frame(value)).save(folder / f"{name}{ext}", quality=95)


@pytest.fixture
def ipad(tmp_path):
    """ROOT/S01 with .npy labels and ROOT/S02 with a .mat, frames named 1, 2, 10."""
    pytest.importorskip("PIL")
    root = tmp_path / "IPAD"
    for cat in ("S01", "S02"):
        # natural order: video folders 1, 2, 10; frames 1, 2, 10 (lexicographic would be 1, 10, 2)
        _write_video(root / cat / "training" / "frames" / "01", {1: 20, 2: 60, 10: 100})
        _write_video(root / cat / "training" / "frames" / "02", {1: 30, 2: 70})
        _write_video(root / cat / "testing" / "frames" / "1", {1: 40, 2: 80, 10: 120, 3: 90})
        _write_video(root / cat / "testing" / "frames" / "2", {5: 200, 4: 180})
        _write_video(root / cat / "testing" / "frames" / "10", {1: 10, 2: 50, 10: 150})
    labels = {"1": [0, 0, 1, 1], "2": [1, 0], "10": [0, 1, 1]}
    (root / "S01" / "test_label").mkdir()
    for name, lab in labels.items():
        np.save(root / "S01" / "test_label" / f"{name}.npy", np.array(lab, np.int8))
    return root, labels


def test_load_ipad_natural_order_and_npy_labels(ipad):
    Image = pytest.importorskip("PIL.Image")
    root, labels = ipad
    train = data.load_ipad(root, "S01", "training", height=16, width=24)
    assert [v.shape for v in train] == [(3, 16, 24, 3), (2, 16, 24, 3)]
    assert all(v.dtype == np.uint8 for v in train)
    means = [float(f[..., 1].mean()) for f in train[0]]
    assert means[0] < means[1] < means[2]  # 1.jpg, 2.jpg, 10.jpg
    # bicubic resizing with Pillow, as the released loader
    with Image.open(root / "S01" / "training" / "frames" / "01" / "10.jpg") as im:
        want = np.asarray(im.convert("RGB").resize((24, 16), Image.BICUBIC))
    np.testing.assert_array_equal(train[0][2], want)

    videos, labs = data.load_ipad(root, "S01", "testing", height=16, width=24)
    assert [len(v) for v in videos] == [4, 2, 3]      # folders 1, 2, 10 in natural order
    means = [float(f[..., 1].mean()) for f in videos[0]]
    assert means == sorted(means)                     # frames 1, 2, 3, 10
    for lab, name in zip(labs, ["1", "2", "10"]):
        assert lab.dtype == np.int64
        np.testing.assert_array_equal(lab, labels[name])

    native = data.load_ipad(root, "S01", "train", height=None, width=None, videos=["02"])
    assert len(native) == 1 and native[0].shape == (2, 40, 60, 3)
    sub, sub_labs = data.load_ipad(root, "S01", "test", 16, 24, videos=[2])
    assert len(sub[0]) == 3 and sub_labs[0].tolist() == labels["10"]
    fast = data.load_ipad(root, "S01", "training", height=16, width=24, draft=True)
    assert [v.shape for v in fast] == [v.shape for v in train]
    assert np.abs(fast[0].astype(np.int16) - train[0]).mean() < 8


def test_load_ipad_mat_labels(ipad, tmp_path):
    sio = pytest.importorskip("scipy.io")
    root, labels = ipad
    gt = np.empty(3, dtype=object)
    for i, name in enumerate(["1", "2", "10"]):
        gt[i] = np.array(labels[name], np.uint8)
    sio.savemat(root / "S02" / "S02.mat", {"gt": gt})
    videos, labs = data.load_ipad(root, "S02", "testing", height=16, width=24)
    assert [len(v) for v in videos] == [4, 2, 3]
    for lab, name in zip(labs, ["1", "2", "10"]):
        np.testing.assert_array_equal(lab, labels[name])
    # the .mat is also used on request when test_label/ exists
    sio.savemat(root / "S01" / "S01.mat", {"gt": gt})
    _, labs2 = data.load_ipad(root, "S01", "testing", 16, 24, labels="mat")
    assert [l.tolist() for l in labs2] == [l.tolist() for l in labs]
    # a wrong count of label arrays
    sio.savemat(root / "S02" / "S02.mat", {"gt": gt[:2]})
    with pytest.raises(ValueError, match="2 label arrays"):
        data.load_ipad(root, "S02", "testing", 16, 24)


def test_load_ipad_errors(ipad):
    root, _ = ipad
    with pytest.raises(FileNotFoundError, match="S01, S02"):
        data.load_ipad(root, "S07")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_ipad(root / "nowhere", "S01")
    with pytest.raises(ValueError, match="split"):
        data.load_ipad(root, "S01", "validation")
    with pytest.raises(FileNotFoundError, match="no video folder"):
        data.load_ipad(root, "S01", "training", videos=["99"])
    np.save(root / "S01" / "test_label" / "2.npy", np.array([1, 0, 0], np.int8))
    with pytest.raises(ValueError, match="have 3 frames, the video has 2"):
        data.load_ipad(root, "S01", "testing", 16, 24)
    np.save(root / "S01" / "test_label" / "2.npy", np.array([2, 0], np.int8))
    with pytest.raises(ValueError, match="0/1"):
        data.load_ipad(root, "S01", "testing", 16, 24)
    (root / "S01" / "training" / "frames" / "03").mkdir()
    with pytest.raises(ValueError, match="holds no frames"):
        data.load_ipad(root, "S01", "training", 16, 24)
    with pytest.raises(FileNotFoundError, match="neither"):
        data.load_ipad(root, "S02", "testing", 16, 24)  # no test_label/, no S02.mat


def test_resize_video_matches_pillow(rng):
    Image = pytest.importorskip("PIL.Image")
    v = rng.integers(0, 256, (10, 30, 40, 3), dtype=np.uint8)
    out = data.resize_video(v, 12, 20)
    assert out.shape == (10, 12, 20, 3) and out.dtype == np.uint8
    for i in (0, 9):
        np.testing.assert_array_equal(out[i], np.asarray(Image.fromarray(v[i]).resize((20, 12), Image.BICUBIC)))
    same = data.resize_video(v, 30, 40)
    np.testing.assert_array_equal(same, v)
