"""Real footage: video files through PyAV (mp4/h264, avi/mpeg4, lossless mkv), folders of PNGs,
stride, resize, the generator form, errors, label files (.npy, .mat, .csv), and the places that
accept files: Model.fit / anomaly_scores, the command line and the Python streaming example."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import infp
from infp import data, video

PIL = pytest.importorskip("PIL")
try:
    import av
except ImportError:  # the label tests run without PyAV
    av = None
needs_av = pytest.mark.skipif(av is None, reason="PyAV is not installed (pip install av)")

ROOT = Path(__file__).resolve().parents[2]
H, W, N = 32, 48, 24


@pytest.fixture(scope="module")
def clip():
    ds = data.synthetic_line("conveyor", n_train_videos=3, n_test_videos=1, frames_per_video=N, height=H, width=W,
                             seed=5)
    return ds


def write_video(path, frames, codec, fps=10):
    """Writes uint8 RGB frames with PyAV; ffv1 keeps them exactly (lossless, RGB)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height = frames.shape[2], frames.shape[1]
        s.pix_fmt = "bgr0" if codec == "ffv1" else "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return str(path)


def h264():
    return "libx264" if "libx264" in av.codecs_available else "h264"


def write_pngs(folder, frames):
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(os.path.join(folder, f"{i}.png"))  # 2.png before 10.png: natural order
    return str(folder)


@pytest.fixture(scope="module")
def files(tmp_path_factory, clip):
    d = tmp_path_factory.mktemp("videos")
    v = clip.train[0]
    return {
        "mp4": write_video(d / "line.mp4", v, h264()),
        "avi": write_video(d / "line.avi", v, "mpeg4"),
        "mkv": write_video(d / "line.mkv", v, "ffv1"),
        "png": write_pngs(d / "frames", v),
        "frames": v,
        "dir": d,
    }


# -- decoding ---------------------------------------------------------------------------------

@needs_av
def test_lossy_codecs_decode_close_to_the_frames(files):
    v = files["frames"]
    for key in ("mp4", "avi"):
        r = data.load_video(files[key])
        assert r.dtype == np.uint8 and r.shape == v.shape, key
        assert np.abs(r.astype(int) - v).mean() < 15, key


@needs_av
def test_lossless_mkv_and_png_folder_are_exact(files):
    v = files["frames"]
    assert np.array_equal(data.load_video(files["mkv"]), v)
    assert np.array_equal(data.load_video(files["png"]), v)  # natural order: 0..23, not 0, 1, 10, 11, ...


@needs_av
def test_stride_start_and_max_frames(files):
    v = files["frames"]
    for key in ("mkv", "png"):
        assert np.array_equal(data.load_video(files[key], stride=3), v[::3]), key
        assert np.array_equal(data.load_video(files[key], stride=2, start=1, max_frames=5), v[1::2][:5]), key


@needs_av
def test_resize_is_pillow_bicubic_as_resize_video(files):
    v = files["frames"]
    want = data.resize_video(v, 16, 24)
    for key in ("mkv", "png"):
        assert np.array_equal(data.load_video(files[key], 16, 24), want), key
    with pytest.raises(ValueError, match="both height and width"):
        data.load_video(files["mkv"], 16)


@needs_av
def test_generator_yields_frames_or_chunks(files):
    v = files["frames"]
    it = data.iter_video(files["mkv"])
    assert iter(it) is it and not isinstance(it, np.ndarray)
    assert np.array_equal(np.stack(list(it)), v)
    chunks = list(data.iter_video(files["png"], chunk=10, stride=1))
    assert [c.shape[0] for c in chunks] == [10, 10, 4]
    assert np.array_equal(np.concatenate(chunks), v)


