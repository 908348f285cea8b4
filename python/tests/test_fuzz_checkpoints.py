"""Checkpoint fuzzing (issue 11): no file may crash or hang the process that loads it.

Thousands of mutated checkpoints (truncations, header length, header bytes and JSON syntax,
dtypes, shapes, data offsets, tensor names, metadata, the config, the calibration, the memory
of normal footage and its layout, non-finite values, training state, random byte flips, and
stacks of these) plus special files (FIFO, folder, devices, a 64 GiB sparse file, symlink loop,
...) are loaded in child processes (fuzz_support.run_cases); a checkpoint that loads is then
used: predict, anomaly scores, a live stream, save and reload, and for training checkpoints a
resumed fit. The test fails on any death by signal, any hang, an internal error, an unknown
status, an empty error message, or a Python exception other than InfpError / ValueError.
Targeted cases check the known classes one by one: what must be rejected at load, and what
must fail fast.

Environment:
    INFP_FUZZ_CASES     mutated checkpoints (default 3000)
    INFP_FUZZ_SEED      master seed (default 11); a failure reproduces with the same seed
    INFP_FUZZ_WORKERS   child processes at a time (default 2)
    INFP_FUZZ_TIMEOUT   seconds before a case counts as a hang (default 10)
    INFP_FUZZ_OUT       folder for failing cases (default: pytest's tmp_path)
"""

from __future__ import annotations

import json
import math
import os
import random
import socket
import struct
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import fuzz_support as fs
from footage import moving_video

H, W = 32, 48  # tiny preset
EXECUTOR = "test_fuzz_checkpoints:Executor"
GiB = 1 << 30


# ---- deterministic footage -------------------------------------------------------------------

def video(n, seed, h=H, w=W):
    """Moving stripes plus noise, uint8 (n, h, w, 3)."""
    return moving_video(n, h, w, seed)


def train_videos():
    return [video(7, 1), video(7, 2)]


def build_bases(folder: Path) -> dict:
    """The checkpoints the mutations start from: "full" (network, memory, calibration),
    "weights" (weights only) and "train" (a training checkpoint with optimizer state, memory
    and calibration)."""
    from infp import Model
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: str(folder / f"base-{k}.safetensors") for k in ("full", "weights", "train")}
    m = Model("tiny", seed=7, threads=1)
    m.remember([video(8, 3), video(9, 4)])
    m.calibrate([video(10, 5)], false_alarm_rate=0.05)
    m.save(paths["full"])
    m.save(paths["weights"], weights_only=True)
    t = Model("tiny", seed=8, threads=1)
    t.remember([video(8, 3)])
    t.calibrate([video(10, 5)], false_alarm_rate=0.05)
    t.fit(train_videos(), epochs=1, batch_size=2, progress=False, checkpoint_every=1,
          checkpoint_path=paths["train"], remember=False)
    m.close()
    t.close()
    return paths


# ---- a checkpoint as header pairs + data ---------------------------------------------------------

class RawJSON:
    """JSON text emitted as is (NaN, 1e400, -0, 01, ...)."""

    def __init__(self, text):
        self.text = text

    def __repr__(self):
        return f"RawJSON({self.text!r})"


def dumps(v) -> str:
    if isinstance(v, RawJSON):
        return v.text
    if isinstance(v, dict):
        return "{" + ",".join(dumps(k if isinstance(k, (str, RawJSON)) else str(k)) + ":" + dumps(x) for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(dumps(x) for x in v) + "]"
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return repr(v)
    return json.dumps(v)


def dump_pairs(pairs) -> str:
    """A JSON object from (key, value) pairs, duplicates kept."""
    return "{" + ",".join(dumps(k) + ":" + dumps(v) for k, v in pairs) + "}"


_NP = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32, "I16": np.int16,
       "I8": np.int8, "U8": np.uint8, "U16": np.uint16, "U32": np.uint32, "U64": np.uint64, "BOOL": np.bool_}
