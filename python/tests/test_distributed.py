"""Many lines over Ray on a local 2-worker instance: train and evaluate two tiny lines at once,
skip finished lines, resume a line whose worker died, the command line against the running
instance's address, and a fleet of camera streams as actors that report alerts."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Keep the local Ray instance on the loopback interface (by default Ray binds the machine's own
# address); set before Ray is imported, which reads it once.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray", reason="Ray could not be installed (make deps-python tries pip install ray)")

import infp  # noqa: E402
from infp import data, distributed  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIT = {"epochs": 2, "batch_size": 8, "lr": 1e-3, "milestones": ()}


@pytest.fixture(scope="module")
def local_ray():
    if ray.is_initialized():
        ray.shutdown()
    distributed.init("local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    assert ray.cluster_resources().get("CPU") == 2
    yield ray
    ray.shutdown()


def lines(n_normal=0):
    return [distributed.Line.synthetic("conveyor", n_train_videos=2, n_test_videos=2, n_normal_videos=n_normal,
                                       frames_per_video=30, seed=1),
            distributed.Line.synthetic("press", n_train_videos=2, n_test_videos=2, frames_per_video=30, seed=2)]


def test_two_lines_train_and_evaluate_on_two_workers(local_ray, tmp_path):
    out = tmp_path / "models"
    result = distributed.run(lines(n_normal=1), out, preset="tiny", fit=FIT, progress=False)
    assert [r["status"] for r in result] == ["done", "done"], str(result)
    for r in result:
        assert r["training"]["status"] == "trained" and r["training"]["epochs_run"] == 2 and r["threads"] == 1
        assert set(r["evaluation"]["auc"]) == {"psnr", "memory"}
        assert all(0 <= a <= 1 for a in r["evaluation"]["auc"].values())
        paths = distributed.line_paths(out, r["line"])
        assert os.path.exists(paths["final"]) and not os.path.exists(paths["partial"])
        assert json.load(open(paths["report"]))["status"] == "done"
    assert len({r["pid"] for r in result}) == 2  # two worker processes, one line each, at once
    assert result.rows[0]["training"]["calibration"]["method"] == "memory"  # the line with normal videos
    with infp.Model.load(out / "conveyor.safetensors") as m:
        assert m.calibration is not None and m.memory_frames == 60
    assert "| conveyor | done | trained |" in str(result)

    # Run again: both lines are finished, nothing is trained or evaluated, no file changes.
    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    again = distributed.run(lines(n_normal=1), out, preset="tiny", fit=FIT, progress=False)
    assert [r["status"] for r in again] == ["skipped", "skipped"]
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    # A line whose report is gone but whose checkpoint exists is evaluated again, not retrained.
    os.unlink(out / "press.json")
    third = distributed.run(lines(n_normal=1), out, preset="tiny", fit=FIT, progress=False)
    assert [r["status"] for r in third] == ["skipped", "done"]
    assert third.rows[1]["training"]["status"] == "skipped" and "auc" in third.rows[1]["evaluation"]


def test_a_dead_worker_is_retried_and_resumes_the_run(local_ray, tmp_path):
    marker = tmp_path / "died-once"

    def die_once_in_epoch_two(line, stats):
        # After epoch 1 was checkpointed, kill this worker process (once): Ray retries the task,
        # which must continue the partial run instead of starting over.
        if stats["epoch"] == 1 and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)

    out = tmp_path / "models"
    line = distributed.Line.synthetic("cutter", n_train_videos=2, n_test_videos=0, frames_per_video=30, seed=3)
    result = distributed.run([line], out, preset="tiny", fit=dict(FIT, epochs=3), callback=die_once_in_epoch_two,
                             progress=False)
    r = result.rows[0]
    assert marker.exists() and r["status"] == "done", str(result)
    assert r["training"]["status"] == "resumed" and r["training"]["epochs_run"] == 2  # epochs 2 and 3
    assert r["pid"] != int(marker.read_text())
    assert os.path.exists(out / "cutter.safetensors") and not os.path.exists(out / "cutter.partial.safetensors")


def test_a_line_with_bad_data_fails_alone(local_ray, tmp_path):
    bad = distributed.Line("broken", train=str(tmp_path / "no-such-folder"))
    result = distributed.run([bad, lines()[1]], tmp_path / "models", preset="tiny", fit=FIT, progress=False)
    assert [r["status"] for r in result] == ["failed", "done"]
    assert "no-such-folder" in result.rows[0]["error"] and len(result.failed) == 1
    with pytest.raises(ValueError, match="no node of the Ray cluster has more than 2 CPUs"):
        distributed.run([bad], tmp_path / "models", preset="tiny", fit=FIT, cpus_per_task=3, progress=False)


def test_cli_fleet_train_on_a_running_cluster_address(local_ray, tmp_path):
    address = local_ray.get_runtime_context().gcs_address  # what `ray start --head` would print
    # Ray's token authentication: the client needs RAY_AUTH_MODE=token (set by ray.init in this
    # process, inherited) and the token in ~/.ray/auth_token, as on any cluster.
    r = subprocess.run([sys.executable, "-m", "infp", "fleet-train", "--synthetic", "turntable", "--videos", "2",
                        "--frames", "30", "--epochs", "1", "--lr", "1e-3", "--milestones", "", "--preset", "tiny",
                        "--out", str(tmp_path / "m"), "--address", address, "--json"],
                       capture_output=True, text=True, timeout=300, cwd=str(ROOT / "python"))
    assert r.returncode == 0, r.stderr[-3000:]
    rows = json.loads(r.stdout.strip().splitlines()[-1])["lines"]
    assert rows[0]["line"] == "turntable" and rows[0]["status"] == "done"
    assert os.path.exists(tmp_path / "m" / "turntable.safetensors")


def test_a_fleet_of_camera_actors_reports_alerts(local_ray, tmp_path):
    av = pytest.importorskip("av")
    ds = data.synthetic_line("conveyor", n_train_videos=4, n_test_videos=0, frames_per_video=30, height=32, width=48,
                             seed=4)
    model = infp.Model("tiny", seed=0, threads=1)
    model.fit(ds.train[:2], epochs=1, batch_size=8, lr=1e-3, milestones=(), progress=False)
    model.calibrate([ds.train[2]], false_alarm_rate=0.05)
    ckpt = tmp_path / "cam.safetensors"
    model.save(ckpt)
    odd = ds.train[3].copy()
    odd[12:20] = 255 - odd[12:20]  # inverted frames: an unmistakable anomaly
    path = tmp_path / "cam1.mkv"
    with av.open(str(path), "w") as c:
        s = c.add_stream("ffv1", rate=10)
        s.width, s.height, s.pix_fmt = 48, 32, "bgr0"
        for f in odd:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with distributed.Fleet({"cam1": (ckpt, path), "cam2": (ckpt, None)}, threads=1) as fleet:
        for f in odd:  # cam2 is fed by this process
            fleet.push("cam2", f)
        seen = list(fleet.watch(interval=0.2, timeout=120))
        summaries = fleet.wait()
    starts = [a for a in seen if a["kind"] == "start"]
    assert {a["camera"] for a in starts} == {"cam1", "cam2"}, seen
    for a in starts:
        assert 12 <= a["frame"] < 24 and a["score"] > a["threshold"]
    assert summaries["cam1"]["frames"] == 30 and summaries["cam1"]["events"] >= 1
