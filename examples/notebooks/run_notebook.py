#!/usr/bin/env python3
"""Executes examples/notebooks/quickstart.ipynb headless (nbclient) and checks what it produced.

    python3 examples/notebooks/run_notebook.py           # tiny size, as `make test-notebook` (< 1 min)
    python3 examples/notebooks/run_notebook.py --full    # the notebook's own size (a few minutes)

The tiny size comes from INFP_NB_* environment variables (see the notebook's first code cell); any
INFP_NB_* variable already set in the environment wins over these defaults. The kernel is
"python3" on this very interpreter, through a private kernelspec (no `ipykernel install` needed,
and a "python3" kernel registered for another interpreter is not used). The executed copy is written
to a temporary folder, removed after a passing run unless --keep (kept after a failure).

Exits non-zero if a cell fails, if the committed notebook holds outputs, if fewer figures than
expected were drawn, or if the printed frame-level AUC is not a number in [0, 1].
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
NOTEBOOK = HERE / "quickstart.ipynb"

TINY = {
    "INFP_NB_PRESET": "tiny",
    "INFP_NB_EPOCHS": "1",
    "INFP_NB_FRAMES": "40",
    "INFP_NB_TRAIN_VIDEOS": "2",
    "INFP_NB_TEST_VIDEOS": "2",
    "INFP_NB_PROGRESS": "0",
}
# Figures of the notebook: frames, training loss, ROC, low light, score over time, error heat maps.
EXPECTED_FIGURES = 6
AUC_LINE = re.compile(r"^frame-level AUC:\s*(\S+)\s*$", re.MULTILINE)


def fail(msg: str) -> NoReturn:
    print(f"run_notebook: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def private_kernelspec(folder: Path) -> None:
    """A "python3" kernelspec for this interpreter in folder/kernels, put first on JUPYTER_PATH."""
    spec_dir = folder / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"Python 3 ({sys.executable})", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(folder), os.environ.get("JUPYTER_PATH")]))
    from jupyter_client.kernelspec import KernelSpecManager
    argv0 = KernelSpecManager().get_kernel_spec("python3").argv[0]
    if argv0 != sys.executable:
        fail(f"kernel python3 resolves to {argv0}, not {sys.executable}")


def text_of(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return output.get("data", {}).get("text/plain", "") if "data" in output else ""


def cell_seconds(cell) -> float | None:
    ex = cell.get("metadata", {}).get("execution", {})
    start, end = ex.get("iopub.execute_input"), ex.get("shell.execute_reply")
    if not (start and end):
        return None
    from datetime import datetime
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    return (parse(end) - parse(start)).total_seconds()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--full", action="store_true", help="run at the notebook's own size (no tiny overrides)")
    ap.add_argument("--timeout", type=int, default=None,
                    help="seconds per cell (default 300, or 1800 with --full)")
    ap.add_argument("--keep", action="store_true", help="keep the executed copy (its path is printed)")
    ap.add_argument("--notebook", type=Path, default=NOTEBOOK)
    args = ap.parse_args(argv)

    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError as e:
        fail(f"{e}; install with: {sys.executable} -m pip install nbclient nbformat ipykernel matplotlib")

    nb = nbformat.read(str(args.notebook), as_version=4)
    stored = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count"))]
    if stored:
        fail(f"{args.notebook.name} is committed with outputs in code cells {stored}: clear them "
             f"(Jupyter: Edit > Clear Outputs of All Cells) before committing")

    work = Path(tempfile.mkdtemp(prefix="infp-notebook-"))
    private_kernelspec(work)
    overrides = {} if args.full else {k: v for k, v in TINY.items() if os.environ.get(k, "") == ""}
    os.environ.update(overrides)
    # The package of this checkout first, so the notebook tests it, not an installed copy.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "python"), os.environ.get("PYTHONPATH")]))
    os.environ.pop("MPLBACKEND", None)  # the inline backend, so figures become image/png outputs
    sizes = {k: v for k, v in os.environ.items() if k.startswith("INFP_NB_")}
    timeout = args.timeout or (1800 if args.full else 300)
    print(f"run_notebook: {args.notebook.relative_to(ROOT) if args.notebook.is_relative_to(ROOT) else args.notebook}"
          f" with {' '.join(f'{k}={v}' for k, v in sorted(sizes.items())) or 'its own size'}, timeout {timeout} s per cell",
          flush=True)

    client = NotebookClient(nb, kernel_name="python3", timeout=timeout, allow_errors=False,
                            resources={"metadata": {"path": str(args.notebook.parent)}})
    out_path = work / args.notebook.name
    kernel_log = work / "kernel-stderr.log"  # the kernel's own messages (shown if a cell fails)
    t0 = time.perf_counter()
    error = None
    with open(kernel_log, "wb") as log:
        try:
            client.execute(stdout=log, stderr=log)
        except CellExecutionError as e:
            error = re.sub(r"\x1b\[[0-9;]*m", "", str(e))  # the traceback without terminal colours
        except Exception as e:  # kernel died, timeout, ...
            error = f"{type(e).__name__}: {e}"
    elapsed = time.perf_counter() - t0
    if error:
        tail = kernel_log.read_text(errors="replace").strip().splitlines()[-30:]
        if tail:
            error += "\nkernel stderr (last lines):\n" + "\n".join(tail)
    nbformat.write(nb, str(out_path))

    problems = []
    if error:
        problems.append(f"a cell failed:\n{error}")
    figures = sum(1 for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if "image/png" in o.get("data", {}))
    if not error and figures < EXPECTED_FIGURES:
        problems.append(f"{figures} figures (image/png outputs), expected at least {EXPECTED_FIGURES}")
    text = "\n".join(text_of(o) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    auc = None
    found = AUC_LINE.findall(text)
    if not error:
        if len(found) != 1:
            problems.append(f"expected one line 'frame-level AUC: <number>' in the outputs, found {len(found)}")
        else:
            try:
                auc = float(found[0])
            except ValueError:
                auc = None
            if auc is None or not math.isfinite(auc) or not 0.0 <= auc <= 1.0:
                problems.append(f"the frame-level AUC printed is {found[0]!r}, not a number in [0, 1]")
                auc = None

    slow = sorted(((cell_seconds(c) or 0.0, c.get("id", "?")) for c in nb.cells if c.cell_type == "code"), reverse=True)
    print(f"run_notebook: {elapsed:.1f} s in all; slowest cells: "
          + ", ".join(f"{cid} {s:.1f} s" for s, cid in slow[:3]))
    if problems:
        print(f"run_notebook: executed copy kept at {out_path}", file=sys.stderr)
        fail("\n".join(problems))
    print(f"run_notebook: passed: {figures} figures, frame-level AUC {auc:.4f}")
    if args.keep:
        print(f"run_notebook: executed copy at {out_path}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
