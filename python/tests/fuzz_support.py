"""Shared machinery of the fuzz and crash-safety tests (issue 11: no input, file or call may
crash or hang the host process).

Cases run in child processes, many per child for speed. A child reads its cases (JSON lines),
and for each writes a "start" line, runs it, and writes a "done" line with the outcome to its
results file (flushed at once, so the lines survive the child's death). The parent watches the
results files: a child killed by a signal, or a case running past its timeout (the child is then
killed), is charged to the case that was started and not finished; the remaining cases go on in
a new child. Children run with a data-size limit (RLIMIT_DATA, default 4 GiB), so an
allocation that would exhaust the machine fails inside the child instead (and libinfp has to
report it, not trap).

Executors are classes named "module:Class" (modules in this folder), built in the child with a
JSON `setup` dict; `run(case) -> dict` returns {"outcome": str, "problems": [str], ...}.
`classify(exception)` turns an exception into an outcome and the problems it shows (an
internal error, an unknown status, an empty message).

Run one case by hand (it may crash, that is the point):

    cd python && PYTHONPATH=.:tests python3 tests/fuzz_support.py one --executor MOD:CLASS \\
        --setup SETUP.json --case CASE.json
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

TESTS_DIR = Path(__file__).resolve().parent
PYTHON_DIR = TESTS_DIR.parent
REPO = PYTHON_DIR.parent
LIBRARY = PYTHON_DIR / "infp" / "libinfp.so"

# infp_status values (include/infp.h).
STATUS_NAMES = {0: "ok", -1: "invalid argument", -2: "shape mismatch", -3: "io error", -4: "format error",
                -5: "out of memory", -6: "internal error", -7: "cancelled"}
ERR_INTERNAL = -6


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


# ---- the library may be rebuilt while tests run --------------------------------------------

def wait_for_library(timeout: float = 600.0, quiet: float = 2.0) -> None:
    """Waits until python/infp/libinfp.so exists and has not changed for `quiet` seconds
    (`make lib` replaces it from time to time)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            st = LIBRARY.stat()
            sig = (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            sig = None
        if sig is not None and sig == last and time.time() - st.st_mtime > quiet:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{LIBRARY} missing or changing for {timeout:.0f} s")
        last = sig
        time.sleep(0.2 if sig is not None else 1.0)


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Environment of child processes: this checkout's package and test helpers first, one
    BLAS thread, Python's fault handler (a traceback on stderr when a signal kills it)."""
    env = dict(os.environ)
    if os.environ.get("INFP_TEST_INSTALLED") != "1":
        paths = [str(PYTHON_DIR), str(TESTS_DIR)]  # this checkout's package, as conftest.py does
    else:
        paths = [str(TESTS_DIR)]
    env["PYTHONPATH"] = os.pathsep.join(paths + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONFAULTHANDLER"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("PYTEST_CURRENT_TEST", None)
    if extra:
        env.update(extra)
    return env


# Under AddressSanitizer (make sanitize preloads its runtime) a data-size limit would starve
# the sanitizer's own shadow memory: no limits then, and the cases that need one are left out.
UNDER_SANITIZER = "libclang_rt.asan" in os.environ.get("LD_PRELOAD", "")


def limit_memory(megabytes: int) -> None:
    """RLIMIT_DATA for this process: heap and private writable mappings (what malloc uses).
    Read-only and shared mappings (the tests' huge virtual buffers) do not count."""
    import resource
    if megabytes > 0 and not UNDER_SANITIZER:
        lim = megabytes << 20
        resource.setrlimit(resource.RLIMIT_DATA, (lim, lim))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def signal_name(returncode: int) -> str:
    try:
        return signal.Signals(-returncode).name
    except ValueError:
        return f"signal {-returncode}"


@contextlib.contextmanager
def memory_headroom(megabytes: int):
    """Lowers this process's RLIMIT_DATA (soft limit) to its current data size plus
    `megabytes` for the duration: allocations beyond fail at once, so a case about memory
    pressure costs no time and no machine memory. Restored afterwards."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    with open("/proc/self/status") as f:
        vmdata = next(int(l.split()[1]) for l in f if l.startswith("VmData:")) * 1024
    new = vmdata + (megabytes << 20)
    if hard != resource.RLIM_INFINITY:
        new = min(new, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (new, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


# ---- huge buffers that cost no memory --------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_PROT_READ, _PROT_WRITE = 1, 2
_MAP_SHARED, _MAP_PRIVATE, _MAP_ANONYMOUS, _MAP_NORESERVE = 0x01, 0x02, 0x20, 0x4000
_MAP_FAILED = ctypes.c_void_p(-1).value


class VirtualBuffer:
    """`nbytes` of address space reading as zeros, backed by no memory until written: a
    read-only private mapping for inputs, a shared writable one for outputs (neither counts
    against RLIMIT_DATA). Lets a test pass honest buffers for absurd shapes: a library that
    reads them legitimately gets zeros, one that reads past them crashes (its bug)."""

    def __init__(self, nbytes: int, writable: bool = False):
        self.nbytes = max(int(nbytes), 1)
        prot = _PROT_READ | (_PROT_WRITE if writable else 0)
        flags = (_MAP_SHARED if writable else _MAP_PRIVATE) | _MAP_ANONYMOUS | _MAP_NORESERVE
        addr = _libc.mmap(None, self.nbytes, prot, flags, -1, 0)
        if addr is None or addr == _MAP_FAILED:
            raise MemoryError(f"mmap of {self.nbytes} bytes failed (errno {ctypes.get_errno()})")
        self.address = addr

    def ptr(self, ctype):
        return ctypes.cast(ctypes.c_void_p(self.address), ctypes.POINTER(ctype))

    def close(self) -> None:
        if self.address:
            _libc.munmap(self.address, self.nbytes)
            self.address = 0

    def __del__(self):
        self.close()


# ---- outcomes -------------------------------------------------------------------------------

def classify(exc: BaseException):
    """(outcome, problems) of an exception raised by a case. An InfpError must carry a known
    negative status other than "internal error" and a non-empty message."""
    try:
        from infp import InfpError
    except Exception:  # noqa: BLE001  (the library failed to load: not a case outcome)
        InfpError = ()  # type: ignore
    if InfpError and isinstance(exc, InfpError):
        problems = []
        status = exc.status
        if status not in STATUS_NAMES or status >= 0:
            problems.append(f"unknown status {status}")
        if status == ERR_INTERNAL:
            problems.append(f"internal error: {exc.message[:300]}")
        if not exc.message.strip():
            problems.append(f"status {status} with an empty infp_last_error()")
        return f"error:{STATUS_NAMES.get(status, status)}", problems
    return f"python:{type(exc).__name__}", []


def check_status(status: int, message: str) -> List[str]:
    """Problems of a raw C status: failures must be known negative codes (not internal) with
    a non-empty message."""
    problems = []
    if status == 0:
        return problems
    if status not in STATUS_NAMES:
        problems.append(f"unknown status {status}")
    if status == ERR_INTERNAL:
        problems.append(f"internal error: {message[:300]}")
    if not message.strip():
        problems.append(f"status {status} ({STATUS_NAMES.get(status, '?')}) with an empty infp_last_error()")
    return problems


# ---- the child ------------------------------------------------------------------------------

def _load_executor(spec: str, setup: dict):
    module_name, _, class_name = spec.partition(":")
    module = __import__(module_name)
    return getattr(module, class_name)(setup)


def child_main(args) -> int:
    limit_memory(args.mem_mb)
    setup = json.loads(Path(args.setup).read_text())
    executor = _load_executor(args.executor, setup)
    out = open(args.results, "a", buffering=1)
    with open(args.cases) as f:
        cases = [json.loads(line) for line in f if line.strip()]
    for case in cases:
        out.write(json.dumps({"start": case["id"]}) + "\n")
        out.flush()
        t0 = time.perf_counter()
        try:
            result = executor.run(case)
        except BaseException as e:  # noqa: BLE001  (a case's exception is its outcome)
            outcome, problems = classify(e)
            result = {"outcome": outcome, "problems": problems, "detail": str(e)[:400]}
        result.setdefault("problems", [])
        result["seconds"] = round(time.perf_counter() - t0, 4)
        out.write(json.dumps({"done": case["id"], **result}, default=str) + "\n")
        out.flush()
    close = getattr(executor, "close", None)
    if close:
        close()
    out.close()
    return 0


def one_main(args) -> int:
    """Runs one case in this process, printing its result."""
    limit_memory(args.mem_mb)
    setup = json.loads(Path(args.setup).read_text())
    executor = _load_executor(args.executor, setup)
    case = json.loads(Path(args.case).read_text())
    try:
        result = executor.run(case)
    except BaseException as e:  # noqa: BLE001
        outcome, problems = classify(e)
        result = {"outcome": outcome, "problems": problems, "detail": str(e)[:400]}
    print(json.dumps(result, indent=1, default=str))
    return 0


# ---- the parent -----------------------------------------------------------------------------

class Failure(dict):
    """A failed case: id, desc, how (signal, hang, exit, problems), detail, stderr tail."""


class Report:
    def __init__(self, label: str):
        self.label = label
        self.outcomes: Dict[int, dict] = {}
        self.failures: List[Failure] = []
        self.counts = collections.Counter()
        self.children = 0
        self.seconds = 0.0

    def record(self, case: dict, result: dict) -> None:
        self.outcomes[case["id"]] = result
        self.counts[result.get("outcome", "?")] += 1
        if result.get("problems") or result.get("how"):
            how = result.get("how") or "; ".join(result["problems"])
            self.failures.append(Failure(id=case["id"], desc=case.get("desc", ""), how=how,
                                         outcome=result.get("outcome"), detail=result.get("detail", ""),
                                         stderr=result.get("stderr", ""), case=case))

    def deaths(self) -> List[Failure]:
        return [f for f in self.failures if f["outcome"] in ("died", "hang", "exit")]

    def summary(self, limit: int = 60) -> str:
        lines = [f"{self.label}: {len(self.outcomes)} cases in {self.children} children, {self.seconds:.1f} s; "
                 f"{len(self.failures)} failures ({len(self.deaths())} deaths or hangs)"]
        lines.append("  outcomes: " + ", ".join(f"{k} {v}" for k, v in self.counts.most_common()))
        for f in self.failures[:limit]:
            lines.append(f"  FAIL #{f['id']} [{f['how']}] {f['desc']}")
            if f.get("detail"):
                lines.append(f"      detail: {f['detail'][:300]}")
            if f.get("artifact"):
                lines.append(f"      case file: {f['artifact']}")
        if len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more failures")
        return "\n".join(lines)

    def by_class(self, key: Callable[[Failure], str]) -> Dict[str, List[Failure]]:
        groups: Dict[str, List[Failure]] = collections.defaultdict(list)
        for f in self.failures:
            groups[key(f)].append(f)
        return dict(groups)


class _Shard:
    """A share of the cases, run by one child after another."""

    def __init__(self, index: int, cases: List[dict], workdir: Path):
        self.index = index
        self.cases = list(cases)
        self.finished = set()
        self.workdir = workdir
        self.proc: Optional[subprocess.Popen] = None
        self.spawns = 0
        self.startup_failures = 0
        self.between_deaths = 0
        self.last_done = None

    def remaining(self) -> List[dict]:
        return [c for c in self.cases if c["id"] not in self.finished]

    def spawn(self, cmd_base: List[str], env: Dict[str, str]) -> None:
        self.spawns += 1
        tag = f"s{self.index}-c{self.spawns}"
        self.cases_file = self.workdir / f"{tag}.cases.jsonl"
        self.results_file = self.workdir / f"{tag}.results.jsonl"
        self.stderr_file = self.workdir / f"{tag}.stderr"
        with open(self.cases_file, "w") as f:
            for c in self.remaining():
                f.write(json.dumps(c) + "\n")
        self.results_file.write_text("")
        self.read_pos = 0
        self.buffer = ""
        self.current: Optional[int] = None
        self.current_since = 0.0
        self.started_any = False
        self.spawned_at = time.monotonic()
        with open(self.stderr_file, "wb") as err:
            self.proc = subprocess.Popen(cmd_base + ["--cases", str(self.cases_file), "--results", str(self.results_file)],
                                         env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=str(self.workdir),
                                         start_new_session=True)

    def poll_results(self, report: Report, by_id: Dict[int, dict]) -> None:
        with open(self.results_file, "rb") as f:
            f.seek(self.read_pos)
            chunk = f.read()
        self.read_pos += len(chunk)
        self.buffer += chunk.decode("utf-8", "replace")
        lines = self.buffer.split("\n")
        self.buffer = lines.pop()
        for line in lines:
            if not line.strip():
                continue
            msg = json.loads(line)
            if "start" in msg:
                self.current, self.current_since, self.started_any = msg["start"], time.monotonic(), True
            elif "done" in msg:
                cid = msg.pop("done")
                report.record(by_id[cid], msg)
                self.finished.add(cid)
                self.last_done = cid
                self.current = None

    def stderr_tail(self, n: int = 2500) -> str:
        """The end of the child's stderr, with its first lines (a Swift fatal error comes
        first, then a long stack trace)."""
        try:
            data = self.stderr_file.read_bytes()
        except OSError:
            return ""
        if len(data) > n + 1000:
            data = data[:600] + b"\n[...]\n" + data[-n:]
        return data.decode("utf-8", "replace")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    def charge(self, report: Report, by_id: Dict[int, dict], outcome: str, how: str) -> None:
        """Records the case in flight as failed (the child died or hung on it)."""
        cid = self.current
        tail = self.stderr_tail()
        report.record(by_id[cid], {"outcome": outcome, "how": how, "stderr": tail, "problems": [how],
                                   "detail": _last_line(tail)})
        self.finished.add(cid)
        self.current = None


def run_cases(cases: List[dict], executor: str, setup: dict, workdir: Path, *, label: str = "cases",
              workers: int = 2, timeout: float = 10.0, startup_timeout: float = 120.0, mem_mb: int = 4096,
              env: Optional[Dict[str, str]] = None) -> Report:
    """Runs every case in child processes (`workers` at a time) and reports each outcome.

    A case may carry its own "timeout" (seconds). Cases are dicts with a unique "id" and a
    human-readable "desc"; everything else is for the executor.
    """
    wait_for_library()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    setup_file = workdir / "setup.json"
    setup_file.write_text(json.dumps(setup))
    cmd_base = [sys.executable, str(Path(__file__).resolve()), "child", "--executor", executor,
                "--setup", str(setup_file), "--mem-mb", str(mem_mb)]
    full_env = child_env(env)
    by_id = {c["id"]: c for c in cases}
    assert len(by_id) == len(cases), "case ids must be unique"
    workers = max(1, min(workers, len(cases) or 1))
    shards = [_Shard(i, cases[i::workers], workdir) for i in range(workers)]
    report = Report(label)
    t_start = time.monotonic()
    try:
        while any(s.proc is not None or len(s.finished) < len(s.cases) for s in shards):
            for s in shards:
                if s.proc is None:
                    if len(s.finished) < len(s.cases):
                        s.spawn(cmd_base, full_env)
                        report.children += 1
                    continue
                s.poll_results(report, by_id)
                rc = s.proc.poll()
                now = time.monotonic()
                if rc is None:
                    if s.current is not None:
                        limit = by_id[s.current].get("timeout", timeout)
                        if now - s.current_since > limit:
                            s.kill()
                            s.poll_results(report, by_id)
                            if s.current is not None:
                                if by_id[s.current].get("timeout_ok"):
                                    # Legitimately long work (e.g. streaming through a huge input
                                    # in bounded pieces): still running without a crash is a pass.
                                    report.record(by_id[s.current], {"outcome": f"still running after {limit:g} s (allowed)"})
                                    s.finished.add(s.current)
                                    s.last_done, s.current = s.current, None
                                else:
                                    s.charge(report, by_id, "hang", f"hang: no result after {limit:g} s (killed)")
                            s.proc = None
                    elif not s.started_any and now - s.spawned_at > startup_timeout:
                        s.kill()
                        raise RuntimeError(f"{label}: a child did not start within {startup_timeout:.0f} s:\n{s.stderr_tail()}")
                    continue
                s.poll_results(report, by_id)  # the child ended: its last lines
                if s.current is not None:
                    how = f"killed by {signal_name(rc)}" if rc < 0 else f"exited with status {rc} in the middle of the case"
                    s.charge(report, by_id, "died" if rc < 0 else "exit", how)
                elif rc != 0 and s.started_any:
                    # Died between cases (a finaliser, the executor's cleanup): charge it apart.
                    s.between_deaths += 1
                    tail = s.stderr_tail()
                    how = (f"killed by {signal_name(rc)}" if rc < 0 else f"exited with status {rc}") + \
                          f" between cases, after case #{s.last_done}"
                    report.failures.append(Failure(id=f"after-{s.last_done}", desc=by_id.get(s.last_done, {}).get("desc", ""),
                                                   how=how, outcome="died", detail=_last_line(tail), stderr=tail,
                                                   case=by_id.get(s.last_done, {})))
                    if s.between_deaths > 5:
                        raise RuntimeError(f"{label}: children keep dying between cases:\n{tail}")
                elif len(s.finished) < len(s.cases):
                    s.startup_failures += 1
                    if s.startup_failures >= 3 or s.started_any:
                        raise RuntimeError(f"{label}: a child exited with status {rc} before running its cases:\n"
                                           f"{s.stderr_tail()}")
                    wait_for_library()  # the library may have been replaced under us
                s.proc = None
            time.sleep(0.01)
    finally:
        for s in shards:
            s.kill()
    report.seconds = time.monotonic() - t_start
    return report


def _last_line(text: str) -> str:
    """What a dead child's stderr says: a Swift fatal error (or Python's fault handler line) and
    the innermost Python frame at the time, e.g. "Fatal error: ... | at model.py:92 in load"."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    fatal = next((l for l in lines if l.startswith("Fatal error") or ": Fatal error" in l), None) or \
        next((l for l in lines if l.startswith("Fatal Python error")), None) or (lines[-1] if lines else "")
    frame = ""
    for i, l in enumerate(lines):
        if "most recent call first" in l and i + 1 < len(lines) and lines[i + 1].startswith("File "):
            f = lines[i + 1]
            try:
                path = f.split('"')[1]
                rest = f.split('"')[2].strip(", ")
                frame = f" | at {Path(path).name}:{rest.replace('line ', '').replace(' in ', ' in ')}"
            except IndexError:
                frame = f" | {f}"
    return (fatal[:300] + frame)[:400]


