"""Loading the library, versions, statuses, logging."""

import ctypes
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import infp
from infp import _lib

PYTHON_DIR = Path(__file__).resolve().parent.parent


def run_python(code, **env):
    full = dict(os.environ)
    full.pop("INFP_LIBRARY", None)
    full.update(env)
    full["PYTHONPATH"] = str(PYTHON_DIR) + os.pathsep + full.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                          cwd="/", timeout=120)


def test_version_matches():
    assert infp.__version__ == "0.1.0"
    assert infp.library_version == infp.__version__
    assert _lib.lib.infp_version().decode() == infp.__version__


def test_version_mismatch_is_a_clear_error():
    _lib.check_version("0.1.0", "0.1.0", "x")
    with pytest.raises(infp.LibraryError, match=r"version 9\.9\.9.*0\.1\.0.*make lib"):
        _lib.check_version("9.9.9", "0.1.0", "/some/libinfp.so")


def test_status_names():
    assert _lib.status_name(0) == "ok"
    assert _lib.status_name(-1) == "invalid argument"
    assert _lib.status_name(-2) == "shape mismatch"
    assert _lib.status_name(-6) == "internal error"
    assert _lib.status_name(42) == "unknown status"


def test_check_raises_with_last_error():
    _lib.check(0)
    x_shape = (ctypes.c_int64 * 2)(2, 2)
    status = _lib.lib.infp_rfft2(None, 2, x_shape, 0, 1, 0, None, 0)
    with pytest.raises(infp.InfpError) as e:
        _lib.check(status)
    assert e.value.status == -1
    assert "x is NULL" in str(e.value)
    assert "invalid argument" in str(e.value)


def test_default_params():
    p = _lib.lib.infp_conv2d_default_params()
    assert p.size == ctypes.sizeof(_lib.Conv2dParams)
    assert (p.stride, p.padding, p.dilation, p.n_threads) == (1, 0, 1, 0)


def test_log_callback_receives_failures():
    seen = []

    @_lib.LogFn
    def callback(level, message, user):
        seen.append((level, message.decode()))

    _lib.lib.infp_set_log_callback(callback, None)
    try:
        x_shape = (ctypes.c_int64 * 2)(2, 2)
        _lib.lib.infp_rfft2(None, 2, x_shape, 0, 1, 0, None, 0)
    finally:
        _lib.lib.infp_set_log_callback(_lib.LogFn(), None)
    assert any(level == _lib.LOG_DEBUG and "x is NULL" in m for level, m in seen), seen


def test_finds_library_in_package_or_build():
    assert infp.library_path.is_file()
    assert infp.library_path.name == "libinfp.so"


def test_infp_library_override(tmp_path):
    copy = tmp_path / "custom" / "libinfp.so"
    copy.parent.mkdir()
    shutil.copy(infp.library_path, copy)
    r = run_python("import infp; print(infp.library_path)", INFP_LIBRARY=str(copy))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(copy)


def test_infp_library_missing_file_is_an_error(tmp_path):
    r = run_python("import infp", INFP_LIBRARY=str(tmp_path / "nope.so"))
    assert r.returncode != 0
    assert "INFP_LIBRARY" in r.stderr and "make lib" in r.stderr


def test_infp_library_not_a_library(tmp_path):
    bad = tmp_path / "libinfp.so"
    bad.write_text("not an ELF file")
    r = run_python("import infp", INFP_LIBRARY=str(bad))
    assert r.returncode != 0
    assert "cannot load" in r.stderr


def test_selftest_runs():
    r = run_python("import sys, infp.__main__ as m; sys.exit(m.main(['selftest', '--threads', '1']))")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "selftest ok" in r.stdout


HEADER = PYTHON_DIR.parent / "include" / "infp.h"


def header_functions():
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    text = re.sub(r"^\s*#.*$", "", text, flags=re.M)
    statements = [s for s in text.split(";") if not s.lstrip().startswith("typedef")]
    return {m for s in statements for m in re.findall(r"\b(infp_\w+)\s*\(", s)}


@pytest.mark.skipif(not HEADER.is_file(), reason="not run from the repository")
def test_every_header_function_has_ctypes_argtypes():
    """Every function of include/infp.h gets argtypes somewhere in the package (_lib.py, or the
    module that wraps it) once all modules are imported."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(infp.__path__):
        if module.name not in ("__main__", "libinfp"):
            importlib.import_module(f"infp.{module.name}")
    declared = header_functions()
    assert len(declared) >= 11, declared
    absent = sorted(name for name in declared if not hasattr(_lib.lib, name))
    assert not absent, f"{infp.library_path} lacks {absent} (stale library? run make lib)"
    missing = sorted(name for name in declared if getattr(_lib.lib, name).argtypes is None)
    assert not missing, f"no ctypes argtypes for {missing}"
    # and _lib.py declares nothing that the header lacks
    assert set(_lib._SIGNATURES) <= declared, set(_lib._SIGNATURES) - declared
