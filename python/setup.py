"""Build hook: bundles libinfp.so into the package.

``pip install ./python`` (or ``python -m build python``) runs ``make -C <repo> lib`` when
python/infp/libinfp.so is missing (or always, with INFP_REBUILD=1), then packages it as data.
The wheel is marked platform-specific because it carries a native library.
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py as _build_py

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LIB = HERE / "infp" / "libinfp.so"


class build_py(_build_py):
    def run(self):
        if not LIB.is_file() or os.environ.get("INFP_REBUILD") == "1":
            if not (REPO / "Makefile").is_file() or not (REPO / "Package.swift").is_file():
                raise SystemExit(f"infp: {LIB} is missing and {REPO} is not the infp repository; "
                                 "build libinfp.so there with `make lib` first")
            make = shutil.which("make") or "make"
            print(f"infp: building libinfp.so with `make -C {REPO} lib`", flush=True)
            subprocess.check_call([make, "-C", str(REPO), "lib"])
        if not LIB.is_file():
            raise SystemExit(f"infp: `make lib` did not produce {LIB}")
        super().run()


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": build_py}, distclass=BinaryDistribution)
