"""Checks of Python arguments before they become C fields: ctypes would silently wrap an int
that does not fit (seed=2**64 becomes 0), turn NaN into INT64_MIN, or cut a path at a NUL."""

from __future__ import annotations

import math
import numbers
import os

INT32 = (-(2 ** 31), 2 ** 31 - 1)
UINT64 = (0, 2 ** 64 - 1)
INT64 = (-(2 ** 63), 2 ** 63 - 1)


def integer(value, name: str, lo: int = INT32[0], hi: int = INT32[1]) -> int:
    """``value`` as an int in [lo, hi]; bools, floats with a fraction, NaN and other types are refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if not lo <= value <= hi:
        raise ValueError(f"{name} is {value}; it must be between {lo} and {hi}")
    return value


def number(value, name: str, lo: float = -math.inf, hi: float = math.inf, *, allow_nan: bool = False) -> float:
    """``value`` as a finite float in [lo, hi] (NaN only when ``allow_nan``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if math.isnan(value):
        if allow_nan:
            return value
        raise ValueError(f"{name} is NaN")
    if not lo <= value <= hi:
        raise ValueError(f"{name} is {value}; it must be between {lo} and {hi}")
    return value


def path(value, name: str = "path") -> bytes:
    """A file path as the bytes the C library gets: str paths are encoded as the OS does
    (non-UTF-8 names round-trip), and a NUL, which would cut the path short, is refused."""
    try:
        raw = os.fsencode(os.fspath(value))
    except TypeError:
        raise TypeError(f"{name} must be a str, bytes or os.PathLike, got {type(value).__name__}") from None
    if b"\0" in raw:
        raise ValueError(f"{name} {value!r} contains a NUL character")
    if not raw:
        raise ValueError(f"{name} is empty")
    return raw
