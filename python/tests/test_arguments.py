"""Arguments that once reached the C library wrapped, cut or mangled (issue 11): integers that do
not fit their C field, NaN, paths with a NUL or in another encoding, a non-string preset,
sentinel zeros, config JSON the library cannot parse, calibration on a frozen video."""

import ctypes
import os

import numpy as np
import pytest

import infp
from infp import InfpError, Model
from infp._lib import lib


def video(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 255, (n, 32, 48, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny():
    with Model("tiny", threads=1) as m:
        yield m


def test_integers_that_do_not_fit_their_field_are_refused():
    with pytest.raises(ValueError, match="seed"):
        Model("tiny", seed=2 ** 64)  # would wrap to seed 0
    with pytest.raises(ValueError, match="seed"):
        Model("tiny", seed=-1)
    with pytest.raises(TypeError, match="seed"):
        Model("tiny", seed=float("nan"))
    with pytest.raises(ValueError, match="threads"):
        Model("tiny", threads=2 ** 31)
    a, b = Model("tiny", seed=2 ** 64 - 1), Model("tiny", seed=0)
    with a, b:
        assert not np.array_equal(a.state_dict()["conv_x8.weight"], b.state_dict()["conv_x8.weight"])


def test_preset_must_be_a_name():
    with pytest.raises(TypeError, match="preset"):
        Model(None)
    with pytest.raises(TypeError, match="preset"):
        Model(3)
    with pytest.raises(InfpError, match="unknown preset"):
        Model("huge")


def test_overrides_that_are_not_json_are_refused_clearly():
    with pytest.raises(ValueError, match="loss_alpha|JSON"):
        Model("tiny", loss_alpha=float("nan"))
    # The C API answers bad JSON as an invalid argument, not an internal error.
    params = lib.infp_model_default_params()
    params.preset = b"tiny"
    params.config_json = b'{"loss_alpha": NaN'
    handle = ctypes.c_void_p()
    status = lib.infp_model_create(ctypes.byref(params), ctypes.byref(handle))
    assert infp._lib.lib.infp_status_name(status).decode() == "invalid argument"
    assert b"config_json" in lib.infp_last_error()


def test_fit_refuses_zero_and_nan_settings(tiny):
    v = [video()]
    for kwargs, word in [({"epochs": 0}, "epochs"), ({"lr": 0}, "lr"), ({"batch_size": 0}, "batch_size"),
                         ({"lr": float("nan")}, "lr"), ({"max_minutes": float("nan")}, "max_minutes"),
                         ({"seed": 2 ** 64}, "seed"), ({"epochs": 1.5}, "epochs")]:
        with pytest.raises((ValueError, TypeError), match=word):
            tiny.fit(v, progress=False, **kwargs)


def test_paths_with_nul_are_refused_and_other_encodings_round_trip(tiny, tmp_path):
    with pytest.raises(ValueError, match="NUL"):
        tiny.save(str(tmp_path / "a\0b.safetensors"))
    with pytest.raises(ValueError, match="NUL"):
        Model.load(str(tmp_path / "a\0b.safetensors"))
    raw = os.path.join(os.fsencode(str(tmp_path)), b"line-\xff\xfe.safetensors")  # not UTF-8
    tiny.save(raw)
    assert os.listdir(os.fsencode(str(tmp_path))) == [os.path.basename(raw)]  # the file, no temporary beside it
    with Model.load(raw) as back:
        assert back.config == tiny.config
    name = os.fsdecode(raw)  # the same file through a str with surrogate escapes
    with Model.load(name) as back:
        assert back.num_parameters == tiny.num_parameters


def test_save_writes_through_a_symlink(tiny, tmp_path):
    target = tmp_path / "real.safetensors"
    tiny.save(target)
    link = tmp_path / "current.safetensors"
    link.symlink_to(target.name)
    tiny.save(link)
    assert link.is_symlink() and link.resolve() == target.resolve()
    with Model.load(link):
        pass


def test_calibration_on_a_frozen_video_is_refused(tiny):
    frozen = np.repeat(video(1), 12, axis=0)
    with pytest.raises(InfpError, match="do not vary"):
        tiny.calibrate([frozen], false_alarm_rate=0.05, method="psnr")


def test_stream_settings_are_checked(tiny):
    for kwargs, word in [({"min_event_frames": 0}, "min_event_frames"), ({"hysteresis": float("nan")}, "hysteresis"),
                         ({"threshold": float("nan")}, "threshold"),
                         ({"release_frames": 2 ** 40}, "release_frames")]:
        with pytest.raises((ValueError, TypeError), match=word):
            tiny.stream(**kwargs)
