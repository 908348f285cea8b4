"""Low-light robustness: darkening levels (deterministic, seeded), the sweep's table, and
`python -m infp evaluate --low-light`."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import infp
from infp import data, lowlight

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def line():
    ds = data.synthetic_line("conveyor", n_train_videos=2, n_test_videos=2, frames_per_video=40, height=32, width=48,
                             seed=2)
    model = infp.Model("tiny", seed=0, threads=2)
    model.fit(ds.train, epochs=1, batch_size=8, lr=1e-3, milestones=(), progress=False)
    return ds, model


def test_levels():
    assert lowlight.Level.at(1).identity and lowlight.DEFAULT_LEVELS[0].name == "original"
    two = lowlight.Level.at(0.25)
    assert two.gain == 0.25 and two.gamma == pytest.approx(1.4) and two.noise == pytest.approx(0.012)
    assert [lv.gain for lv in lowlight.DEFAULT_LEVELS] == [1, 0.5, 0.25, 0.125, 0.0625]
    parsed = lowlight.parse_levels("1, 0.5,0.3:1.5:0.02")
    assert parsed[1] == lowlight.Level.at(0.5) and parsed[2][1:] == (0.3, 1.5, 0.02)
    for bad in ("", "x", "0", "1.5", "1:2"):
        with pytest.raises(ValueError):
            lowlight.parse_levels(bad)


def test_darken_is_deterministic_darker_and_noisy(line):
    ds, _ = line
    v = ds.test[0]
    assert np.array_equal(lowlight.darken(v, 1.0), v)
    a = lowlight.darken(v, 0.25, seed=3, index=1)
    assert a.dtype == np.uint8 and a.shape == v.shape
    assert np.array_equal(a, lowlight.darken(v, 0.25, seed=3, index=1))          # same seed, same footage
    assert not np.array_equal(a, lowlight.darken(v, 0.25, seed=4, index=1))      # noise follows the seed
    assert not np.array_equal(a, lowlight.darken(v, 0.25, seed=3, index=2))      # ... and the video
    means = [lowlight.darken(v, lv).mean() for lv in lowlight.DEFAULT_LEVELS]
    assert all(x > y for x, y in zip(means, means[1:]))                            # darker and darker
    flat = np.full((2, 8, 8, 3), 100, np.uint8)
    assert lowlight.darken(flat, ("gain only", 0.5, 1.0, 0.0)).max() == 50         # y = gain * x exactly
    assert lowlight.darken(flat, ("noisy", 0.5, 1.0, 0.05)).std() > 5              # sensor noise
    assert lowlight.darken(v[0], 0.5).shape == v[0].shape                          # one frame
    with pytest.raises(ValueError, match="uint8"):
        lowlight.darken(v.astype(np.float32), 0.5)


def test_sweep_reports_auc_per_level_and_score(line):
    ds, model = line
    table = lowlight.sweep(model, ds.test, ds.labels, [1.0, 0.25, ("night", 0.05, 2.0, 0.03)])
    assert len(table) == 3 and table.methods == ["psnr", "memory"]
    assert table.column("level")[2] == "night"
    for row in table:
        assert 0 <= row["auc_psnr"] <= 1 and 0 <= row["auc_memory"] <= 1
    b = table.column("brightness")
    assert b[0] > b[1] > b[2]
    # the original level is the plain evaluation
    psnr = [model.score(v) for v in ds.test]
    assert table[0]["auc_psnr"] == pytest.approx(infp.metrics.frame_auc(psnr, ds.labels))
    assert "| original |" in str(table) and json.loads(table.to_json())["low_light"][1]["gain"] == 0.25
    again = lowlight.sweep(model, ds.test, ds.labels, [0.25])
    assert again[0] == table[1]  # deterministic
    fresh = infp.Model("tiny", threads=1)
    with pytest.raises(ValueError, match="memory of normal footage"):
        lowlight.sweep(fresh, ds.test, ds.labels, [0.5])
    assert lowlight.sweep(fresh, ds.test, ds.labels, [0.5], methods=["psnr"]).methods == ["psnr"]


def test_cli_evaluate_low_light(tmp_path, line):
    _, model = line
    ckpt = tmp_path / "line.safetensors"
    model.save(ckpt)
    args = ["evaluate", str(ckpt), "--synthetic", "conveyor", "--videos", "2", "--frames", "40", "--data-seed", "2"]
    r = subprocess.run([sys.executable, "-m", "infp", *args, "--low-light", "1,0.5", "--json"], capture_output=True,
                       text=True, timeout=300, cwd=str(ROOT / "python"))
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout.strip().splitlines()[-1])["low_light"]
    assert [row["gain"] for row in rows] == [1, 0.5] and all(0 <= row["auc_memory"] <= 1 for row in rows)
    r = subprocess.run([sys.executable, "-m", "infp", *args, "--low-light"], capture_output=True, text=True,
                       timeout=300, cwd=str(ROOT / "python"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("| 0.") >= 4 and "AUC psnr" in r.stdout and "AUC memory" in r.stdout
