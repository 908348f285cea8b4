"""Atomic file writes: nothing a user saved is ever half-written."""

from __future__ import annotations

import os
import tempfile


def write_atomically(path, write, *, binary: bool = True) -> None:
    """Calls ``write(f)`` on a temporary file in ``path``'s folder, flushes it to disk, then
    renames it over ``path``; on any failure the temporary file is removed and ``path`` keeps
    its old content."""
    path = os.fspath(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb" if binary else "w") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
