"""The command line: selftest, train, evaluate and demo, at the tiny size."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("PIL")


def run(*args, timeout=300):
    r = subprocess.run([sys.executable, "-m", "infp", *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return r.stdout


def test_selftest():
    assert "selftest ok" in run("selftest")


def test_train_then_evaluate(tmp_path):
    ckpt = tmp_path / "line.safetensors"
    out = run("train", str(ckpt), "--preset", "tiny", "--synthetic", "conveyor", "--videos", "2",
              "--frames", "30", "--epochs", "2", "--batch-size", "4", "--lr", "1e-3")
    assert "trained 2 epochs" in out and ckpt.exists()
    result = json.loads(run("evaluate", str(ckpt), "--synthetic", "conveyor", "--videos", "2", "--frames", "60",
                            "--json").strip().splitlines()[-1])
    assert 0 <= result["frame_auc"] <= 1 and result["videos"] == 2 and result["mean_psnr"] > 0
    # train remembered its footage: the default anomaly score is the memory's
    assert result["method"] == "memory" and 0 <= result["method_frame_auc"] <= 1


def test_demo_prints_the_ablation_table():
    out = run("demo", "--preset", "tiny", "--minutes", "0.02", "--videos", "2", "--frames", "30", "--quiet")
    for name in ("baseline", "+fusion", "+filter", "INFP (both)"):
        assert f"| {name}" in out
    assert "AUC memory" in out
    assert "demo done" in out


def test_bad_data_choice_is_explained():
    r = subprocess.run([sys.executable, "-m", "infp", "evaluate", "x.safetensors"], capture_output=True, text=True)
    assert r.returncode != 0


def test_a_missing_checkpoint_is_an_error_message_not_a_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "infp", "evaluate", str(tmp_path / "missing.safetensors"), "--synthetic", "conveyor"],
                       capture_output=True, text=True)
    assert r.returncode == 1
    assert "cannot open" in r.stderr and "missing.safetensors" in r.stderr and "Traceback" not in r.stderr