@needs_av
def test_errors_name_the_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.mp4 is empty"):
        data.load_video(empty)
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match=r"garbage\.mp4 is not a readable video"):
        data.load_video(garbage)
    with pytest.raises(FileNotFoundError, match=r"missing\.mkv"):
        data.iter_video(tmp_path / "missing.mkv")  # checked when called, not at the first frame
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ValueError, match="holds no frame images"):
        data.load_video(tmp_path / "nothing")
    with pytest.raises(ValueError, match="holds no videos"):
        video.video_sources(tmp_path / "nothing")
    bad_png = tmp_path / "badframes"
    bad_png.mkdir()
    (bad_png / "0.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"0\.png is not a readable image"):
        data.load_video(bad_png)
    with pytest.raises(ValueError, match="stride"):
        data.iter_video(garbage, stride=0)


@needs_av
def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "sound.mka"
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(ValueError, match="holds no video stream"):
        data.load_video(path)


@needs_av
def test_missing_pyav_says_pip_install_av(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    with pytest.raises(ImportError, match="pip install av"):
        data.load_video(files["mkv"])
    assert data.load_video(files["png"]).shape[0] == N  # frame folders need no PyAV


def test_import_infp_needs_neither_pyav_nor_ray():
    code = "import sys, infp; assert 'av' not in sys.modules and 'ray' not in sys.modules; print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT / "python")))
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


@needs_av
def test_video_sources_of_a_folder(files):
    names = [os.path.basename(s) for s in video.video_sources(files["dir"])]
    assert names == ["frames", "line.avi", "line.mkv", "line.mp4"]
    vids, sources = data.load_videos(files["dir"], H, W)
    assert len(vids) == 4 and all(v.shape == (N, H, W, 3) for v in vids)


# -- labels -----------------------------------------------------------------------------------

def test_labels_npy_mat_csv(tmp_path):
    lab = np.zeros(20, np.int64)
    lab[5:9] = 1
    np.save(tmp_path / "a.npy", lab)
    assert np.array_equal(data.load_labels(tmp_path / "a.npy", 20), lab)
    assert np.array_equal(data.load_labels(tmp_path / "a.npy", 10, stride=2), lab[::2])

    scipy_io = pytest.importorskip("scipy.io")
    other = np.zeros(12, np.int64)
    other[-3:] = 1
    gt = np.empty(2, dtype=object)
    gt[0], gt[1] = lab[None, :], other[None, :]  # as MATLAB stores a cell array of row vectors
    scipy_io.savemat(tmp_path / "S01.mat", {"gt": gt})
    both = data.load_labels(tmp_path / "S01.mat", [20, 12])
    assert np.array_equal(both[0], lab) and np.array_equal(both[1], other)
    assert np.array_equal(data.load_labels(tmp_path / "S01.mat", 12, index=1), other)
    with pytest.raises(ValueError, match="holds the labels of 2 videos"):
        data.load_labels(tmp_path / "S01.mat", 20)

    (tmp_path / "a.csv").write_text("start,end\n# the jam\n5,8\n\n15, 15\n")
    want = np.zeros(20, np.int64)
    want[5:9] = 1
    want[15] = 1
    assert np.array_equal(data.load_labels(tmp_path / "a.csv", 20), want)  # inclusive ends, header, comment
    assert np.array_equal(data.load_labels(tmp_path / "a.csv", 10, stride=2), want[::2])
    (tmp_path / "none.csv").write_text("start,end\n")
    assert data.load_labels(tmp_path / "none.csv", 7).sum() == 0


def test_label_errors(tmp_path):
    np.save(tmp_path / "short.npy", np.zeros(5, np.int64))
    with pytest.raises(ValueError, match="have 5 frames, the video has 9"):
        data.load_labels(tmp_path / "short.npy", 9)
    np.save(tmp_path / "bad.npy", np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="0/1"):
        data.load_labels(tmp_path / "bad.npy", 3)
    (tmp_path / "past.csv").write_text("3,12\n")
    with pytest.raises(ValueError, match=r"past\.csv, line 1: .*past the video's last frame 9"):
        data.load_labels(tmp_path / "past.csv", 10)
    (tmp_path / "rev.csv").write_text("start,end\n8,3\n")
    with pytest.raises(ValueError, match=r"line 2: .*not 0 <= start <= end"):
        data.load_labels(tmp_path / "rev.csv", 10)
    (tmp_path / "word.csv").write_text("1,2\nthree,4\n")
    with pytest.raises(ValueError, match="line 2: 'start,end' must be whole frame numbers"):
        data.load_labels(tmp_path / "word.csv", 10)
    with pytest.raises(FileNotFoundError, match="no label file"):
        data.load_labels(tmp_path / "nope.csv", 10)
    (tmp_path / "x.txt.json").write_text("{}")
    with pytest.raises(ValueError, match="unknown label format"):
        data.load_labels(tmp_path / "x.txt.json", 3)


@needs_av
def test_find_labels_beside_videos_in_a_folder_and_in_a_mat(tmp_path, clip):
    v = clip.test[0]
    a = write_pngs(tmp_path / "cam_a", v[:10])
    b = write_video(tmp_path / "cam_b.mkv", v[:12], "ffv1")
    (tmp_path / "cam_a.csv").write_text("2,3\n")
    (tmp_path / "labels").mkdir()
    np.save(tmp_path / "labels" / "cam_b.npy", np.r_[np.zeros(6), np.ones(6)].astype(np.int64))
    labs = video.find_labels([a, b], [10, 12])
    assert labs[0].tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0] and labs[1].sum() == 6
    with pytest.raises(FileNotFoundError, match="no labels for the video"):
        video.find_labels([a, b], [10, 12], tmp_path / "labels")


# -- the model, the command line, the streaming example ------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory, clip):
    """A tiny model trained on a folder of video files, calibrated on another, saved."""
    d = tmp_path_factory.mktemp("line")
    (d / "train").mkdir()
    write_video(d / "train" / "a.mkv", clip.train[0], "ffv1")
    write_pngs(d / "train" / "b", clip.train[1])
    model = infp.Model("tiny", seed=0, threads=2)
    model.fit(str(d / "train"), epochs=1, batch_size=8, lr=1e-3, milestones=(), progress=False)
    assert model.memory_frames == 2 * N
    model.calibrate([write_video(d / "normal.mkv", clip.train[2], "ffv1")], false_alarm_rate=0.05)
    model.save(d / "line.safetensors")
    return model, d


@needs_av
def test_model_scores_files_like_arrays_and_long_files_chunk_by_chunk(trained, clip):
    model, d = trained
    v = clip.test[0]
    path = write_video(d / "test.mkv", v, "ffv1")
    whole = model.anomaly_scores(v)
    assert np.array_equal(model.anomaly_scores(path), whole)
    assert np.array_equal(model.score(path), model.score(v))
    for method, smoothing in (("memory", 1), ("psnr", 3)):
        chunked = video.anomaly_scores(model, path, method, chunk=7, smoothing=smoothing)
        assert np.allclose(chunked, model.anomaly_scores(v, method, smoothing=smoothing), rtol=0, atol=1e-5)


def run_cli(*args):
    r = subprocess.run([sys.executable, "-m", "infp", *args], capture_output=True, text=True, timeout=300,
                       cwd=str(ROOT / "python"))
    return r


@needs_av
def test_cli_train_and_evaluate_on_video_folders(tmp_path, trained, clip):
    _, d = trained
    test_dir = tmp_path / "test"
    test_dir.mkdir()
    write_video(test_dir / "t0.mkv", clip.test[0], "ffv1")
    events = clip.events[0]
    (test_dir / "t0.csv").write_text("start,end\n" + "".join(f"{e.start},{e.end - 1}\n" for e in events))
    ckpt = tmp_path / "cli.safetensors"
    r = run_cli("train", str(ckpt), "--preset", "tiny", "--videos", str(d / "train"), "--epochs", "1",
                "--batch-size", "8", "--lr", "1e-3")
    assert r.returncode == 0, r.stderr
    assert "read 2 videos" in r.stderr and ckpt.exists()
    r = run_cli("evaluate", str(ckpt), "--videos", str(test_dir), "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout.strip().splitlines()[-1])
    assert result["videos"] == 1 and 0 <= result["frame_auc"] <= 1 and result["method"] == "memory"
    r = run_cli("evaluate", str(ckpt), "--videos", str(tmp_path / "missing.mp4"))
    assert r.returncode != 0 and "missing.mp4" in r.stderr
    (test_dir / "t0.csv").unlink()
    r = run_cli("evaluate", str(ckpt), "--videos", str(test_dir))
    assert r.returncode != 0 and "no labels for the video" in r.stderr


@needs_av
def test_streaming_example_reads_files_and_folders(trained, clip):
    _, d = trained
    v = clip.train[2].copy()
    v[12:20] = 255 - v[12:20]  # an unmistakable anomaly: inverted frames
    path = write_video(d / "odd.mkv", v, "ffv1")
    folder = write_pngs(d / "odd_frames", v)
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "monitor_video.py"), str(d / "line.safetensors"),
                        path, folder], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ALERT event") >= 2 and r.stdout.count("summary:") == 2, r.stdout
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "monitor_video.py"), str(d / "line.safetensors"),
                        str(d / "nope.mp4")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "nope.mp4" in r.stderr