def write_failures(report: Report, directory: Path, materialize: Optional[Callable[[dict, Path], Optional[str]]] = None,
                   executor: str = "", setup: Optional[dict] = None) -> Path:
    """Writes each failing case (as JSON, plus whatever `materialize` makes of it, e.g. the
    checkpoint file) under `directory`, and a failures.json with all of them."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if setup is not None:
        (directory / "setup.json").write_text(json.dumps(setup, indent=1))
    for f in report.failures:
        case_file = directory / f"case-{f['id']}.json"
        case_file.write_text(json.dumps(f["case"], indent=1))
        f["case_json"] = str(case_file)
        if materialize is not None:
            try:
                f["artifact"] = materialize(f["case"], directory)
                f["desc"] = f["case"].get("desc", f["desc"])  # the materializer knows the exact mutation
            except Exception as e:  # noqa: BLE001
                f["artifact"] = f"(could not write the case file: {e})"
        else:
            f["artifact"] = str(case_file)
    (directory / "failures.json").write_text(json.dumps(
        [{k: v for k, v in f.items() if k != "stderr"} | {"stderr_tail": f.get("stderr", "")[-800:]}
         for f in report.failures], indent=1, default=str))
    if executor and report.failures:
        (directory / "REPRODUCE.txt").write_text(
            "Run one case in-process (it may crash: that is the failure):\n"
            f"  cd {PYTHON_DIR} && PYTHONPATH=.:tests python3 tests/fuzz_support.py one --executor {executor} "
            f"--setup {directory / 'setup.json'} --case {directory}/case-ID.json\n")
    return directory


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("child")
    c.add_argument("--executor", required=True)
    c.add_argument("--setup", required=True)
    c.add_argument("--cases", required=True)
    c.add_argument("--results", required=True)
    c.add_argument("--mem-mb", type=int, default=4096)
    o = sub.add_parser("one")
    o.add_argument("--executor", required=True)
    o.add_argument("--setup", required=True)
    o.add_argument("--case", required=True)
    o.add_argument("--mem-mb", type=int, default=4096)
    args = parser.parse_args(argv)
    if args.command == "child":
        return child_main(args)
    return one_main(args)


if __name__ == "__main__":
    sys.path[:0] = [str(TESTS_DIR)]
    sys.exit(main())