_SIZES = {"F32": 4, "F64": 8, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "U16": 2,
          "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


class Doc:
    """A checkpoint being mutated: header pairs (duplicates allowed, "__metadata__" among
    them), the data bytes, and overrides applied when packing (header text, length field,
    raw byte edits)."""

    def __init__(self, blob: bytes):
        (n,) = struct.unpack("<Q", blob[:8])
        header = json.loads(blob[8:8 + n])
        self.pairs = [[k, v] for k, v in header.items()]
        self.data = bytearray(blob[8 + n:])
        self.text_override = None
        self.length_override = None
        self.raw_edits = []  # functions bytes -> bytes

    # tensors ----------------------------------------------------------------------------------
    def tensor_names(self):
        return [k for k, v in self.pairs if k != "__metadata__" and isinstance(v, dict)]

    def info(self, name):
        for k, v in self.pairs:
            if k == name:
                return v
        raise KeyError(name)

    def tensor_bytes(self, name) -> bytes:
        b, e = self.info(name)["data_offsets"]
        return bytes(self.data[b:e])

    def array(self, name) -> np.ndarray:
        i = self.info(name)
        return np.frombuffer(self.tensor_bytes(name), dtype=_NP[i["dtype"]]).reshape(i["shape"]).copy()

    def tensors(self):
        """(name, dtype, shape, bytes) of every tensor, in header order (offsets must be sane)."""
        return [(k, v["dtype"], list(v["shape"]), self.tensor_bytes(k)) for k, v in self.pairs
                if k != "__metadata__" and isinstance(v, dict)]

    def repack(self, tensors):
        """Rewrites the tensors (name, dtype, shape, bytes) with consecutive byte ranges; the
        metadata stays where it was."""
        meta = [p for p in self.pairs if p[0] == "__metadata__"]
        meta_first = bool(self.pairs) and self.pairs[0][0] == "__metadata__"
        pairs, data, off = [], bytearray(), 0
        for name, dtype, shape, raw in tensors:
            pairs.append([name, {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}])
            data += raw
            off += len(raw)
        self.pairs = (meta + pairs) if meta_first else (pairs + meta)
        self.data = data

    def set_tensor(self, name, dtype, shape, raw):
        self.repack([(n, dtype, shape, raw) if n == name else (n, d, s, b) for n, d, s, b in self.tensors()])

    # metadata ---------------------------------------------------------------------------------
    def meta(self):
        for k, v in self.pairs:
            if k == "__metadata__":
                return v
        return None

    def set_meta(self, key, value):
        m = self.meta()
        if not isinstance(m, dict):
            m = {}
            self.pairs.insert(0, ["__metadata__", m])
        if value is None:
            m.pop(key, None)
        else:
            m[key] = value

    def meta_dict(self):
        """The metadata as a dict, replacing a non-dict one (after a structural mutation)."""
        for p in self.pairs:
            if p[0] == "__metadata__":
                if not isinstance(p[1], dict):
                    p[1] = {}
                return p[1]
        m = {}
        self.pairs.insert(0, ["__metadata__", m])
        return m

    # output -----------------------------------------------------------------------------------
    def header_text(self) -> bytes:
        if self.text_override is not None:
            return self.text_override
        text = dump_pairs(self.pairs).encode("utf-8", "surrogatepass")
        return text + b" " * ((8 - len(text) % 8) % 8)

    def pack(self) -> bytes:
        text = self.header_text()
        n = len(text) if self.length_override is None else self.length_override
        blob = struct.pack("<Q", n & (2 ** 64 - 1)) + text + bytes(self.data)
        for edit in self.raw_edits:
            blob = edit(blob)
        return blob


# ---- value pools -------------------------------------------------------------------------------

HUGE_INTS = [2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53 + 1, 2 ** 62, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64,
             2 ** 100, -(2 ** 63), -(2 ** 63) - 1, -(2 ** 31)]
ODD_VALUES = [-1, 0, 1, 2, 0.5, -0.0, 1.5, 1e308, RawJSON("1e400"), RawJSON("-1e400"), RawJSON("NaN"),
              RawJSON("Infinity"), RawJSON("-Infinity"), RawJSON("1E2"), RawJSON("-0"), RawJSON("1.0"),
              "3", "", "NaN", None, True, False, [], {}, [1], {"a": 1}, "x" * 5000] + HUGE_INTS


def odd_value(rng):
    return rng.choice(ODD_VALUES)


def deep(kind, depth):
    if kind == "array":
        return "[" * depth + "]" * depth
    if kind == "array-open":
        return "[" * depth
    if kind == "object":
        return '{"a":' * depth + "1" + "}" * depth
    return '{"a":[' * (depth // 2) + "0" + "]}" * (depth // 2)


# ---- mutation operators ------------------------------------------------------------------------
# Each takes (doc, rng, base) and returns a description; they edit the doc in place.

def _pick_tensor(doc, rng, prefer=None):
    names = doc.tensor_names()
    interesting = [n for n in names if n.startswith(("memory.", "optim.step")) or n == names[0]
                   or "num_batches" in n or "running_var" in n]
    if prefer:
        pool = [n for n in names if any(p in n for p in prefer)]
        if pool and rng.random() < 0.8:
            return rng.choice(pool)
    if interesting and rng.random() < 0.5:
        return rng.choice(interesting)
    return rng.choice(names)


def op_truncate(doc, rng, base):
    blob_len = 8 + len(doc.header_text()) + len(doc.data)
    hl = 8 + len(doc.header_text())
    cut = rng.choice([rng.randrange(0, 9), rng.randrange(8, hl), hl + rng.randrange(-3, 4),
                      rng.randrange(hl, blob_len), blob_len - rng.randrange(1, 64), blob_len - 1])
    cut = max(0, min(cut, blob_len))
    doc.raw_edits.append(lambda b, c=cut: b[:c])
    return f"file truncated to {cut} of {blob_len} bytes (header ends at {hl})"


def op_extend(doc, rng, base):
    extra = rng.choice([1, 7, 8, 4096, 1 << 20])
    fill = rng.choice([b"\0", b"\xff", b"A"])
    doc.raw_edits.append(lambda b, e=extra, f=fill: b + f * e)
    return f"{extra} bytes of {fill!r} appended after the data"


def op_header_length(doc, rng, base):
    n = len(doc.header_text())
    total = n + len(doc.data)
    value = rng.choice([0, 1, 2, 7, 8, n - 1, n + 1, n + 8, n - 8, total, total + 1, total - 1, 2 ** 32, 2 ** 32 + n,
                        2 ** 63, 2 ** 64 - 1, 99_999_999, 100_000_000, rng.randrange(0, total + 16)])
    doc.length_override = value
    return f"header length field {value} (header is {n} bytes, data {len(doc.data)})"


def op_header_bytes(doc, rng, base):
    text = bytearray(doc.header_text())
    edits = []
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        pos = rng.randrange(len(text))
        kind = rng.choice(["flip", "replace", "delete", "insert", "dup"])
        if kind == "flip":
            text[pos] ^= 1 << rng.randrange(8)
        elif kind == "replace":
            text[pos] = rng.choice(b'{}[]",:\\0123456789-eE.ntfa \x00\xff\x80')
        elif kind == "delete":
            del text[pos:pos + rng.randrange(1, 17)]
        elif kind == "insert":
            text[pos:pos] = bytes(rng.choice(b'{}[]",:\\0-9eE.\x00\xff ') for _ in range(rng.randrange(1, 9)))
        else:
            k = rng.randrange(1, 64)
            text[pos:pos] = text[pos:pos + k]
        edits.append(f"{kind}@{pos}")
    doc.text_override = bytes(text)
    keep_len = rng.random() < 0.3
    if keep_len:
        doc.length_override = len(base_header_text(base))
    return f"header bytes edited ({', '.join(edits)}), length field {'kept' if keep_len else 'adjusted'}"


def base_header_text(base):
    (n,) = struct.unpack("<Q", base[:8])
    return base[8:8 + n]


def op_json_syntax(doc, rng, base):
    valid = dump_pairs(doc.pairs)
    choice = rng.choice(["deep", "deep", "top", "empty", "trailing", "bom", "nul", "utf8", "surrogate", "numbers",
                         "unterminated", "control", "cut"])
    if choice == "deep":
        kind = rng.choice(["array", "array-open", "object", "mixed"])
        depth = rng.choice([1000, 10_000, 100_000, 1_000_000])
        text = deep(kind, depth)
        if rng.random() < 0.5:  # nested inside a real header value
            text = valid[:-1] + ',"deep":' + text + "}"
        desc = f"header JSON nested {depth} deep ({kind})"
    elif choice == "top":
        text = rng.choice(["[]", '"x"', "123", "null", "true", "[" + valid + "]", '{"__metadata__":{}}', "{}"])
        desc = f"header JSON is {text[:40]!r}"
    elif choice == "empty":
        text = rng.choice(["", " ", "\n" * 16])
        desc = "empty header"
    elif choice == "trailing":
        text = valid + rng.choice(["x", "}", ",", '{"a":1}', "\0", "]"])
        desc = "garbage after the header object"
    elif choice == "bom":
        text = "\ufeff" + valid
        desc = "byte order mark before the header"
    elif choice == "nul":
        p = rng.randrange(len(valid))
        text = valid[:p] + "\0" + valid[p:]
        desc = f"NUL byte in the header at {p}"
    elif choice == "utf8":
        raw = valid.encode()
        p = raw.find(b'"', rng.randrange(len(raw)))
        p = p if p >= 0 else 1
        bad = rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"])
        doc.text_override = raw[:p + 1] + bad + raw[p + 1:]
        pad = (8 - len(doc.text_override) % 8) % 8
        doc.text_override += b" " * pad
        return f"invalid UTF-8 {bad!r} in a header string"
    elif choice == "surrogate":
        name = rng.choice(doc.tensor_names())
        text = valid.replace(json.dumps(name), json.dumps(name)[:-1] + rng.choice(["\\ud800", "\\udfff", "\\u0000", "\\uZZZZ", "\\"]) + '"', 1)
        desc = f"bad escape in tensor name {name!r}"
    elif choice == "numbers":
        token = rng.choice(["01", "-", "1e", ".5", "+1", "0x10", "1e99999", "-1e99999", "1" * 400, "NaN", "Infinity", "--1"])
        name = rng.choice(doc.tensor_names())
        i = valid.find(json.dumps(name))
        j = valid.find("data_offsets", i)
        k = valid.find("[", j)
        text = valid[:k + 1] + token + "," + valid[k + 1:]
        desc = f"number token {token[:20]!r} in the data_offsets of {name!r}"
    elif choice == "unterminated":
        text = valid[:rng.randrange(1, len(valid))] + '"' + "a" * rng.randrange(0, 10)
        desc = "header cut inside, then an unterminated string"
    elif choice == "control":
        p = valid.find('"', rng.randrange(len(valid) - 1))
        text = valid[:p + 1] + rng.choice(["\n", "\t", "\x01", "\x7f"]) + valid[p + 1:]
        desc = "raw control character in a header string"
    else:
        text = valid[:rng.randrange(1, len(valid))]
        desc = f"header JSON cut at {len(text)} of {len(valid)}"
    raw = text.encode("utf-8", "surrogatepass")
    doc.text_override = raw + b" " * ((8 - len(raw) % 8) % 8)
    return desc


def op_dtype(doc, rng, base):
    name = _pick_tensor(doc, rng)
    info = doc.info(name)
    new = rng.choice(["F32", "F64", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "U64", "BOOL", "F8_E4M3", "",
                      "f32", "F32 ", 32, None, ["F32"], {"a": 1}, "F" * 1000])
    if isinstance(new, str) and new in _SIZES and rng.random() < 0.6:
        old = doc.array(name) if info["dtype"] in _NP else None
        count = int(np.prod(info["shape"])) if info["shape"] else 1
        if new in _NP and old is not None and rng.random() < 0.7:
            with np.errstate(all="ignore"):
                raw = old.astype(_NP[new]).tobytes()
        elif new == "BF16" and old is not None:
            raw = (old.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
        else:
            raw = bytes(rng.getrandbits(8) for _ in range(count * _SIZES[new])) if count < 4096 else \
                np.random.default_rng(rng.getrandbits(32)).integers(0, 256, count * _SIZES[new], dtype=np.uint8).tobytes()
        doc.set_tensor(name, new, list(info["shape"]), raw)
        return f"tensor {name!r} dtype {info['dtype']} -> {new}, data converted or refilled to fit"
    old_dtype = info["dtype"]
    info["dtype"] = new
    return f"tensor {name!r} dtype {old_dtype} -> {new!r} (byte range unchanged)"


def op_shape(doc, rng, base):
    name = _pick_tensor(doc, rng)
    info = doc.info(name)
    shape = list(info["shape"])
    count = int(np.prod(shape)) if shape else 1
    options = [[-1] * max(1, len(shape)), [], [0], [1], shape[::-1], shape + [1], [1] + shape, shape[:-1],
               [count], [2 ** 40], [2 ** 62, 2 ** 62], [2 ** 31, 2 ** 31, 4], [2 ** 32, 2 ** 32], [1.5], ["3"], [None],
               [[1]], "16", None, [True], [1] * 100, [count, -1], [-count, -1], [0, 2 ** 63], [RawJSON("1e400")],
               [RawJSON("NaN")], [RawJSON("-0")], [RawJSON("2.0")] * max(1, len(shape)), [count * 2], [2 ** 64 + count]]
    if len(shape) >= 2:
        options += [[shape[0] * 2, shape[1] // 2 if shape[1] % 2 == 0 else shape[1]], [shape[0], shape[1] - 1],
                    [shape[0] - 1, shape[1]], [-shape[0], -shape[1]] + shape[2:]]
    new = rng.choice(options)
    info["shape"] = new
    return f"tensor {name!r} shape {shape} -> {new!r} (byte range unchanged)"


def op_offsets(doc, rng, base):
    name = _pick_tensor(doc, rng)
    info = doc.info(name)
    b, e = info["data_offsets"]
    size = e - b
    total = len(doc.data)
    others = [n for n in doc.tensor_names() if n != name]
    other = rng.choice(others) if others else name
    ob, oe = doc.info(other)["data_offsets"]
    same_size = [n for n in others if (lambda r: r[1] - r[0])(doc.info(n)["data_offsets"]) == size]
    alias = doc.info(rng.choice(same_size))["data_offsets"] if same_size else [ob, ob + size]
    new = rng.choice([[e, b], [b, e + 1], [b - 1, e - 1], [b + 1, e + 1], list(alias), [ob, oe], [e, e + size],
                      [total - size + 1, total + 1], [total, total + size], [-size, 0], [-1, size - 1], [b, b],
                      [2 ** 63, 2 ** 63 + size], [2 ** 64 - size, 2 ** 64], [b, 2 ** 64 + e], [0, total],
                      [float(b), float(e)], [str(b), str(e)], [b], [b, e, e], [], None, "0-4",
                      [RawJSON("NaN"), e], [RawJSON("1e400"), RawJSON("1e400")], [b - 2 ** 64, e - 2 ** 64],
                      [b + total, e + total]])
    info["data_offsets"] = new
    return f"tensor {name!r} data_offsets [{b}, {e}] -> {new!r} (data {total} bytes)"


def op_names(doc, rng, base):
    names = doc.tensor_names()
    name = _pick_tensor(doc, rng)
    kind = rng.choice(["dup-same", "dup-other", "remove", "remove-repack", "extra", "rename", "shuffle", "meta-dup",
                       "meta-last"])
    idx = next(i for i, p in enumerate(doc.pairs) if p[0] == name)
    if kind == "dup-same":
        doc.pairs.insert(rng.randrange(len(doc.pairs) + 1), [name, dict(doc.pairs[idx][1])])
        return f"tensor {name!r} listed twice (same entry)"
    if kind == "dup-other":
        other = rng.choice(names)
        doc.pairs.insert(rng.randrange(len(doc.pairs) + 1), [name, dict(doc.info(other))])
        return f"tensor {name!r} listed twice (second entry is {other!r}'s)"
    if kind == "remove":
        del doc.pairs[idx]
        return f"tensor {name!r} removed from the header (its bytes stay)"
    if kind == "remove-repack":
        doc.repack([t for t in doc.tensors() if t[0] != name])
        return f"tensor {name!r} removed"
    if kind == "extra":
        new = rng.choice(["extra", "memory.extra", "optim.extra", "memory.features2", "optim.", "memory.", "wrn38.extra.weight",
                          name + ".x", "__metadata", "__metadata__x", ""])
        shape = rng.choice([[4], [], [0], [2, 2]])
        count = int(np.prod(shape)) if shape else 1
        doc.repack(doc.tensors() + [(new, "F32", shape, np.ones(count, np.float32).tobytes())])
        return f"extra tensor {new!r} {shape}"
    if kind == "rename":
        new = rng.choice(["", " ", name.upper(), name + "\0", "\0" + name, name[:-1], "x" * 10000, name + "\u00e9",
                          "memory.features" if name != "memory.features" else "memory.video_lengths", rng.choice(names)])
        doc.pairs[idx][0] = new
        return f"tensor {name!r} renamed to {new[:40]!r}"
    if kind == "shuffle":
        rng.shuffle(doc.pairs)
        return "header entries shuffled (byte ranges unchanged)"
    if kind == "meta-dup":
        m = doc.meta()
        doc.pairs.insert(rng.randrange(len(doc.pairs) + 1), ["__metadata__", dict(m) if isinstance(m, dict) else {}])
        return "__metadata__ listed twice"
    meta = [p for p in doc.pairs if p[0] == "__metadata__"]
    doc.pairs = [p for p in doc.pairs if p[0] != "__metadata__"] + meta
    return "__metadata__ moved after the tensors"


def op_metadata_struct(doc, rng, base):
    kind = rng.choice(["not-object", "non-string", "remove", "format", "many", "big", "empty-key", "dup-key"])
    m = doc.meta_dict()
    if not m and kind in ("non-string", "remove", "dup-key"):
        kind = "format"
    if kind == "not-object":
        value = rng.choice([[], "x", None, 5, [["format", "infp"]], True])
        for p in doc.pairs:
            if p[0] == "__metadata__":
                p[1] = value
        return f"__metadata__ is {value!r}"
    if kind == "non-string":
        key = rng.choice(list(m))
        try:
            as_json = json.loads(m[key]) if key.startswith("infp_") and isinstance(m[key], str) else 5
        except (ValueError, RecursionError):
            as_json = 5
        m[key] = rng.choice([as_json, 5, None, [], {"a": 1}, True, 1.5])
        return f"__metadata__[{key!r}] is not a string: {str(m[key])[:40]}"
    if kind == "remove":
        key = rng.choice(list(m) + ["__all__"])
        if key == "__all__":
            doc.pairs = [p for p in doc.pairs if p[0] != "__metadata__"]
        else:
            m.pop(key)
        return f"metadata {key!r} removed"
    if kind == "format":
        m["format"] = rng.choice(["pt", "", "infp2", "INFP", "x" * 100])
        return f"metadata format {m['format']!r}"
    if kind == "many":
        for i in range(rng.choice([100, 10_000])):
            m[f"k{i}"] = "v"
        return "metadata with many keys"
    if kind == "big":
        m["big"] = "x" * rng.choice([1 << 16, 1 << 20])
        return f"metadata value of {len(m['big'])} bytes"
    if kind == "empty-key":
        m[""] = ""
        return "metadata with an empty key"
    key = rng.choice(list(m))
    for p in doc.pairs:
        if p[0] == "__metadata__":
            items = list(p[1].items())
            p[1] = RawJSON(dump_pairs(items + [(key, rng.choice(["", "{}", "x", p[1][key]]))]))
    return f"metadata key {key!r} twice"


CONFIG_FIELDS = {"height": [8, 16, 24, 40, 4096, 4104, 8192, 33, 7], "width": [8, 16, 56, 4096, 4104, 8192, 47],
                 "frames": [3, 5, 0, 8], "image_channels": [1, 4, 0],
                 "width_div": [1, 2, 3, 16, 64, 128, 0], "blocks": [[64] * 6, [0] * 6, [1] * 5, [1] * 7, [-1] * 6, ["1"] * 6,
                                                                   [1.5] * 6, [2 ** 62] * 6, [], [1, 1, 1, 1, 1, None]],
                 "fusion": ["yes", 1, None, False], "trajectory_filter": ["no", 0, None, False],
                 "filter_mode": ["bogus", "spatial", "", None, 5], "filter_bases": [0, 64, 65, 2 ** 40],
                 "freq_mode": ["bogus", "", None], "fusion_tsm_div": [0, -1, 2 ** 40, 1], "baseline_tsm_div": [0, -1, 2 ** 40],
                 "dropout": ["x", 2, None], "loss": ["bogus", "", None], "loss_alpha": [-1, 2, 1e-45, 1, 0]}


def op_config(doc, rng, base):
    m = doc.meta_dict()
    text = m.get("infp_config", "{}")
    try:
        cfg = json.loads(text)
    except (ValueError, RecursionError):
        cfg = {}
    kind = rng.choice(["field", "field", "field", "odd", "remove", "unknown", "text", "huge", "two"])
    if kind == "text":
        new = rng.choice(["{", "", "null", "[]", "NaN", '{"height": NaN}', '{"loss_alpha": NaN}', text + "x", text[:-1],
                          deep("array", 100_000), deep("object", 50_000), '{"height":32,"height":64}', "\"" + text + "\"",
                          text.replace("32", "32.0"), text.replace('"tiny"', '"\\ud800"'), "\0" + text, text + "\0"])
        m["infp_config"] = new
        return f"infp_config text {new[:60]!r}"
    if kind == "huge":
        cfg.update({"height": 4096, "width": 4096, "width_div": rng.choice([1, 2, 32]), "blocks": [rng.choice([1, 64])] * 6})
        m["infp_config"] = dumps(cfg)
        return f"infp_config names a huge model {cfg['height']}x{cfg['width']} width_div {cfg['width_div']} blocks {cfg['blocks']}"
    if kind == "remove":
        field = rng.choice(list(cfg) or ["height"])
        cfg.pop(field, None)
        m["infp_config"] = dumps(cfg)
        return f"infp_config without {field!r}"
    if kind == "unknown":
        cfg[rng.choice(["foo", "", "Height", "preset"])] = odd_value(rng)
        m["infp_config"] = dumps(cfg)
        return "infp_config with an unknown field"
    changes = []
    for _ in range(2 if kind == "two" else 1):
        field = rng.choice(list(CONFIG_FIELDS))
        value = odd_value(rng) if kind == "odd" or rng.random() < 0.3 else rng.choice(CONFIG_FIELDS[field])
        cfg[field] = value
        changes.append(f"{field}={str(dumps(value))[:40]}")
    m["infp_config"] = dumps(cfg)
    return "infp_config " + ", ".join(changes)


def op_calibration(doc, rng, base):
    m = doc.meta_dict()
    text = m.get("infp_calibration", "{}")
    try:
        cal = json.loads(text)
    except (ValueError, RecursionError):
        cal = {}
    kind = rng.choice(["field", "field", "field", "remove", "text", "absent"])
    if kind == "absent":
        m.pop("infp_calibration", None)
        return "no infp_calibration"
    if kind == "text":
        m["infp_calibration"] = rng.choice(["{", "", "null", "[]", "5", deep("array", 100_000), text.replace("0", "NaN", 1)])
        return f"infp_calibration text {m['infp_calibration'][:40]!r}"
    if kind == "remove":
        field = rng.choice(list(cal) or ["psnr_std"])
        cal.pop(field, None)
        m["infp_calibration"] = dumps(cal)
        return f"infp_calibration without {field!r}"
    field = rng.choice(["method", "psnr_mean", "psnr_std", "threshold", "n_frames", "n_videos", "false_alarm_rate"])
    pools = {"method": ["bogus", "patch", "psnr", 5, -1, None, ""], "psnr_std": [0, -1, 1e-45, 1e38, RawJSON("1e400")],
             "threshold": [RawJSON("-1e400"), 1e38, -1e38], "n_frames": [0, -1, 1, 2 ** 63], "n_videos": [0, -1, 2 ** 63],
             "false_alarm_rate": [0, 1, -0.5, 2, 1e-45], "psnr_mean": [1e38, -1e38, 0]}
    value = odd_value(rng) if rng.random() < 0.4 else rng.choice(pools.get(field, [0]))
    cal[field] = value
    m["infp_calibration"] = dumps(cal)
    return f"infp_calibration {field}={str(dumps(value))[:40]}"


MEMORY_LAYOUTS = [(1, 1, 192), (192, 1, 1), (8, 6, 4), (4, 8, 6), (16, 4, 3), (2, 4, 24), (-1, -1, 192), (-8, -4, 6),
                  (-1, 1, -192), (8, 4, 6), (0, 4, 6), (8, 0, 6), (96, 2, 1), (3, 8, 8), (8, 24, 1)]


def op_memory_meta(doc, rng, base):
    m = doc.meta_dict()
    text = m.get("infp_memory", "{}")
    try:
        mem = json.loads(text)
    except (ValueError, RecursionError):
        mem = {}
    kind = rng.choice(["layout", "layout", "layout", "field", "remove", "text", "absent", "clip"])
    if kind == "layout":
        c, gh, gw = rng.choice(MEMORY_LAYOUTS)
        mem.update({"channels": c, "grid_height": gh, "grid_width": gw})
        m["infp_memory"] = dumps(mem)
        return f"memory layout {c} x {gh} x {gw} (the model's is 8 x 4 x 6)"
    if kind == "field":
        field = rng.choice(["channels", "grid_height", "grid_width"])
        value = rng.choice([-1, 0, 1, 2, 192, 2 ** 31, 2 ** 62, -(2 ** 63), 1.5, "8", None, 1e300, RawJSON("NaN"),
                            RawJSON("1e400"), 2 ** 64])
        mem[field] = value
        m["infp_memory"] = dumps(mem)
        return f"memory metadata {field}={dumps(value)}"
    if kind == "clip":
        mem["clip_frames"] = rng.choice([0, -1, 1, 4, 6, 1000, 2 ** 62, None])
        m["infp_memory"] = dumps(mem)
        return f"memory metadata clip_frames={mem['clip_frames']!r}"
    if kind == "remove":
        field = rng.choice(list(mem) or ["channels"])
        mem.pop(field, None)
        m["infp_memory"] = dumps(mem)
        return f"memory metadata without {field!r}"
    if kind == "text":
        m["infp_memory"] = rng.choice(["{", "", "null", "[]", deep("array", 100_000), text + "x"])
        return f"memory metadata text {m['infp_memory'][:40]!r}"
    if "infp_memory" in m:
        m.pop("infp_memory")
        return "memory tensors without infp_memory metadata"
    m["infp_memory"] = dumps({"channels": 8, "grid_height": 4, "grid_width": 6, "clip_frames": 5})
    return "infp_memory metadata without memory tensors"


def _i64(values):
    return np.array(values, dtype=np.int64).tobytes()


def op_memory_tensors(doc, rng, base):
    names = doc.tensor_names()
    if "memory.features" not in names or "memory.video_lengths" not in names:
        return op_memory_meta(doc, rng, base)
    feats = doc.array("memory.features")
    lengths = doc.array("memory.video_lengths")
    rows, d = feats.shape
    kind = rng.choice(["lengths", "lengths", "lengths-float", "empty", "empty0", "features-shape", "features-dtype",
                       "remove", "rows"])
    if kind == "lengths":
        new = rng.choice([[0, rows], [rows, 0], [-8, rows + 8], [2 ** 62, rows - 2 ** 62], [-(2 ** 63), rows],
                          [4, rows - 4], [rows], [rows + 1], [rows - 1] + [1], [1] * rows, [2 ** 63 - 1, 2],
                          list(lengths) + [0], [5, 5, rows - 10] if rows > 10 else [rows]])
        doc.set_tensor("memory.video_lengths", "I64", [len(new)], _i64([v if -(2 ** 63) <= v < 2 ** 63 else 0 for v in new]))
        return f"memory.video_lengths {new} for {rows} feature rows"
    if kind == "lengths-float":
        dtype = rng.choice(["F32", "F64"])
        vals = rng.choice([[float("nan")] * len(lengths), [float("inf"), 8.0], [1e30, -1e30], [8.5, rows - 8.5],
                           [-1.0, rows + 1.0], [9.3e18, 8.0], [-9.3e18, 8.0]])
        arr = np.array(vals, dtype=_NP[dtype])
        doc.set_tensor("memory.video_lengths", dtype, [len(vals)], arr.tobytes())
        return f"memory.video_lengths as {dtype} {vals}"
    if kind in ("empty", "empty0"):
        doc.set_tensor("memory.features", "F32", [0, d], b"")
        doc.set_tensor("memory.video_lengths", "I64", [0] if kind == "empty" else [1], b"" if kind == "empty" else _i64([0]))
        return "empty memory (0 feature rows, " + ("no videos)" if kind == "empty" else "one video of 0 frames)")
    if kind == "features-shape":
        shape = rng.choice([[d, rows], [rows * d], [rows, d, 1], [1, rows, d], [rows * 2, d // 2], [rows // 2, d * 2]])
        doc.info("memory.features")["shape"] = shape
        return f"memory.features shape {shape} (same bytes; was {[rows, d]})"
    if kind == "features-dtype":
        dtype = rng.choice(["F16", "F64", "BF16", "I32"])
        if dtype == "BF16":
            raw = (feats.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
        else:
            raw = feats.astype(_NP[dtype]).tobytes()
        doc.set_tensor("memory.features", dtype, [rows, d], raw)
        return f"memory.features as {dtype}"
    if kind == "remove":
        which = rng.choice(["memory.features", "memory.video_lengths"])
        doc.repack([t for t in doc.tensors() if t[0] != which])
        return f"{which} removed (metadata kept)"
    new_rows = rng.choice([rows - 1, rows + 1, 1, 5])
    raw = np.resize(feats, (new_rows, d)).astype(np.float32).tobytes()
    doc.set_tensor("memory.features", "F32", [new_rows, d], raw)
    return f"memory.features with {new_rows} rows, video lengths {list(lengths)} kept"


def op_nonfinite(doc, rng, base):
    name = _pick_tensor(doc, rng, prefer=["memory.features", "running_var", "running_mean", "conv1.weight", "optim.exp_avg_sq",
                                           "num_batches", "memory.video_lengths", "scale"])
    info = doc.info(name)
    dtype = info["dtype"]
    arr = doc.array(name)
    flat = arr.reshape(-1)
    if flat.size == 0:
        return f"tensor {name!r} is empty: unchanged"
    if dtype in ("I64", "I32"):
        value = rng.choice([-1, np.iinfo(_NP[dtype]).max, np.iinfo(_NP[dtype]).min, 2 ** 31])
        with np.errstate(all="ignore"):
            flat[rng.randrange(flat.size)] = np.array(value).astype(_NP[dtype])
        doc.set_tensor(name, dtype, list(info["shape"]), flat.tobytes())
        return f"tensor {name!r} holds {value}"
    value = rng.choice([np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 1e-45, -0.0, -1.0])
    where = rng.choice(["one", "all", "first", "last"])
    if where == "all":
        flat[:] = value
    else:
        flat[{"one": rng.randrange(flat.size), "first": 0, "last": flat.size - 1}[where]] = value
    raw = flat.tobytes()
    if rng.random() < 0.1 and dtype == "F32":  # a signalling NaN
        raw = struct.pack("<I", 0x7F800001) + raw[4:]
        value = "sNaN"
    doc.set_tensor(name, dtype, list(info["shape"]), raw)
    return f"tensor {name!r}: {where} value(s) set to {value}"


def op_data_flip(doc, rng, base):
    n = len(doc.data)
    k = rng.choice([1, 2, 8, 64, 512])
    kind = rng.choice(["bits", "words", "ff"])
    for _ in range(k):
        p = rng.randrange(n)
        if kind == "bits":
            doc.data[p] ^= 1 << rng.randrange(8)
        elif kind == "words":
            p -= p % 4
            doc.data[p:p + 4] = struct.pack("<I", rng.getrandbits(32))
        else:
            doc.data[p:p + 8] = b"\xff" * len(doc.data[p:p + 8])
    return f"{k} random {kind} edits in the data region"


TRAINING_FIELDS = {"epoch": [-1, 0, 5, 2 ** 31, 2 ** 63, 1.5], "epochs": [0, -1, 10 ** 9], "batch_size": [0, 1, -1, 2 ** 31, 10 ** 9],
                   "seed": ["abc", "-1", "18446744073709551616", 5, None, ""], "dropout_rng": ["abc", "-1", "99999999999999999999", 5, None],
                   "learning_rate": [-1, 0, 1e38], "schedule": ["bogus", 5, None], "warmup": [-1, 2], "final_lr_factor": [-1, 0],
                   "milestones": [[-1], [2 ** 40], "x", [1.5], [None], list(range(1000))], "gamma": [-1, 0],
                   "ema_decay": [1, -1, 2], "bn_batches": [-1, 2 ** 40]}


def op_training(doc, rng, base):
    m = doc.meta_dict()
    text = m.get("infp_training", "{}")
    try:
        tr = json.loads(text)
    except (ValueError, RecursionError):
        tr = {}
    kind = rng.choice(["field", "field", "field", "text", "remove", "absent", "optim"])
    if kind == "optim":
        optim = [n for n in doc.tensor_names() if n.startswith("optim.")]
        if not optim:
            return op_nonfinite(doc, rng, base)
        name = rng.choice(optim[:3] + [rng.choice(optim)])
        sub = rng.choice(["remove", "shape", "nan", "negative", "step"])
        if sub == "remove":
            doc.repack([t for t in doc.tensors() if t[0] != name])
            return f"optimizer tensor {name!r} removed"
        if sub == "shape":
            info = doc.info(name)
            arr = doc.array(name).reshape(-1)
            doc.set_tensor(name, info["dtype"], [arr.size + 1], np.resize(arr, arr.size + 1).tobytes())
            return f"optimizer tensor {name!r} one element longer"
        if sub == "step":
            doc.set_tensor("optim.step", rng.choice(["I64", "F32"]), [],
                           rng.choice([_i64([-1]), _i64([2 ** 62]), np.array([np.nan], np.float32).tobytes()[:8].ljust(8, b"\0")]))
            return "optim.step rewritten (negative, huge or NaN)"
        info = doc.info(name)
        arr = doc.array(name).astype(np.float32).reshape(-1)
        arr[:] = np.nan if sub == "nan" else -1.0
        doc.set_tensor(name, "F32", list(info["shape"]), arr.tobytes())
        return f"optimizer tensor {name!r} all {'NaN' if sub == 'nan' else '-1'}"
    if kind == "text":
        m["infp_training"] = rng.choice(["{", "", "null", "[]", deep("array", 100_000), text.replace("3", "NaN", 1)])
        return f"infp_training text {m['infp_training'][:40]!r}"
    if kind == "absent":
        m.pop("infp_training", None)
        return "training checkpoint without infp_training"
    if kind == "remove":
        field = rng.choice(list(tr) or ["epoch"])
        tr.pop(field, None)
        m["infp_training"] = dumps(tr)
        return f"infp_training without {field!r}"
    field = rng.choice(list(TRAINING_FIELDS))
    value = odd_value(rng) if rng.random() < 0.3 else rng.choice(TRAINING_FIELDS[field])
    tr[field] = value
    m["infp_training"] = dumps(tr)
    return f"infp_training {field}={str(dumps(value))[:40]}"


SEMANTIC_OPS = {"dtype": op_dtype, "names": op_names, "metadata": op_metadata_struct, "config": op_config,
                "calibration": op_calibration, "memory_meta": op_memory_meta, "memory_tensors": op_memory_tensors,
                "nonfinite": op_nonfinite, "data_flip": op_data_flip, "training": op_training}
HEADER_OPS = {"shape": op_shape, "offsets": op_offsets}
TEXT_OPS = {"header_bytes": op_header_bytes, "json_syntax": op_json_syntax}
RAW_OPS = {"truncate": op_truncate, "header_length": op_header_length, "extend": op_extend}
ALL_OPS = {**SEMANTIC_OPS, **HEADER_OPS, **TEXT_OPS, **RAW_OPS}
OP_WEIGHTS = {"truncate": 8, "header_length": 4, "extend": 1, "header_bytes": 6, "json_syntax": 5, "dtype": 6, "shape": 8,
              "offsets": 8, "names": 6, "metadata": 3, "config": 9, "calibration": 5, "memory_meta": 8,
              "memory_tensors": 8, "nonfinite": 7, "data_flip": 5, "training": 0, "stack": 7}


def mutate(base: bytes, op: str, seed: int, base_name: str):
    """(bytes, description) of mutation `op` number `seed` of a base checkpoint: deterministic."""
    rng = random.Random(seed)
    doc = Doc(base)
    if op != "stack":
        return _finish(doc, [ALL_OPS[op](doc, rng, base)])
    descs = []
    semantic = list(SEMANTIC_OPS) + (["training"] * 3 if base_name == "train" else [])

    def apply(name):
        # An earlier mutation may leave the checkpoint in a shape a later one does not handle
        # (a metadata value that is no longer a string, a dtype NumPy lacks): skip that one.
        try:
            descs.append(ALL_OPS[name](doc, rng, base))
        except Exception as e:  # noqa: BLE001
            descs.append(f"({name} skipped: {type(e).__name__})")
    for _ in range(rng.choice([2, 2, 3, 4])):
        apply(rng.choice(semantic))
    if rng.random() < 0.4:
        apply(rng.choice(list(HEADER_OPS)))
    if rng.random() < 0.3:
        apply(rng.choice(list(RAW_OPS)))
    return _finish(doc, descs)


def _finish(doc, descs):
    return doc.pack(), " + ".join(descs)


def fuzz_cases(n: int, master_seed: int):
    rng = random.Random(master_seed)
    ops = list(OP_WEIGHTS)
    cases = []
    for i in range(n):
        base = rng.choices(["full", "weights", "train"], [70, 10, 20])[0]
        weights = [OP_WEIGHTS[o] if o != "training" else (12 if base == "train" else 0) for o in ops]
        op = rng.choices(ops, weights)[0]
        seed = rng.getrandbits(48)
        cases.append({"id": i, "kind": "mutation", "base": base, "op": op, "seed": seed,
                      "desc": f"{op} #{seed} of base {base}"})
    return cases


# ---- special files and targeted cases --------------------------------------------------------------

SPECIAL = {
    # name: (what it is, expectation)
    "fifo": "a FIFO (named pipe) with no writer",
    "directory": "a folder",
    "dev_zero": "/dev/zero",
    "dev_null": "/dev/null",
    "dev_urandom": "/dev/urandom",
    "proc_status": "/proc/self/status (size 0 in stat, content when read)",
    "sparse_64g": "a 64 GiB sparse file of zeros",
    "sparse_64g_checkpoint": "a valid checkpoint followed by zeros up to 64 GiB (sparse)",
    "sparse_64g_claims_header": "a 64 GiB sparse file whose header length field claims 60 GB",
    "empty": "an empty file",
    "one_byte": "a 1-byte file",
    "eight_zero_bytes": "8 zero bytes",
    "symlink_loop": "a symlink loop (a -> b -> a)",
    "symlink_dev_zero": "a symlink to /dev/zero",
    "missing": "a path that does not exist",
    "file_as_folder": "a path through a regular file (file/x)",
    "long_path": "a path of 5000 characters",
    "socket": "a Unix socket",
    "empty_path": "the empty path",
}


def _fixed_doc(name, bases):
    """Targeted checkpoints: (bytes, description, expectation)."""
    doc = Doc(bases["full"])
    m = doc.meta()
    names = doc.tensor_names()

    def layout(c, gh, gw):
        mem = json.loads(m["infp_memory"])
        mem.update({"channels": c, "grid_height": gh, "grid_width": gw})
        m["infp_memory"] = dumps(mem)

    reject = "reject"
    if name.startswith("memory_layout_"):
        c, gh, gw = (int(v) for v in name[len("memory_layout_"):].replace("m", "-").split("x"))
        layout(c, gh, gw)
        return doc.pack(), f"memory layout {c} x {gh} x {gw} (multiplies to 192; the model's is 8 x 4 x 6)", reject
    if name == "memory_empty":
        doc.set_tensor("memory.features", "F32", [0, 192], b"")
        doc.set_tensor("memory.video_lengths", "I64", [0], b"")
        return doc.pack(), "empty memory: features (0, 192), no video lengths", reject
    if name == "memory_empty_video":
        doc.set_tensor("memory.features", "F32", [0, 192], b"")
        doc.set_tensor("memory.video_lengths", "I64", [1], _i64([0]))
        return doc.pack(), "empty memory: features (0, 192), one video of 0 frames", reject
    if name in ("memory_lengths_nan", "memory_lengths_inf", "memory_lengths_1e30"):
        v = {"memory_lengths_nan": np.nan, "memory_lengths_inf": np.inf, "memory_lengths_1e30": 1e30}[name]
        doc.set_tensor("memory.video_lengths", "F32", [2], np.array([v, v], np.float32).tobytes())
        return doc.pack(), f"memory.video_lengths F32 [{v}, {v}]", reject
    if name == "memory_lengths_negative":
        doc.set_tensor("memory.video_lengths", "I64", [2], _i64([-8, 25]))
        return doc.pack(), "memory.video_lengths [-8, 25] (sum 17 = rows)", reject
    if name == "memory_lengths_overflow":
        doc.set_tensor("memory.video_lengths", "I64", [3], _i64([2 ** 62, 2 ** 62, 17]))
        return doc.pack(), "memory.video_lengths [2^62, 2^62, 17]: the sum overflows", reject
    if name in ("memory_features_nan", "memory_features_inf"):
        a = doc.array("memory.features")
        a[3, 7] = np.nan if name.endswith("nan") else np.inf
        doc.set_tensor("memory.features", "F32", list(a.shape), a.tobytes())
        return doc.pack(), f"memory.features holds {a[3, 7]}", reject
    if name in ("weight_nan", "running_var_inf", "weight_all_inf"):
        target = names[0] if name != "running_var_inf" else next(n for n in names if "running_var" in n)
        a = doc.array(target)
        if name == "weight_all_inf":
            a[...] = np.inf
        else:
            a.reshape(-1)[1] = np.nan if name == "weight_nan" else np.inf
        doc.set_tensor(target, "F32", list(a.shape), a.tobytes())
        return doc.pack(), f"non-finite values in {target!r}", reject
    if name == "config_huge_model":
        cfg = json.loads(m["infp_config"])
        cfg.update({"height": 4096, "width": 4096, "width_div": 1, "blocks": [64] * 6})
        m["infp_config"] = dumps(cfg)
        return doc.pack(), "infp_config names a huge model (4096 x 4096, width_div 1, blocks 64 x 6)", "error"
    if name == "config_huge_frames":
        cfg = json.loads(m["infp_config"])
        cfg.update({"height": 4096, "width": 4096})
        m["infp_config"] = dumps(cfg)
        return doc.pack(), "infp_config 4096 x 4096 frames with the tiny network and its 8 x 4 x 6 memory", reject
    if name == "config_invalid_json":
        m["infp_config"] = "{"
        return doc.pack(), "infp_config is '{'", "error"
    if name == "config_loss_alpha_nan":
        m["infp_config"] = m["infp_config"].replace('"loss_alpha":0.5', '"loss_alpha":NaN')
        return doc.pack(), "infp_config loss_alpha NaN", "error"
    if name == "config_deep":
        m["infp_config"] = deep("array", 1_000_000)
        return doc.pack(), "infp_config nested 1,000,000 deep", "error"
    if name == "header_deep":
        doc.text_override = deep("array", 1_000_000).encode()
        return doc.pack(), "header JSON nested 1,000,000 deep", "error"
    if name == "header_length_max":
        doc.length_override = 2 ** 64 - 1
        return doc.pack(), "header length field 2^64 - 1", "error"
    if name in ("overlap_alias", "overlap_partial"):
        sizes = {}
        for n in names:
            b, e = doc.info(n)["data_offsets"]
            sizes.setdefault((doc.info(n)["dtype"], e - b), []).append(n)
        a, b_ = next(v for (dt, size), v in sizes.items() if len(v) >= 2 and dt == "F32" and size >= 64)[:2]
        ab, ae = doc.info(a)["data_offsets"]
        if name == "overlap_alias":
            doc.info(b_)["data_offsets"] = [ab, ae]
            return doc.pack(), f"{b_!r} reads the same bytes as {a!r}", reject
        half = (ae - ab) // 2 // 4 * 4
        doc.info(b_)["data_offsets"] = [ab + half, ae + half]
        return doc.pack(), f"{b_!r} overlaps the second half of {a!r}", reject
    if name in ("duplicate_name_same", "duplicate_name_other"):
        victim = names[5]
        other = names[0] if name.endswith("same") else next(n for n in names if doc.info(n)["shape"] == doc.info(victim)["shape"] and n != victim)
        entry = dict(doc.info(victim if name.endswith("same") else other))
        doc.pairs.append([victim, entry])
        return doc.pack(), f"tensor {victim!r} listed twice" + ("" if name.endswith("same") else f" (second entry reads {other!r}'s bytes)"), reject
    raise KeyError(name)


FIXED = ["memory_layout_m1xm1x192", "memory_layout_1x1x192", "memory_layout_192x1x1", "memory_layout_8x6x4",
         "memory_layout_4x8x6", "memory_layout_2x4x24", "memory_layout_m8xm4x6", "memory_empty", "memory_empty_video",
         "memory_lengths_nan", "memory_lengths_inf", "memory_lengths_1e30", "memory_lengths_negative",
         "memory_lengths_overflow", "memory_features_nan", "memory_features_inf", "weight_nan", "running_var_inf",
         "weight_all_inf", "config_huge_model", "config_huge_frames", "config_invalid_json", "config_loss_alpha_nan",
         "config_deep", "header_deep", "header_length_max", "overlap_alias", "overlap_partial", "duplicate_name_same",
         "duplicate_name_other"]

# Special files must fail (or load) within this many seconds: nothing reads 64 GiB or waits
# for a writer.
FAST_SECONDS = 2.0


def targeted_cases():
    cases = []
    for i, name in enumerate(FIXED):
        cases.append({"id": i, "kind": "fixed", "name": name, "desc": name, "timeout": 60 if "huge" in name else 20})
    for j, name in enumerate(SPECIAL):
        cases.append({"id": 1000 + j, "kind": "special", "name": name, "desc": f"special file: {SPECIAL[name]}",
                      "max_seconds": FAST_SECONDS, "timeout": 5})
    return cases


# ---- the child's side ------------------------------------------------------------------------------

class Executor:
    """Loads each case's file in this (child) process and, when it loads, uses the model."""

    def __init__(self, setup):
        import infp
        self.infp = infp
        self.paths = setup["bases"]
        self.bases = {k: Path(p).read_bytes() for k, p in self.paths.items()}
        self.scratch = Path(setup["scratch"]) / f"child-{os.getpid()}"
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.videos = {}

    def _video(self, n, seed, h, w):
        key = (n, seed, h, w)
        if key not in self.videos:
            self.videos[key] = video(n, seed, h, w)
        return self.videos[key]

    def special_path(self, name) -> str:
        d = self.scratch / f"special-{name}"
        if d.exists():
            import shutil
            shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        p = d / "x.safetensors"
        if name == "fifo":
            os.mkfifo(p)
        elif name == "directory":
            p.mkdir()
        elif name in ("dev_zero", "dev_null", "dev_urandom"):
            return {"dev_zero": "/dev/zero", "dev_null": "/dev/null", "dev_urandom": "/dev/urandom"}[name]
        elif name == "proc_status":
            return "/proc/self/status"
        elif name == "sparse_64g":
            with open(p, "wb") as f:
                f.truncate(64 * GiB)
        elif name == "sparse_64g_checkpoint":
            p.write_bytes(self.bases["full"])
            os.truncate(p, 64 * GiB)
        elif name == "sparse_64g_claims_header":
            with open(p, "wb") as f:
                f.write(struct.pack("<Q", 60_000_000_000) + b'{"')
                f.truncate(64 * GiB)
        elif name == "empty":
            p.write_bytes(b"")
        elif name == "one_byte":
            p.write_bytes(b"{")
        elif name == "eight_zero_bytes":
            p.write_bytes(b"\0" * 8)
        elif name == "symlink_loop":
            os.symlink(d / "b", p)
            os.symlink(p, d / "b")
        elif name == "symlink_dev_zero":
            os.symlink("/dev/zero", p)
        elif name == "missing":
            pass
        elif name == "file_as_folder":
            (d / "file").write_bytes(self.bases["full"])
            p = d / "file" / "x.safetensors"
        elif name == "long_path":
            p = d / ("a" * 5000)
        elif name == "socket":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(str(p))
            self._socket = s  # keep it bound during the case
        elif name == "empty_path":
            return ""
        return str(p)

    def run(self, case):
        infp = self.infp
        kind = case["kind"]
        expect = None
        try:
            if kind == "mutation":
                blob, desc = mutate(self.bases[case["base"]], case["op"], case["seed"], case["base"])
            elif kind == "fixed":
                blob, desc, expect = _fixed_doc(case["name"], self.bases)
            if kind in ("mutation", "fixed"):
                path = self.scratch / "case.safetensors"
                path.write_bytes(blob)
                path = str(path)
            else:
                path, desc = self.special_path(case["name"]), SPECIAL[case["name"]]
        except Exception as e:  # noqa: BLE001  (a bug of this test, not of libinfp)
            import traceback
            return {"outcome": "harness error", "problems": [f"the test could not build the case: {e!r}"],
                    "detail": traceback.format_exc()[-600:]}
        try:
            return self._load_and_use(case, path, desc, expect)
        finally:
            if kind == "special":  # no 64 GiB sparse files or sockets left behind
                import shutil
                shutil.rmtree(self.scratch / f"special-{case['name']}", ignore_errors=True)
                getattr(self, "_socket", None) and self._socket.close()

    def _load_and_use(self, case, path, desc, expect):
        infp = self.infp
        t0 = time.perf_counter()
        try:
            model = infp.Model.load(path, threads=1)
        except Exception as e:  # noqa: BLE001
            elapsed = time.perf_counter() - t0
            outcome, problems = fs.classify(e)
            if outcome.startswith("python:") and not isinstance(e, ValueError):
                problems.append(f"Model.load raised {type(e).__name__}: {str(e)[:200]}")
            if case.get("max_seconds") and elapsed > case["max_seconds"]:
                problems.append(f"took {elapsed:.2f} s to fail (limit {case['max_seconds']} s)")
            return {"outcome": "load " + outcome, "problems": problems, "detail": str(e)[:300], "desc": desc}
        elapsed = time.perf_counter() - t0
        problems = []
        if case.get("max_seconds") and elapsed > case["max_seconds"]:
            problems.append(f"took {elapsed:.2f} s to load (limit {case['max_seconds']} s)")
        if expect == "reject":
            problems.append("loaded, but it must be rejected at load")
        try:
            outcome = self.exercise(model, case, path, problems)
        finally:
            model.close()
        return {"outcome": outcome, "problems": problems, "desc": desc}

    def exercise(self, model, case, path, problems) -> str:
        """Uses a loaded model the way an application would; returns the outcome."""
        infp = self.infp
        steps = []

        def step(name, fn):
            try:
                fn()
                steps.append(name)
                return True
            except Exception as e:  # noqa: BLE001
                outcome, p = fs.classify(e)
                if outcome.startswith("python:") and not isinstance(e, ValueError):
                    p.append(f"{name} raised {type(e).__name__}: {str(e)[:200]}")
                problems.extend(f"{name}: {x}" for x in p)
                steps.append(f"{name} {outcome}")
                return False

        cfg = model.config
        h, w = cfg["height"], cfg["width"]
        if h * w > 128 * 128:
            return f"loaded {h}x{w} (too large to exercise)"
        v = self._video(7, 9, h, w)
        clips = (v[None, :4].transpose(0, 1, 4, 2, 3).astype(np.float32) / 127.5 - 1)
        step("predict", lambda: model.predict(np.concatenate([clips, clips])))
        method = "memory" if model.memory_frames > 0 else "psnr"
        step("anomaly_scores", lambda: model.anomaly_scores(v, method=method))
        step("score", lambda: model.score(v))

        def stream():
            with model.stream(threads=1) as s:
                for f in v:
                    s.push(f)
                s.push(v[0, ::2, ::3])  # another size: resized inside
        step("stream", stream)
        step("calibration", lambda: model.calibration)
        out = self.scratch / "resaved.safetensors"

        def resave():
            model.save(out)
            infp.Model.load(out, threads=1).close()
        step("save+load", resave)
        if case.get("base") == "train":
            step("resume", lambda: model.fit([self._video(7, 1, h, w), self._video(7, 2, h, w)], epochs=2, batch_size=2,
                                             progress=False, resume=path, remember=False))
        failed = [s for s in steps if " " in s]
        return "loaded, used" + (" (" + "; ".join(failed) + ")" if failed else " ok")


# ---- the parent's side -------------------------------------------------------------------------------

def materializer(bases):
    def write(case, directory: Path):
        name = f"case-{case['id']}.safetensors"
        if case["kind"] == "mutation":
            blob, desc = mutate(bases[case["base"]], case["op"], case["seed"], case["base"])
        elif case["kind"] == "fixed":
            blob, desc, _ = _fixed_doc(case["name"], bases)
        else:
            return f"(special file: {SPECIAL[case['name']]})"
        (directory / name).write_bytes(blob)
        case["desc"] = desc
        return str(directory / name)
    return write


@pytest.fixture(scope="module")
def bases(tmp_path_factory):
    fs.wait_for_library()
    folder = tmp_path_factory.mktemp("fuzz-bases")
    paths = build_bases(folder)
    return {"paths": paths, "bytes": {k: Path(p).read_bytes() for k, p in paths.items()}, "folder": folder}


def _out_dir(tmp_path, name):
    root = os.environ.get("INFP_FUZZ_OUT")
    return Path(root) / name if root else tmp_path / name


def _run(cases, bases, tmp_path, label, timeout):
    setup = {"bases": bases["paths"], "scratch": str(tmp_path / "scratch")}
    report = fs.run_cases(cases, EXECUTOR, setup, tmp_path / "run", label=label,
                          workers=fs.env_int("INFP_FUZZ_WORKERS", 2), timeout=timeout)
    if report.failures:
        out = fs.write_failures(report, _out_dir(tmp_path, "failures"), materializer(bases["bytes"]),
                                executor=EXECUTOR, setup=setup)
        report.failure_dir = out
    return report


@pytest.fixture(scope="module")
def targeted(bases, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz-targeted")
    report = _run(targeted_cases(), bases, tmp, "targeted checkpoints", timeout=20)
    print("\n" + report.summary())
    return report


def _assert_case(report, name):
    case_id = next(c["id"] for c in targeted_cases() if c["name"] == name)
    result = report.outcomes.get(case_id)
    assert result is not None, f"{name}: no result"
    fails = [f for f in report.failures if f["id"] == case_id]
    if fails:
        f = fails[0]
        pytest.fail(f"{f['desc']}: {f['how']}" + (f"\n  {f['detail']}" if f.get("detail") else "") +
                    (f"\n  case file: {f.get('artifact')}" if f.get("artifact") else ""), pytrace=False)


@pytest.mark.parametrize("name", FIXED)
def test_targeted_checkpoint(targeted, name):
    """Each known bad checkpoint: rejected at load where it must be (InfpError, not internal,
    with a message), never a crash or hang."""
    _assert_case(targeted, name)


@pytest.mark.parametrize("name", list(SPECIAL))
def test_special_file_fails_fast(targeted, name):
    """FIFO, devices, 64 GiB sparse files, loops...: an error (or a load) within 2 s, never a
    hang, never reading the whole file."""
    _assert_case(targeted, name)


def test_fuzz_checkpoints(bases, tmp_path):
    n = fs.env_int("INFP_FUZZ_CASES", 3000)
    seed = fs.env_int("INFP_FUZZ_SEED", 11)
    cases = fuzz_cases(n, seed)
    report = _run(cases, bases, tmp_path, f"checkpoint fuzz (seed {seed})", timeout=fs.env_float("INFP_FUZZ_TIMEOUT", 10))
    print("\n" + report.summary(limit=200))
    ops = Counter(c["op"] for c in cases)
    print("  mutations: " + ", ".join(f"{k} {v}" for k, v in ops.most_common()))
    assert len(report.outcomes) == n
    if report.failures:
        deaths = report.deaths()
        pytest.fail(f"{len(report.failures)} of {n} mutated checkpoints failed ({len(deaths)} deaths by signal or hangs); "
                    f"case files in {report.failure_dir}\n" + report.summary(limit=80), pytrace=False)


def test_load_path_with_nul_is_refused(bases):
    """A path with an embedded NUL must not be cut at the NUL (which would load another file)."""
    import infp
    path = bases["paths"]["full"]
    for bad in (path + "\0.other", path + "\0"):
        with pytest.raises((ValueError, infp.InfpError)):
            infp.Model.load(bad).close()
