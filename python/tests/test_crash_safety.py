"""Crash safety of saves (issue 11): kill -9 in the middle of a save or of a training run with
checkpoints never leaves a file at the path that does not load, and the next save removes the
temporary files killed writers left behind; saves write through symbolic links; paths with an
embedded NUL are refused; paths that are not UTF-8 are used byte for byte.

Environment: INFP_KILLS (kills per test, default 8), INFP_KILL_SEED (default 11).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fuzz_support as fs

H, W = 32, 48

COMMON = textwrap.dedent("""
    import os, sys, json
    import numpy as np
    import infp

    def video(n, seed, h=32, w=48):
        rng = np.random.default_rng(seed)
        y, x = np.mgrid[0:h, 0:w]
        frames = []
        for f in range(n):
            base = 128 + 70 * np.sin((x + 2 * f + seed) / 5.0)[..., None] * np.cos((y - f) / 7.0)[..., None]
            frames.append(np.clip(np.round(base + rng.normal(0, 6, (h, w, 3))), 0, 255).astype(np.uint8))
        return np.stack(frames)
""")

# Saves one model over and over to the same path (alternating full and weights-only saves):
# a kill lands in the middle of a save almost every time.
SAVER = COMMON + textwrap.dedent("""
    path, preset = sys.argv[1], sys.argv[2]
    m = infp.Model(preset, seed=int(sys.argv[3]), threads=1)
    h, w = m.frame_shape[1:]
    m.remember([video(6, 1, h, w)])
    print("ready", flush=True)
    i = 0
    while True:
        m.save(path, weights_only=(i % 3 == 2))
        i += 1
        if i == 1:
            print("saved", flush=True)
""")

# Trains with a checkpoint every epoch until killed.
TRAINER = COMMON + textwrap.dedent("""
    path = sys.argv[1]
    m = infp.Model("tiny", seed=3, threads=1)
    print("ready", flush=True)
    m.fit([video(7, 1), video(7, 2)], epochs=100000, batch_size=2, progress=False, checkpoint_every=1,
          checkpoint_path=path, remember=False)
""")

# After a kill: the file at the path (if any) must load (and a training checkpoint must resume);
# then a successful save to the same path must leave nothing else in the folder.
VERIFIER = COMMON + textwrap.dedent("""
    path, kind = sys.argv[1], sys.argv[2]
    out = {"exists": os.path.exists(path)}
    if out["exists"]:
        try:
            m = infp.Model.load(path, threads=1)
            out["loaded"] = True
            if kind == "fit":
                from infp import safetensors
                _, meta = safetensors.load(path)
                epoch = json.loads(meta["infp_training"])["epoch"]
                m.fit([video(7, 1), video(7, 2)], epochs=epoch + 1, batch_size=2, progress=False, resume=path,
                      remember=False)
                out["resumed_from"] = epoch
            m.close()
        except Exception as e:
            out["loaded"] = False
            out["error"] = f"{type(e).__name__}: {e}"
    folder = os.path.dirname(path)
    out["before_save"] = sorted(f for f in os.listdir(folder) if f != os.path.basename(path))
    m = infp.Model("tiny", seed=9, threads=1)
    if kind == "fit":
        m.fit([video(7, 1), video(7, 2)], epochs=1, batch_size=2, progress=False, checkpoint_every=1,
              checkpoint_path=path, remember=False)
    else:
        m.save(path)
    out["after_save"] = sorted(f for f in os.listdir(folder) if f != os.path.basename(path))
    print(json.dumps(out), flush=True)
