"""Reading and writing safetensors files with NumPy only (no torch, no safetensors package).

Format: an 8-byte little-endian header length, a JSON header mapping each tensor name to its
dtype, shape and byte range (plus an optional "__metadata__" string map), then the raw data.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Tuple

import numpy as np

__all__ = ["load", "save"]

_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
           "U8": np.uint8, "I8": np.int8, "BOOL": np.bool_}
_NAMES = {np.dtype(v): k for k, v in _DTYPES.items()}


def load(path) -> Tuple["OrderedDict[str, np.ndarray]", Dict[str, str]]:
    """Returns (tensors in file order, metadata)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path} is not a safetensors file (only {len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError(f"{path} is not a safetensors file (header length {n} exceeds the file)")
    header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    meta = header.pop("__metadata__", {}) or {}
    body = memoryview(data)[8 + n:]
    out = OrderedDict()
    for name, info in header.items():
        dtype = _DTYPES.get(info["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(info["shape"]).copy()
    return out, dict(meta)


def save(path, tensors: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, str]] = None) -> None:
    """Writes atomically: a temporary file in the same folder, fsync, then rename."""
    header = OrderedDict()
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    arrays, offset = [], 0
    for name, value in tensors.items():
        a = np.ascontiguousarray(value)
        if a.dtype not in _NAMES:
            raise ValueError(f"tensor {name} has unsupported dtype {a.dtype}")
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        header[name] = {"dtype": _NAMES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        arrays.append(a)
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for a in arrays:
                f.write(a.tobytes())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