""")


def _python(script, *args, **kw):
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], env=fs.child_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _wait_line(proc, want, timeout):
    """Reads stdout lines until `want` (True) or the process ends / times out (False)."""
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
            break
        line = proc.stdout.readline()
        if not line:
            return False
        if line.strip() == want:
            return True
    return False


def _verify(path, kind):
    p = subprocess.run([sys.executable, "-c", VERIFIER, str(path), kind], env=fs.child_env(), text=True,
                       capture_output=True, timeout=120)
    if p.returncode != 0:
        how = fs.signal_name(p.returncode) if p.returncode < 0 else f"status {p.returncode}"
        pytest.fail(f"the verifier died ({how}) on {path}:\n{p.stderr[-3000:]}", pytrace=False)
    return json.loads(p.stdout.strip().splitlines()[-1])


def _kill_rounds(tmp_path, kind, script, args, first_line, delay):
    fs.wait_for_library()
    rng = random.Random(fs.env_int("INFP_KILL_SEED", 11) + (kind == "fit"))
    folder = tmp_path / kind
    folder.mkdir()
    path = folder / "model.safetensors"
    problems, log = [], []
    for round_ in range(fs.env_int("INFP_KILLS", 8)):
        existed = path.exists()
        proc = _python(script, path, *args)
        try:
            if not _wait_line(proc, "ready", 60):
                pytest.fail(f"the {kind} child did not start:\n{proc.stderr.read()[-3000:]}", pytrace=False)
            # Half the kills once the file exists (a save over an existing file), the rest at any time.
            if rng.random() < 0.5 or not existed:
                _wait_line(proc, first_line, 30) if first_line else None
            time.sleep(rng.uniform(*delay))
            if proc.poll() is not None:
                problems.append(f"round {round_}: the child ended before the kill (status {proc.returncode}):\n"
                                f"{proc.stderr.read()[-2000:]}")
                continue
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()
        left = sorted(f for f in os.listdir(folder) if f != path.name)
        r = _verify(path, kind)
        log.append(f"round {round_}: file {'existed' if existed else 'absent'} before; after the kill "
                   f"{'present' if r['exists'] else 'absent'}, {len(left)} other file(s) {left[:3]}"
                   + (f", resumed from epoch {r['resumed_from']}" if "resumed_from" in r else ""))
        if existed and not r["exists"]:
            problems.append(f"round {round_}: {path.name} existed before the kill and is gone after it")
        if r["exists"] and not r.get("loaded"):
            problems.append(f"round {round_}: {path.name} does not load after the kill: {r.get('error')}")
        if r["after_save"]:
            problems.append(f"round {round_}: after a successful save, the folder still holds {r['after_save']} "
                            f"(before it: {r['before_save']})")
    print("\n" + "\n".join(log))
    assert not problems, "\n".join(problems)


def test_kill_during_save(tmp_path):
    """SIGKILL at random times while a process saves a model again and again to one path."""
    _kill_rounds(tmp_path, "save", SAVER, ["small", 5], "saved", (0.0, 0.25))


def test_kill_during_fit(tmp_path):
    """SIGKILL at random times while fit writes a checkpoint every epoch: the checkpoint at the
    path always loads and resumes."""
    _kill_rounds(tmp_path, "fit", TRAINER, [], None, (0.3, 1.5))


# ---- paths ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def infp_mod():
    fs.wait_for_library()
    import infp
    return infp


@pytest.fixture(scope="module")
def models(infp_mod):
    a = infp_mod.Model("tiny", seed=1, threads=1)
    b = infp_mod.Model("tiny", seed=2, threads=1)
    yield a, b
    a.close()
    b.close()


def _same_weights(infp_mod, path, model):
    loaded = infp_mod.Model.load(path, threads=1)
    try:
        name = "wrn38.mod1.conv1.weight"
        return np.array_equal(loaded.state_dict()[name], model.state_dict()[name])
    finally:
        loaded.close()


@pytest.mark.parametrize("weights_only", [False, True])
def test_save_writes_through_a_symlink(infp_mod, models, tmp_path, weights_only):
    a, b = models
    target = tmp_path / "target.safetensors"
    a.save(target)
    link = tmp_path / "link.safetensors"
    link.symlink_to("target.safetensors")  # relative
    b.save(link, weights_only=weights_only)
    assert link.is_symlink(), "the save replaced the symlink with a file"
    assert os.readlink(link) == "target.safetensors"
    assert _same_weights(infp_mod, target, b), "the link's target does not hold the saved model"
    assert sorted(os.listdir(tmp_path)) == ["link.safetensors", "target.safetensors"]


def test_save_through_a_symlink_to_another_folder(infp_mod, models, tmp_path):
    a, b = models
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    target = tmp_path / "d2" / "target.safetensors"
    a.save(target)
    link = tmp_path / "d1" / "link.safetensors"
    link.symlink_to(target)
    b.save(link)
    assert link.is_symlink()
    assert _same_weights(infp_mod, target, b)
    assert os.listdir(tmp_path / "d1") == ["link.safetensors"]
    assert os.listdir(tmp_path / "d2") == ["target.safetensors"]


def test_save_through_a_dangling_symlink_creates_the_target(infp_mod, models, tmp_path):
    _, b = models
    link = tmp_path / "link.safetensors"
    link.symlink_to("new.safetensors")
    b.save(link)
    assert link.is_symlink()
    assert _same_weights(infp_mod, tmp_path / "new.safetensors", b)


def test_fit_checkpoint_through_a_symlink(infp_mod, tmp_path):
    m = infp_mod.Model("tiny", seed=4, threads=1)
    target = tmp_path / "ck.safetensors"
    link = tmp_path / "link.safetensors"
    link.symlink_to(target.name)
    rng = np.random.default_rng(0)
    vids = [rng.integers(0, 256, (6, H, W, 3), dtype=np.uint8) for _ in range(2)]
    m.fit(vids, epochs=1, batch_size=2, progress=False, checkpoint_every=1, checkpoint_path=link, remember=False)
    assert link.is_symlink()
    assert target.is_file()
    infp_mod.Model.load(link).close()
    m.close()


def _nul_calls(infp_mod, model, good):
    rng = np.random.default_rng(0)
    vids = [rng.integers(0, 256, (6, H, W, 3), dtype=np.uint8) for _ in range(2)]
    bad = str(good) + "\0.junk"
    return {
        "save": lambda: model.save(bad),
        "save weights": lambda: model.save(bad, weights_only=True),
        "save bytes": lambda: model.save(os.fsencode(bad)),
        "load": lambda: infp_mod.Model.load(bad).close(),
        "fit checkpoint_path": lambda: model.fit(vids, epochs=1, batch_size=2, progress=False, checkpoint_every=1,
                                                 checkpoint_path=bad, remember=False),
        "fit resume": lambda: model.fit(vids, epochs=1, batch_size=2, progress=False, resume=bad, remember=False),
    }


@pytest.mark.parametrize("call", ["save", "save weights", "save bytes", "load", "fit checkpoint_path", "fit resume"])
def test_path_with_embedded_nul_is_refused(infp_mod, models, tmp_path, call):
    """"x.safetensors\\0.junk" must be refused, not cut to "x.safetensors"."""
    a, _ = models
    good = tmp_path / "x.safetensors"
    if call in ("load", "fit resume"):
        a.save(good)  # the cut path would load
    before = sorted(os.listdir(tmp_path))
    with pytest.raises((ValueError, infp_mod.InfpError)) as e:
        _nul_calls(infp_mod, a, good)[call]()
    assert "nul" in str(e.value).lower() or "null" in str(e.value).lower() or isinstance(e.value, ValueError), e.value
    assert sorted(os.listdir(tmp_path)) == before, "a file was written at the path cut at the NUL"


@pytest.mark.parametrize("name", [b"\xff\xfe-model.safetensors", b"caf\xe9.safetensors", b"\xed\xa0\x80.safetensors",
                                  "modèle-ü.safetensors".encode()])
def test_non_utf8_path_round_trips(infp_mod, models, tmp_path, name):
    """A path is used byte for byte: the file appears under exactly that name and loads back."""
    a, _ = models
    folder = os.fsencode(str(tmp_path))
    path = folder + b"/" + name
    a.save(path)
    assert os.listdir(folder) == [name], f"saved as {os.listdir(folder)}, not {name!r}"
    assert _same_weights(infp_mod, path, a)
    assert _same_weights(infp_mod, os.fsdecode(path), a)  # the same file through a str (surrogateescape)
    a.save(os.fsdecode(path), weights_only=True)
    assert os.listdir(folder) == [name]
    infp_mod.Model.load(path).close()


def test_non_utf8_fit_checkpoint_path(infp_mod, tmp_path):
    m = infp_mod.Model("tiny", seed=4, threads=1)
    path = os.fsencode(str(tmp_path)) + b"/\xff-ck.safetensors"
    rng = np.random.default_rng(0)
    vids = [rng.integers(0, 256, (6, H, W, 3), dtype=np.uint8) for _ in range(2)]
    m.fit(vids, epochs=1, batch_size=2, progress=False, checkpoint_every=1, checkpoint_path=path, remember=False)
    assert os.listdir(os.fsencode(str(tmp_path))) == [b"\xff-ck.safetensors"]
    m.fit(vids, epochs=2, batch_size=2, progress=False, resume=path, remember=False)
    m.close()
