"""Data for INFP: synthetic production-line footage, the IPAD layout, model inputs, clips and a
raw video format for line software.

    >>> from infp import data
    >>> ds = data.synthetic_line("conveyor", seed=0)        # Dataset: train, test, labels, events
    >>> x = data.to_model_input(ds.test[0])                 # (n, 3, H, W) float32 in [-1, 1]
    >>> clips, targets = data.clips(x)                      # (n-4, 4, 3, H, W), (n-4, 3, H, W)
    >>> videos, labels = data.load_ipad("/data/IPAD", "S01", "testing")
    >>> video = data.load_video("line3.mp4", 112, 144)      # files through PyAV (infp/video.py)
    >>> labels = data.load_labels("line3.csv", len(video))  # .npy, IPAD .mat or start,end CSV

Videos are uint8 RGB arrays of shape (n, H, W, 3) everywhere in this module (the layout of the
C API's ``infp_video``); per-frame labels are int64 0/1 arrays (1 = anomalous). Only NumPy is
needed; Pillow (``load_ipad``, ``resize_video``) and SciPy (IPAD ``.mat`` labels) are imported
when used.
"""

from __future__ import annotations

import colorsys
import functools
import math
import os
import re
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ._files import write_atomically

__all__ = [
    "SCENES", "ANOMALIES", "Event", "Dataset", "synthetic_line", "synthetic_video",
    "load_ipad", "resize_video", "to_model_input", "to_uint8", "clips", "training_clips", "take_clips",
    "write_raw_video", "read_raw_video", "RAW_MAGIC", "RAW_HEADER_SIZE",
    "load_video", "iter_video", "load_videos", "video_sources", "load_labels",
]

#: Scenes of :func:`synthetic_line`.
SCENES = ("conveyor", "turntable", "press", "pick_and_place", "bottling", "cutter")
#: Anomaly kinds of :func:`synthetic_line`.
ANOMALIES = ("speed", "colour", "shape", "angle", "missing", "position", "foreign", "stopped")
# Kinds that change individual products: their labelled frames are those in which the products show.
_PRODUCT_KINDS = ("colour", "shape", "angle", "missing", "position")
_LINE_KINDS = ("speed", "stopped")
# A changed product labels a frame when at least this fraction of its area is inside the frame.
_VISIBLE = 0.05
_ALIASES = {"color": "colour", "stop": "stopped", "stopped_line": "stopped", "foreign_object": "foreign",
            "rotation": "angle", "missing_product": "missing", "speed_change": "speed"}


class Event(NamedTuple):
    """An anomalous event of a synthetic test video: frames ``start <= t < end`` are labelled 1."""
    start: int
    end: int
    kind: str


@dataclass(repr=False)
class Dataset:
    """Videos of one synthetic production line (:func:`synthetic_line`).

    Attributes:
        train: normal videos, each uint8 (n, H, W, 3).
        test: test videos, each uint8 (n, H, W, 3), normal stretches and anomalous events.
        labels: per test video, int64 (n,) per-frame labels, 1 = anomalous.
        events: per test video, the list of :class:`Event` (start, end, kind), sorted by start;
            the labels are exactly the union of the events' frames.
        scene: the scene's name.
        info: the generation settings and scene facts (period in frames, seeds, requested events).
    """
    train: List[np.ndarray]
    test: List[np.ndarray]
    labels: List[np.ndarray]
    events: List[List[Event]]
    scene: str = ""
    info: Dict = field(default_factory=dict)

    def __repr__(self) -> str:
        def shapes(vs):
            if not vs:
                return "[]"
            n = sorted({v.shape[0] for v in vs})
            return f"{len(vs)}×({'/'.join(map(str, n))}, {vs[0].shape[1]}, {vs[0].shape[2]}, 3)"
        frac = (sum(int(l.sum()) for l in self.labels) / max(1, sum(l.size for l in self.labels)))
        kinds: Dict[str, int] = {}
        for evs in self.events:
            for e in evs:
                kinds[e.kind] = kinds.get(e.kind, 0) + 1
        return (f"Dataset(scene={self.scene!r}, train={shapes(self.train)}, test={shapes(self.test)}, "
                f"anomalous frames {100 * frac:.1f}%, events={kinds})")


# =============================================================================================
# Synthetic production lines
# =============================================================================================

# Sprite kinds (analytic shapes, drawn with antialiased edges from signed distances).
_BOX, _DISC, _TRI, _CAPSULE, _BOTTLE, _BLOB, _NOTCHED = range(7)
# Markings on a product (so that rotations and motion of symmetric shapes are visible).
_M_NONE, _M_BAND, _M_DOT, _M_RING, _M_CENTRE = range(5)

_INT_FIELDS = ("f", "kind", "mark", "layer", "tag", "seq")
_FLOAT_FIELDS = ("x", "y", "angle", "a", "b", "r", "edge", "p1", "p2", "alpha", "opacity")
_DEFAULTS = dict(angle=0.0, r=0.0, edge=0.25, mark=_M_NONE, p1=0.0, p2=0.0, alpha=1.0, opacity=1.0,
                 layer=1, tag=-1, seq=0, ghost=False, c2=(0.0, 0.0, 0.0), f=0)

_PALETTE = np.array([(205, 40, 40), (40, 165, 60), (40, 80, 205), (235, 210, 40), (190, 50, 175),
                     (40, 190, 205), (238, 238, 238), (28, 28, 30), (245, 130, 20), (120, 70, 30)], float)
_FOREIGN_COLOURS = np.array([(30, 30, 34), (205, 35, 35), (240, 215, 40), (35, 75, 210), (240, 240, 240),
                             (30, 160, 60)], float)


def _sprites(n: int, **kw) -> Dict[str, np.ndarray]:
    """Struct of arrays of n sprite instances; scalars broadcast."""
    out = {}
    for name in _INT_FIELDS + _FLOAT_FIELDS + ("ghost", "c1", "c2"):
        value = kw.pop(name, _DEFAULTS.get(name))
        if value is None:
            raise TypeError(f"sprite field {name!r} is required")
        if name in ("c1", "c2"):
            out[name] = np.array(np.broadcast_to(np.asarray(value, np.float64), (n, 3)))
        elif name == "ghost":
            out[name] = np.array(np.broadcast_to(np.asarray(value, bool), (n,)))
        else:
            dt = np.int64 if name in _INT_FIELDS else np.float64
            out[name] = np.array(np.broadcast_to(np.asarray(value, dt), (n,)))
    for name, value in kw.items():  # extra per-instance data (product index, path parameter)
        out[name] = np.array(np.broadcast_to(np.asarray(value), (n,)))
    return out


def _concat(groups: Sequence[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    keys = set(_INT_FIELDS + _FLOAT_FIELDS + ("ghost", "c1", "c2"))
    return {k: np.concatenate([g[k] for g in groups]) for k in keys}


def _take(sp: Dict[str, np.ndarray], idx) -> Dict[str, np.ndarray]:
    return {k: v[idx] for k, v in sp.items()}


def _extents(sp) -> Tuple[np.ndarray, np.ndarray]:
    """Half extents (x, y) of the axis-aligned bounding boxes of the sprites, in pixels."""
    a, b, kind = sp["a"], sp["b"], sp["kind"]
    c, s = np.abs(np.cos(sp["angle"])), np.abs(np.sin(sp["angle"]))
    ex, ey = a * c + b * s, a * s + b * c
    round_ = np.isin(kind, (_DISC,))
    ex = np.where(round_, a, ex)
    ey = np.where(round_, a, ey)
    tri = kind == _TRI
    ex = np.where(tri, 1.16 * a, ex)
    ey = np.where(tri, 1.16 * a, ey)
    blob = kind == _BLOB
    ex = np.where(blob, 1.35 * a, ex)
    ey = np.where(blob, 1.35 * a, ey)
    cap = kind == _CAPSULE
    ex = np.where(cap, a * c + b, ex)
    ey = np.where(cap, a * s + b, ey)
    return ex, ey


def _sd_box(u, v, a, b, r):
    qx = np.abs(u) - (a - r)
    qy = np.abs(v) - (b - r)
    return np.hypot(np.maximum(qx, 0), np.maximum(qy, 0)) + np.minimum(np.maximum(qx, qy), 0) - r


def _sd_triangle(u, v, a):
    """Equilateral triangle, apex up, circumradius ≈ 1.155 a (a = half the side)."""
    k = np.float32(math.sqrt(3.0))
    px = np.abs(u) - a
    py = -v + a / k
    flip = px + k * py > 0
    qx = np.where(flip, (px - k * py) / 2, px)
    qy = np.where(flip, (-k * px - py) / 2, py)
    qx = qx - np.clip(qx, -2 * a, 0)
    return -np.hypot(qx, qy) * np.sign(qy)


def _clip01(x):
    return np.clip(x, 0.0, 1.0)


def _patches(kind: int, u, v, p, ew: float):
    """Coverage (K, Ph, Pw) and colour (K, Ph, Pw, 3) of K sprites of one kind at local
    coordinates u, v (pixels, the sprite's frame). ``p`` holds per-sprite parameters (K, 1, 1)."""
    a, b, r = p["a"], p["b"], p["r"]
    if kind == _BOX:
        sdf = _sd_box(u, v, a, b, r)
    elif kind == _DISC:
        sdf = np.hypot(u, v) - a
    elif kind == _TRI:
        sdf = _sd_triangle(u, v, a)
    elif kind == _CAPSULE:
        sdf = np.hypot(np.maximum(np.abs(u) - a, 0), v) - b
    elif kind == _BOTTLE:
        body = _sd_box(u, v - 0.3 * b, a, 0.7 * b, 0.35 * a)
        neck = _sd_box(u, v + 0.68 * b, 0.42 * a, 0.32 * b, 0.12 * a)
        sdf = np.minimum(body, neck)
    elif kind == _BLOB:
        ang = np.arctan2(v, u)
        rad = a * (1 + 0.2 * np.sin(3 * ang + p["p2"]) + 0.08 * np.sin(5 * ang + 2 * p["p2"]))
        sdf = 0.85 * (np.hypot(u, v) - rad)
    elif kind == _NOTCHED:  # a bite out of the leading (right) end
        sdf = np.maximum(_sd_box(u, v, a, b, r), -(np.hypot(u - 0.8 * a, v + 0.9 * b) - 0.75 * b))
    else:  # pragma: no cover
        raise ValueError(kind)
    alpha = _clip01(0.5 - sdf)
    half = b if kind not in (_DISC, _TRI, _BLOB) else a
    shade = 1 + 0.12 * np.clip(-v / np.maximum(half, 1), -1, 1)            # lit from above
    shade = shade * (1 - p["edge"] * _clip01(1 + sdf / ew))                # darker rim
    mark = p["mark"]
    m = np.minimum(a, b)
    for code in np.unique(mark):
        if code == _M_NONE:
            continue
        if code == _M_BAND:
            sd, dark = np.abs(u - 0.35 * a) - 0.18 * a, 0.35
        elif code == _M_DOT:
            sd, dark = np.hypot(u - 0.5 * a, v) - 0.28 * m, 0.45
        elif code == _M_RING:
            sd, dark = np.abs(np.hypot(u, v) - 0.5 * m) - 0.13 * m, 0.5 * p["p1"]
        else:
            sd, dark = np.hypot(u, v) - 0.35 * m, 0.4
        shade = shade * (1 - dark * (mark == code) * _clip01(0.5 - sd))
    col = p["c1"] * shade[..., None]
    if kind == _BOTTLE:
        highlight = _clip01(0.5 - (np.abs(u + 0.5 * a) - 0.13 * a)) * (v > -0.4 * b)
        glass = col * (1 + 0.35 * highlight)[..., None]
        level = b - p["p1"] * 1.3 * b
        liquid = _clip01(v - level + 0.5) * (p["p1"] > 0) * (v > -0.4 * b)
        cap = _clip01(0.5 - (v + 0.84 * b)) * 1.0
        col = glass + liquid[..., None] * (p["c2"] * shade[..., None] - glass)
        col = col + cap[..., None] * (np.float32(52.0) * shade[..., None] - col)
        solid = np.maximum(liquid, cap)
        alpha = alpha * (p["opacity"] + (1 - p["opacity"]) * solid)
    else:
        alpha = alpha * p["opacity"]
    return alpha.astype(np.float32), col.astype(np.float32)


def _hsv(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _smooth(t):
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _hash01(seed: int, k, salt: int) -> np.ndarray:
    """Uniform [0, 1) numbers keyed by (seed, k, salt): per-product randomness that does not
    depend on which products a render happens to touch (splitmix64)."""
    x = np.asarray(k, np.int64).astype(np.uint64)
    key = np.uint64(((seed * 0x9E3779B97F4A7C15) ^ (salt * 0xD1B54A32D192ED03)) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        x = x * np.uint64(0x9E3779B97F4A7C15) + key
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


class _Canvas:
    """Static image painter for scene backgrounds (antialiased signed-distance shapes)."""

    def __init__(self, h: int, w: int):
        self.h, self.w = h, w
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        self.yy, self.xx = yy + 0.5, xx + 0.5
        self.img = np.zeros((h, w, 3), np.float32)
        self.alpha = np.zeros((h, w), np.float32)  # used by foreground overlays

    def paint(self, sdf, colour, alpha=1.0):
        a = (_clip01(0.5 - sdf) * alpha).astype(np.float32)
        self.img += a[..., None] * (np.asarray(colour, np.float32) - self.img)
        self.alpha += a * (1 - self.alpha)
        return a

    def box(self, x0, y0, x1, y1, colour, r=0.0, alpha=1.0):
        cx, cy, hx, hy = (x0 + x1) / 2, (y0 + y1) / 2, abs(x1 - x0) / 2, abs(y1 - y0) / 2
        return self.paint(_sd_box(self.xx - cx, self.yy - cy, hx, hy, min(r, hx, hy)), colour, alpha)

    def disc(self, cx, cy, rad, colour, alpha=1.0):
        return self.paint(np.hypot(self.xx - cx, self.yy - cy) - rad, colour, alpha)

    def ring(self, cx, cy, rad, width, colour, alpha=1.0):
        return self.paint(np.abs(np.hypot(self.xx - cx, self.yy - cy) - rad) - width / 2, colour, alpha)

    def texture(self, mask, amount, noise):
        """Multiplies the image by (1 + amount·noise) where mask (0..1) is set."""
        self.img *= (1 + amount * noise * mask)[..., None]

    def hazard(self, x0, y0, x1, y1, period):
        """Yellow/black diagonal hazard stripes in a rectangle."""
        stripes = ((self.xx + self.yy) // max(period, 2)) % 2
        m = self.box(x0, y0, x1, y1, (225, 190, 30))
        self.img -= (m * stripes)[..., None] * (self.img - np.float32(30))


def _value_noise(rng, h, w, cell):
    """Smooth noise, unit variance, with features about ``cell`` pixels across."""
    cell = max(cell, 1.0)
    gh, gw = int(h / cell) + 3, int(w / cell) + 3
    g = rng.standard_normal((gh, gw))
    ys, xs = (np.arange(h) + 0.5) / cell, (np.arange(w) + 0.5) / cell
    y0, x0 = ys.astype(int), xs.astype(int)
    ty, tx = _smooth(ys - y0)[:, None], _smooth(xs - x0)[None, :]
    rows = g[y0] * (1 - ty) + g[y0 + 1] * ty
    out = rows[:, x0] * (1 - tx) + rows[:, x0 + 1] * tx
    out -= out.mean()
    return (out / max(out.std(), 1e-6)).astype(np.float32)


class _Scene:
    """A production line: static background, products on a periodic trajectory and machinery.

    Time is the line's own clock τ (frames at normal speed): product k is at trajectory
    parameter s = τ − k·period, so products are equidistant and the motion periodic; a stopped
    line freezes τ, a fast line advances it faster.
    """
    name = ""
    period = 16.0
    shift = 0.1           # position anomaly: offset along the normal, fraction of H
    shift_signs = (-1, 1)
    angle_range = (25.0, 50.0)
    jitter_from = -np.inf  # jitter only where s >= this
    anomaly_from: Dict[str, float] = {}

    def __init__(self, h: int, w: int, rng: np.random.Generator):
        self.H, self.W = h, w
        self.S = min(h, w)
        self.u = self.S / 112.0
        self.ew = max(0.8, 1.2 * self.u)
        self.rng = rng
        self.fg: Optional[Tuple[np.ndarray, np.ndarray, Tuple[slice, slice]]] = None
        self.setup()

    # -- to define ----------------------------------------------------------------------------
    def setup(self):
        raise NotImplementedError

    def path(self, s) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, y, angle) of products at trajectory parameter s."""
        raise NotImplementedError

    def normal(self, s) -> Tuple[np.ndarray, np.ndarray]:
        """Unit normal to the trajectory at s (direction of position anomalies and jitter)."""
        return np.zeros_like(s), np.ones_like(s)

    def product_extra(self, s) -> Dict[str, np.ndarray]:
        """Per-instance appearance that changes along the trajectory (fill, imprint, fade)."""
        return {}

    def machinery(self, tau) -> List[Dict[str, np.ndarray]]:
        return []

    def foreign_path(self, s):
        x, y, ang = self.path(s)
        return x, y, ang

    @property
    def foreign_range(self):
        return self.s_min, self.s_max

    # -- shared ---------------------------------------------------------------------------
    def products(self, s, **extra) -> Dict[str, np.ndarray]:
        x, y, ang = self.path(s)
        kw = dict(self.product)
        kw.update(self.product_extra(s))
        kw.update(extra)
        return _sprites(len(s), x=x, y=y, angle=ang, **kw)

    def _finish_background(self, cv: _Canvas, rng):
        """Vignetting and fixed-pattern grain, then freeze."""
        r2 = ((cv.xx / self.W - 0.5) ** 2 + (cv.yy / self.H - 0.5) ** 2)
        cv.img *= (1 - 0.25 * r2)[..., None]
        cv.img += rng.normal(0, 1.2, cv.img.shape).astype(np.float32)
        self.background = np.clip(cv.img, 0, 255).astype(np.float32)

    def _set_foreground(self, cv: _Canvas):
        ys, xs = np.nonzero(cv.alpha > 1e-3)
        if ys.size:
            sl = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
            self.fg = (cv.alpha[sl][..., None].copy(), cv.img[sl].copy(), sl)

    def _floor(self, cv: _Canvas, rng, tone):
        cv.img[:] = np.asarray(tone, np.float32)
        cv.texture(1.0, 0.08, _value_noise(rng, self.H, self.W, self.S / 6))
        cv.texture(1.0, 0.03, rng.standard_normal((self.H, self.W)).astype(np.float32))

    def _belt(self, cv: _Canvas, rng, x0, y0, x1, y1, tone):
        m = cv.box(x0, y0, x1, y1, tone)
        streaks = rng.standard_normal(self.H).astype(np.float32)[:, None] * np.ones((1, self.W), np.float32)
        cv.texture(m, 0.05, streaks)
        cv.texture(m, 0.06, _value_noise(rng, self.H, self.W, self.S / 10))
        rail = max(1.0, 1.6 * self.u)
        cv.box(x0, y0 - rail, x1, y0, (175, 178, 182))
        cv.box(x0, y1, x1, y1 + rail, (150, 152, 156))

    def _cabinet(self, cv: _Canvas, x0, y0, x1, y1, tone, lights=2):
        u = self.u
        cv.box(x0, y0, x1, y1, np.asarray(tone) * 0.8, r=1.5 * u)
        cv.box(x0 + u, y0 + u, x1 - u, y1 - u, tone, r=1.5 * u)
        for i in range(lights):
            cv.disc(x0 + (i + 1) * (x1 - x0) / (lights + 1), y0 + 0.3 * (y1 - y0), max(0.8, 1.6 * u),
                    ((60, 200, 80), (230, 160, 30), (210, 50, 50))[i % 3])

    def _product_colour(self, rng, hue_range, sat_range, val_range):
        return _hsv(rng.uniform(*hue_range), rng.uniform(*sat_range), rng.uniform(*val_range))


class _Conveyor(_Scene):
    """Linear translation: boxes ride a belt from left to right."""
    name = "conveyor"
    period = 16.0
    shift = 0.11

    def setup(self):
        H, W, u, rng = self.H, self.W, self.u, self.rng
        self.D = 0.3 * W
        self.v = self.D / self.period
        self.yc = (0.56 + rng.uniform(-0.02, 0.02)) * H
        pa, pb = 9.5 * u, 7.5 * u
        R = math.hypot(pa, pb) + 2
        self.x0 = -R
        self.s_min, self.s_max = 0.0, (W + 2 * R) / self.v
        self.product = dict(kind=_BOX, a=pa, b=pb, r=1.5 * u, mark=_M_BAND,
                            c1=self._product_colour(rng, (0.06, 0.1), (0.45, 0.6), (0.68, 0.82)))
        self.alt_shapes = [dict(kind=_DISC, a=8.5 * u, b=8.5 * u, r=0.0, mark=_M_DOT),
                           dict(kind=_TRI, a=10.5 * u, b=10.5 * u, r=0.0, mark=_M_NONE)]
        cv = _Canvas(H, W)
        self._floor(cv, rng, _hsv(rng.uniform(0.55, 0.65), 0.08, 0.5))
        hb = 0.2 * H
        self._belt(cv, rng, -1, self.yc - hb, W + 1, self.yc + hb, _hsv(0.6, 0.05, 0.26))
        self._cabinet(cv, 0.06 * W, 0.03 * H, 0.3 * W, self.yc - hb - 0.05 * H, _hsv(0.58, 0.25, 0.55), 3)
        cv.hazard(0.62 * W, self.yc + hb + 0.06 * H, 0.95 * W, min(H - 1, self.yc + hb + 0.14 * H), 4 * u)
        # light-curtain posts beside the belt
        for yy in (self.yc - hb - 0.1 * H, self.yc + hb + 0.02 * H):
            cv.box(0.7 * W, yy, 0.7 * W + 3 * u, yy + 0.08 * H, (40, 40, 44))
        self._finish_background(cv, rng)
        # a sensor bridge over the belt: products pass beneath it
        fg = _Canvas(H, W)
        fg.box(0.7 * W, self.yc - hb - 0.02 * H, 0.7 * W + 3 * u, self.yc + hb + 0.02 * H, (70, 72, 78))
        self._set_foreground(fg)

    def path(self, s):
        return self.x0 + self.v * s, np.full_like(s, self.yc), np.zeros_like(s)


class _Turntable(_Scene):
    """Circular motion: cans ride a rotary table, loaded at one point and unloaded 270° later."""
    name = "turntable"
    period = 10.0
    slots = 8
    shift = 0.12
    shift_signs = (-1,)  # towards the hub

    def setup(self):
        H, W, S, u, rng = self.H, self.W, self.S, self.u, self.rng
        self.cx, self.cy = 0.5 * W, 0.52 * H
        self.rt = 0.46 * S
        self.r = 0.3 * S
        self.omega = 2 * math.pi / (self.slots * self.period)
        self.theta_in = math.radians(150)
        self.s_min, self.s_max = 0.0, 0.75 * self.slots * self.period
        self.product = dict(kind=_DISC, a=8 * u, b=8 * u, mark=_M_DOT,
                            c1=self._product_colour(rng, (0.95, 1.05), (0.6, 0.75), (0.7, 0.85)))
        self.alt_shapes = [dict(kind=_BOX, a=8.5 * u, b=6.5 * u, r=1.0 * u, mark=_M_BAND),
                           dict(kind=_TRI, a=9.5 * u, b=9.5 * u, r=0.0, mark=_M_NONE)]
        cv = _Canvas(H, W)
        self._floor(cv, rng, _hsv(0.1, 0.1, 0.45))
        self.table_tone = np.asarray(_hsv(0.58, 0.06, 0.62))
        cv.disc(self.cx, self.cy + 1.5 * u, self.rt, (30, 30, 32))           # shadow
        m = cv.disc(self.cx, self.cy, self.rt, self.table_tone)
        rho = np.hypot(cv.xx - self.cx, cv.yy - self.cy)
        cv.texture(m, 0.04, np.sin(rho / max(1.0, 1.5 * u)).astype(np.float32))  # turned rings
        cv.ring(self.cx, self.cy, self.rt - 1.5 * u, max(1.0, 1.5 * u), self.table_tone * 0.75)
        cv.disc(self.cx, self.cy, 0.08 * S, (55, 57, 62))                     # hub
        for th in (self.theta_in, self.theta_in + 1.5 * math.pi):             # infeed/outfeed chutes
            ex, ey = math.cos(th), math.sin(th)
            px, py = self.cx + (self.rt + 0.06 * S) * ex, self.cy + (self.rt + 0.06 * S) * ey
            cv.box(px - 0.07 * S, py - 0.07 * S, px + 0.07 * S, py + 0.07 * S, (95, 100, 110), r=2 * u)
        self._cabinet(cv, 0.02 * W, 0.02 * H, 0.18 * W, 0.3 * H, _hsv(0.3, 0.3, 0.5), 2)
        self._finish_background(cv, rng)
        fg = _Canvas(H, W)  # an inspection bridge over the top of the table
        fg.box(self.cx + 0.02 * W, -1, self.cx + 0.02 * W + 4 * u, self.cy - 0.14 * S, (62, 64, 70))
        fg.box(self.cx - 0.02 * W, self.cy - 0.3 * S - 5 * u, self.cx + 0.07 * W, self.cy - 0.3 * S - 2 * u,
               (62, 64, 70))
        self._set_foreground(fg)

    def path(self, s):
        th = self.theta_in + self.omega * s
        return self.cx + self.r * np.cos(th), self.cy + self.r * np.sin(th), th + 0.3

    def normal(self, s):
        th = self.theta_in + self.omega * s
        return np.cos(th), np.sin(th)

    def product_extra(self, s):
        return dict(alpha=_clip01(s / 2.0) * _clip01((self.s_max - s) / 2.0))

    def machinery(self, tau):
        n = len(tau)
        th = self.omega * tau
        out = [_sprites(n, x=self.cx + 0.27 * self.S * np.cos(th), y=self.cy + 0.27 * self.S * np.sin(th),
                        angle=th, kind=_CAPSULE, a=0.17 * self.S, b=max(0.6, 1.0 * self.u), edge=0.0,
                        c1=self.table_tone * 0.7, layer=0)]
        for j in range(self.slots):  # slot fixtures on the rim
            t = th + (j + 0.5) * 2 * math.pi / self.slots
            out.append(_sprites(n, x=self.cx + 0.41 * self.S * np.cos(t), y=self.cy + 0.41 * self.S * np.sin(t),
                                kind=_DISC, a=max(0.7, 1.6 * self.u), b=1.0, edge=0.0, c1=(70, 72, 80), layer=0))
        return out


class _Press(_Scene):
    """Indexing belt: plates stop under a stamp that comes down, presses an imprint, goes up."""
    name = "press"
    period = 18.0
    shift = 0.09
    dwell = 0.35

    def setup(self):
        H, W, S, u, rng = self.H, self.W, self.S, self.u, self.rng
        self.yc = 0.68 * H
        self.D = 0.26 * W
        self.xp = 0.52 * W
        self.mp = 3
        self.xs = self.xp - self.mp * self.D
        pa, pb = 10 * u, 7 * u
        self.pb = pb
        R = math.hypot(pa, pb) + 2
        g_end = (W + R - self.xs) / self.D
        self.s_min, self.s_max = 0.0, (math.floor(g_end) + 1) * self.period
        self.product = dict(kind=_BOX, a=pa, b=pb, r=1.0 * u, mark=_M_RING,
                            c1=self._product_colour(rng, (0.55, 0.62), (0.15, 0.3), (0.72, 0.85)))
        self.alt_shapes = [dict(kind=_DISC, a=8 * u, b=8 * u, r=0.0, mark=_M_RING),
                           dict(kind=_TRI, a=10 * u, b=10 * u, r=0.0, mark=_M_NONE)]
        self.beam = 0.12 * H
        self.head = (0.1 * S, 0.045 * S)
        cv = _Canvas(H, W)
        self._floor(cv, rng, _hsv(0.08, 0.12, 0.5))
        self._belt(cv, rng, -1, self.yc + pb, W + 1, self.yc + pb + 0.1 * H, _hsv(0.6, 0.05, 0.22))
        for xx in (self.xp - 0.2 * W, self.xp + 0.17 * W):                   # press columns
            cv.box(xx, self.beam, xx + 0.03 * W, self.yc + pb, (88, 92, 100))
            cv.hazard(xx, self.yc - 0.1 * H, xx + 0.03 * W, self.yc + pb, 3 * u)
        cv.box(self.xp - 0.22 * W, self.beam - 0.08 * H, self.xp + 0.22 * W, self.beam, (80, 84, 92))
        cv.box(self.xp - 0.06 * W, 0, self.xp + 0.06 * W, self.beam - 0.08 * H, (60, 64, 70))  # cylinder
        self._cabinet(cv, 0.02 * W, 0.05 * H, 0.22 * W, 0.4 * H, _hsv(0.0, 0.4, 0.55), 3)
        self._finish_background(cv, rng)

    def _g(self, s):
        ph = s / self.period
        whole = np.floor(ph)
        return whole + _smooth((ph - whole - self.dwell) / (1 - self.dwell))

    def path(self, s):
        return self.xs + self.D * self._g(s), np.full_like(s, self.yc), np.zeros_like(s)

    def product_extra(self, s):
        return dict(p1=(s >= (self.mp + self.dwell / 2) * self.period).astype(float))

    def machinery(self, tau):
        n, u = len(tau), self.u
        ph = np.mod(tau / self.period, 1.0)
        d = np.where(ph < self.dwell, np.sin(np.pi * ph / self.dwell) ** 2, 0.0)
        hx, hy = self.head
        up, down = self.beam + 0.04 * self.H, self.yc - self.pb
        bottom = up + d * (down - up) + 2 * hy
        head_y = bottom - hy
        rod_top = self.beam
        rod_h = np.maximum((head_y - hy - rod_top) / 2, 0.5)
        return [_sprites(n, x=self.xp, y=rod_top + rod_h, kind=_BOX, a=0.025 * self.S, b=rod_h, edge=0.15,
                         c1=(185, 188, 195), layer=2),
                _sprites(n, x=self.xp, y=head_y, kind=_BOX, a=hx, b=hy, r=u, edge=0.3,
                         c1=(120, 124, 132), layer=2)]


class _PickAndPlace(_Scene):
    """An arm picks each item at the end of an input belt and places it on an output belt."""
    name = "pick_and_place"
    period = 24.0
    shift = 0.08
    # arm keyframes: (phase, x: 0 = pick, 1 = place, height: 0 = up, 1 = down)
    keys = np.array([(0.0, 0, 0), (0.14, 0, 1), (0.28, 0, 0), (0.5, 1, 0), (0.64, 1, 1), (0.78, 1, 0), (1.0, 0, 0)])
    grip, release = 0.14, 0.64

    def setup(self):
        H, W, u, rng = self.H, self.W, self.u, self.rng
        self.yb = 0.74 * H
        self.xl, self.xr = 0.3 * W, 0.7 * W
        self.vb = 0.35 * W / self.period
        pa, pb = 8 * u, 7 * u
        self.pa, self.pb = pa, pb
        R = math.hypot(pa, pb) + 2
        self.y_down = self.yb - pb               # gripper bottom when down
        self.y_up = self.y_down - 0.3 * H
        self.rail = 0.1 * H
        self.s_min = self.grip * self.period - (self.xl + R) / self.vb
        self.s_max = self.release * self.period + (W - self.xr + R) / self.vb
        self.product = dict(kind=_BOX, a=pa, b=pb, r=1.2 * u, mark=_M_CENTRE,
                            c1=self._product_colour(rng, (0.28, 0.45), (0.55, 0.7), (0.55, 0.75)))
        self.alt_shapes = [dict(kind=_DISC, a=7.5 * u, b=7.5 * u, r=0.0, mark=_M_DOT),
                           dict(kind=_TRI, a=9.5 * u, b=9.5 * u, r=0.0, mark=_M_NONE)]
        cv = _Canvas(H, W)
        self._floor(cv, rng, _hsv(0.12, 0.1, 0.55))
        cv.box(-1, self.yb + pb, W + 1, H + 1, _hsv(0.1, 0.15, 0.4))              # workbench
        self._belt(cv, rng, -1, self.yb - 0.09 * H, self.xl + 0.08 * W, self.yb + pb, _hsv(0.6, 0.05, 0.24))
        self._belt(cv, rng, self.xr - 0.08 * W, self.yb - 0.09 * H, W + 1, self.yb + pb, _hsv(0.6, 0.05, 0.24))
        cv.box(self.xl - 0.14 * W, self.rail - 0.025 * H, self.xr + 0.14 * W, self.rail + 0.025 * H, (150, 154, 160))
        for xx in (self.xl - 0.14 * W, self.xr + 0.12 * W):
            cv.box(xx, self.rail, xx + 0.02 * W, self.yb - 0.09 * H, (95, 98, 105))
        cv.hazard(0.42 * W, self.yb + pb + 0.05 * H, 0.58 * W, H - 0.03 * H, 3 * u)
        self._finish_background(cv, rng)

    def arm(self, phase):
        ph, kx, kz = self.keys.T
        i = np.clip(np.searchsorted(ph, phase, side="right") - 1, 0, len(ph) - 2)
        t = _smooth((phase - ph[i]) / (ph[i + 1] - ph[i]))
        fx = kx[i] + (kx[i + 1] - kx[i]) * t
        fz = kz[i] + (kz[i + 1] - kz[i]) * t
        return self.xl + fx * (self.xr - self.xl), self.y_up + fz * (self.y_down - self.y_up)

    def path(self, s):
        P = self.period
        ax, ay = self.arm(np.clip(s / P, 0, 1))
        x = np.where(s < self.grip * P, self.xl - self.vb * (self.grip * P - s),
                     np.where(s <= self.release * P, ax, self.xr + self.vb * (s - self.release * P)))
        y = np.where((s >= self.grip * P) & (s <= self.release * P), ay + self.pb, self.yb)
        return x, y, np.zeros_like(s)

    @property
    def foreign_range(self):
        return self.release * self.period, self.s_max

    def machinery(self, tau):
        n, u, S = len(tau), self.u, self.S
        ph = np.mod(tau / self.period, 1.0)
        ax, ay = self.arm(ph)
        carrying = (ph >= self.grip) & (ph < self.release)
        gh = 0.025 * S
        arm_top = self.rail
        arm_h = np.maximum((ay - 2 * gh - arm_top) / 2, 0.5)
        finger = np.where(carrying, self.pa + 1.2 * u, self.pa + 3.5 * u)
        fh = 0.05 * S
        grey, dark = (175, 178, 185), (70, 72, 78)
        return [
            _sprites(n, x=ax, y=arm_top + arm_h, kind=_BOX, a=0.022 * S, b=arm_h, edge=0.15, c1=grey, layer=2),
            _sprites(n, x=ax, y=self.rail, kind=_BOX, a=0.07 * S, b=0.04 * S, r=u, c1=(225, 140, 30), layer=2),
            _sprites(n, x=ax, y=ay - gh, kind=_BOX, a=self.pa + 4.5 * u, b=gh, r=0.5 * u, c1=dark, layer=2),
            _sprites(n, x=ax - finger, y=ay - gh + fh / 2, kind=_BOX, a=0.9 * u + 0.3, b=fh / 2 + gh / 2,
                     c1=dark, edge=0.0, layer=2),
            _sprites(n, x=ax + finger, y=ay - gh + fh / 2, kind=_BOX, a=0.9 * u + 0.3, b=fh / 2 + gh / 2,
                     c1=dark, edge=0.0, layer=2),
        ]


class _Bottling(_Scene):
    """Bottles pass under a filler that travels with each bottle while filling, then returns."""
    name = "bottling"
    period = 14.0
    shift = 0.09
    shift_signs = (1,)  # lifted off the belt
    angle_range = (20.0, 80.0)
    fill_span = 0.55

    def setup(self):
        H, W, u, rng = self.H, self.W, self.u, self.rng
        self.ybt = 0.8 * H
        self.D = 0.24 * W
        self.v = self.D / self.period
        pa, pb = 6.5 * u, 16 * u
        self.pb = pb
        self.yc = self.ybt - pb
        R = math.hypot(pa, pb) + 2
        self.x0 = -R
        self.s_min, self.s_max = 0.0, (W + 2 * R) / self.v
        self.xf = 0.38 * W
        self.sf = (self.xf - self.x0) / self.v    # s at which a bottle is under the filler's start
        self.rail = 0.1 * H
        glass = self._product_colour(rng, (0.3, 0.45), (0.2, 0.35), (0.75, 0.88))
        liquid = self._product_colour(rng, (0.02, 0.1), (0.75, 0.9), (0.45, 0.7))
        self.product = dict(kind=_BOTTLE, a=pa, b=pb, r=0.0, edge=0.2, c1=glass, c2=liquid, opacity=0.8)
        self.alt_shapes = [dict(kind=_BOX, a=pa * 1.15, b=pb * 0.95, r=1.0 * u, mark=_M_BAND),  # a can
                           dict(kind=_TRI, a=10 * u, b=10 * u, r=0.0, mark=_M_NONE)]
        cv = _Canvas(H, W)
        self._floor(cv, rng, _hsv(0.55, 0.1, 0.6))
        cv.box(-1, 0.25 * H, W + 1, 0.3 * H, (120, 125, 132))                  # wall trim
        self._belt(cv, rng, -1, self.ybt, W + 1, self.ybt + 0.08 * H, _hsv(0.6, 0.05, 0.2))
        for i in range(int(W / (6 * u)) + 1):                                    # rollers
            cv.disc(i * 6 * u + 3 * u, self.ybt + 0.11 * H, max(0.8, 1.8 * u), (60, 60, 64))
        cv.box(0.15 * W, self.rail - 0.02 * H, 0.85 * W, self.rail + 0.02 * H, (150, 155, 162))
        cv.box(0.7 * W, 0.02 * H, 0.95 * W, 0.22 * H, (170, 172, 178), r=3 * u)  # tank
        cv.box(0.8 * W, 0.22 * H, 0.82 * W, self.rail + 0.1 * H, (110, 112, 118))
        self._finish_background(cv, rng)

    def path(self, s):
        return self.x0 + self.v * s, np.full_like(s, self.yc), np.zeros_like(s)

    def product_extra(self, s):
        return dict(p1=_clip01((s - self.sf - 0.1 * self.period) / (0.4 * self.period)))

    def normal(self, s):
        return np.zeros_like(s), -np.ones_like(s)

    def foreign_path(self, s):
        x, y, ang = self.path(s)
        return x, y + 0.6 * self.pb, ang

    def machinery(self, tau):
        n, u, S = len(tau), self.u, self.S
        P = self.period
        ph = np.mod((tau - self.sf) / P, 1.0)
        track = self.fill_span
        fx = np.where(ph < track, self.xf + self.v * P * ph,
                      self.xf + self.v * P * track * (1 - _smooth((ph - track) / (1 - track))))
        down = _smooth((ph - 0.04) / 0.1) * (1 - _smooth((ph - track + 0.12) / 0.1))
        tip_up = self.yc - self.pb - 0.1 * self.H
        tip = tip_up + down * (self.yc - 0.85 * self.pb - tip_up)
        top = self.rail
        half = np.maximum((tip - top) / 2, 0.5)
        return [
            _sprites(n, x=fx, y=top + half, kind=_BOX, a=max(0.6, 1.3 * u), b=half, edge=0.0, c1=(200, 202, 208),
                     layer=2),
            _sprites(n, x=fx, y=self.rail, kind=_BOX, a=0.065 * S, b=0.035 * S, r=u, c1=(60, 110, 190), layer=2),
        ]


class _Cutter(_Scene):
    """A continuous strip runs under a blade that cuts it periodically; pieces leave faster."""
    name = "cutter"
    period = 16.0
    shift = 0.1
    angle_range = (10.0, 22.0)
    anomaly_from = {"angle": 0.0, "position": 0.0}
    jitter_from = 0.0

    def setup(self):
        H, W, S, u, rng = self.H, self.W, self.S, self.u, self.rng
        self.yc = 0.55 * H
        self.D = 0.22 * W
        self.v = self.D / self.period
        self.v2 = 1.3 * self.v
        self.xc = 0.45 * W
        self.pb = 0.075 * S
        self.s_min = -(self.xc + self.D) / self.v - 1
        self.s_max = (W - self.xc) / self.v2 + 1
        self.product = dict(kind=_BOX, a=self.D / 2, b=self.pb, r=0.0, edge=0.0, mark=_M_CENTRE,
                            c1=self._product_colour(rng, (0.07, 0.12), (0.35, 0.5), (0.75, 0.88)))
        self.alt_shapes = [dict(kind=_NOTCHED, a=self.D / 2, b=self.pb, r=0.0, mark=_M_CENTRE),
                           dict(kind=_BOX, a=self.D / 2, b=0.6 * self.pb, r=0.0, mark=_M_CENTRE)]  # narrow
        cv = _Canvas(H, W)
        self._floor(cv, rng, _hsv(0.6, 0.06, 0.42))
        hb = self.pb + 0.06 * H
        self._belt(cv, rng, -1, self.yc - hb, self.xc - 2 * u, self.yc + hb, _hsv(0.6, 0.03, 0.55))
        self._belt(cv, rng, self.xc + 2 * u, self.yc - hb, W + 1, self.yc + hb, _hsv(0.6, 0.05, 0.25))
        cv.box(self.xc - 0.1 * W, 0.02 * H, self.xc + 0.1 * W, 0.14 * H, (90, 94, 102), r=2 * u)
        for xx in (self.xc - 0.1 * W, self.xc + 0.08 * W):
            cv.box(xx, 0.14 * H, xx + 0.02 * W, self.yc - hb, (100, 104, 112))
        cv.hazard(self.xc - 0.1 * W, self.yc + hb + 0.04 * H, self.xc + 0.1 * W, self.yc + hb + 0.12 * H, 3 * u)
        self._cabinet(cv, 0.7 * W, 0.03 * H, 0.96 * W, 0.25 * H, _hsv(0.6, 0.3, 0.5), 2)
        self._finish_background(cv, rng)

    def path(self, s):
        xl = self.xc + np.where(s < 0, self.v * s, self.v2 * s)
        return xl + self.D / 2, np.full_like(s, self.yc), np.zeros_like(s)

    def machinery(self, tau):
        n, u, S = len(tau), self.u, self.S
        ph = np.mod(tau / self.period + 0.5, 1.0) - 0.5
        d = np.where(np.abs(ph) < 0.12, np.cos(np.pi * ph / 0.24) ** 2, 0.0)
        hb = 0.11 * self.H
        up = self.yc - self.pb - 0.08 * self.H - hb
        down = self.yc + self.pb + 1.5 * u - hb
        y = up + d * (down - up)
        return [
            _sprites(n, x=self.xc, y=y, kind=_BOX, a=max(0.7, 1.4 * u), b=hb, edge=0.2, c1=(215, 218, 225), layer=2),
            _sprites(n, x=self.xc, y=y - hb - 0.03 * S, kind=_BOX, a=0.05 * S, b=0.03 * S, r=u, c1=(200, 60, 40),
                     layer=2),
        ]


_SCENE_CLASSES = {c.name: c for c in (_Conveyor, _Turntable, _Press, _PickAndPlace, _Bottling, _Cutter)}


@functools.lru_cache(maxsize=16)
def _scene(name: str, height: int, width: int, line_seed: int) -> _Scene:
    if name not in _SCENE_CLASSES:
        raise ValueError(f"unknown scene {name!r}; scenes: {', '.join(SCENES)}")
    if height < 16 or width < 16:
        raise ValueError(f"frames must be at least 16×16 pixels, got {height}×{width}")
    return _SCENE_CLASSES[name](int(height), int(width), np.random.default_rng([int(line_seed), 0x5C])) 


def _kind(kind: str) -> str:
    k = _ALIASES.get(str(kind).lower(), str(kind).lower())
    if k not in ANOMALIES:
        raise ValueError(f"unknown anomaly kind {kind!r}; kinds: {', '.join(ANOMALIES)}")
    return k


def _check_seed(seed) -> int:
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seeds must be non-negative integers, got {seed}")
    return seed


def _runs(mask: np.ndarray) -> List[Tuple[int, int]]:
    """[start, end) of the runs of True in a 1-D boolean array."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def _bbox_fraction(sp, H, W) -> np.ndarray:
    """Fraction of each sprite's bounding box inside the frame."""
    ex, ey = _extents(sp)
    fx = _clip01((np.minimum(sp["x"] + ex, W) - np.maximum(sp["x"] - ex, 0)) / np.maximum(2 * ex, 1e-6))
    fy = _clip01((np.minimum(sp["y"] + ey, H) - np.maximum(sp["y"] - ey, 0)) / np.maximum(2 * ey, 1e-6))
    return fx * fy


def _first_frames(frames, keys):
    """Unique keys and the first frame at which each occurs."""
    if frames.size == 0:
        return np.zeros(0, keys.dtype), np.zeros(0, np.int64)
    order = np.lexsort((frames, keys))
    uk, idx = np.unique(keys[order], return_index=True)
    return uk, frames[order][idx]


def _choose(keys, firsts, a, b, claimed):
    """Keys whose first frame lies in [a, b); else the first one after a; else the last before."""
    ok = np.array([k not in claimed for k in keys.tolist()], bool) if keys.size else np.zeros(0, bool)
    keys, firsts = keys[ok], firsts[ok]
    if keys.size == 0:
        return keys
    inside = (firsts >= a) & (firsts < b)
    if inside.any():
        return keys[inside]
    after = firsts >= a
    if after.any():
        return keys[after][[np.argmin(firsts[after])]]
    return keys[[np.argmax(firsts)]]


def _render(sc: _Scene, n: int, events, seed: int, noise: float, lighting: float, flicker: float,
            jitter: float, chunk: int = 32):
    """Renders one video of scene ``sc``; returns (uint8 video, int64 labels, resolved events)."""
    H, W, P, u = sc.H, sc.W, sc.period, sc.u
    if not (noise >= 0 and lighting >= 0 and jitter >= 0 and 0 <= flicker <= 1):
        raise ValueError(f"noise, lighting and jitter must be >= 0 and flicker in [0, 1], got noise={noise}, "
                         f"lighting={lighting}, jitter={jitter}, flicker={flicker}")
    ev = []
    for e in events:
        a, b, kind = int(e[0]), int(e[1]), _kind(e[2])
        a, b = max(0, a), min(n, b)
        if b <= a:
            raise ValueError(f"event {tuple(e)} is empty within a video of {n} frames")
        ev.append((a, b, kind))
    ev_rngs = [np.random.default_rng([seed, 0xE7, i]) for i in range(len(ev))]

    # line clock
    rate = np.ones(n)
    for (a, b, kind), rng in zip(ev, ev_rngs):
        if kind == "speed":
            rate[a:b] = rng.uniform(1.7, 2.3)
        elif kind == "stopped":
            rate[a:b] = 0.0
    rate[0] = 0.0
    tau = np.random.default_rng([seed, 0x7A]).uniform(0, 8 * P) + np.cumsum(rate)

    # products
    ks = np.arange(math.floor((tau.min() - sc.s_max) / P) - 1, math.ceil((tau.max() - sc.s_min) / P) + 2)
    grid = tau[:, None] - ks[None, :] * P
    fi, ki = np.nonzero((grid >= sc.s_min) & (grid <= sc.s_max))
    s, k = grid[fi, ki], ks[ki]
    prod = sc.products(s, f=fi, layer=1)
    if jitter:
        act = (s >= sc.jitter_from).astype(float)
        nx, ny = sc.normal(s)
        off = (2 * _hash01(seed, k, 1) - 1) * 0.8 * u * jitter * act
        prod["x"] += nx * off
        prod["y"] += ny * off
        if sc.name != "cutter":
            prod["angle"] += np.radians(2.5) * (2 * _hash01(seed, k, 2) - 1) * jitter * act
            prod["c1"] *= (1 + 0.04 * jitter * (2 * _hash01(seed, k, 3) - 1))[:, None]
    roughly_visible = _bbox_fraction(prod, H, W) >= _VISIBLE
    claimed: set = set()
    for i, ((a, b, kind), rng) in enumerate(zip(ev, ev_rngs)):
        if kind not in _PRODUCT_KINDS:
            continue
        active = s >= sc.anomaly_from.get(kind, -np.inf)
        ok = roughly_visible & active
        keys, firsts = _first_frames(fi[ok], k[ok])
        chosen = _choose(keys, firsts, a, b, claimed)
        claimed.update(chosen.tolist())
        sel = np.isin(k, chosen) & active
        prod["tag"][sel] = i
        if kind == "colour":
            far = _PALETTE[np.linalg.norm(_PALETTE - np.asarray(sc.product["c1"]), axis=1) > 150]
            prod["c1"][sel] = far[rng.integers(len(far))] * (0.85 + 0.15 * rng.random())
        elif kind == "shape":
            alt = sc.alt_shapes[rng.integers(len(sc.alt_shapes))]
            for key in ("kind", "a", "b", "r", "mark"):
                prod[key][sel] = alt[key]
        elif kind == "angle":
            lo, hi = sc.angle_range
            prod["angle"][sel] += np.radians(rng.uniform(lo, hi)) * rng.choice((-1, 1))
        elif kind == "position":
            sign = rng.choice(sc.shift_signs)
            nx, ny = sc.normal(s[sel])
            prod["x"][sel] += nx * sign * sc.shift * H
            prod["y"][sel] += ny * sign * sc.shift * H
        elif kind == "missing":
            prod["ghost"][sel] = True
    groups = [prod]

    # foreign objects ride the line half a period away from the products
    for i, ((a, b, kind), rng) in enumerate(zip(ev, ev_rngs)):
        if kind != "foreign":
            continue
        lo, hi = sc.foreign_range
        fgrid = tau[:, None] - (ks[None, :] + 0.5) * P
        ffi, fki = np.nonzero((fgrid >= lo) & (fgrid <= hi))
        fs, fk = fgrid[ffi, fki], ks[fki]
        x, y, _ = sc.foreign_path(fs)
        box = _sprites(len(fs), x=x, y=y, kind=_DISC, a=7 * u, b=7 * u, c1=0)
        vis = _bbox_fraction(box, H, W) >= _VISIBLE
        keys, firsts = _first_frames(ffi[vis], fk[vis])
        chosen = _choose(keys, firsts, a, b, set())[:1]
        sel = np.isin(fk, chosen)
        fs, ffi = fs[sel], ffi[sel]
        x, y, _ = sc.foreign_path(fs)
        nx, ny = sc.normal(fs)
        off = rng.uniform(-0.06, 0.06) * H
        kind_f = (_CAPSULE, _BLOB, _DISC)[rng.integers(3)]
        size = rng.uniform(6.5, 9.0) * u
        dims = {_CAPSULE: (size * 1.2, max(0.8, 2.2 * u)), _BLOB: (size * 0.8, size * 0.8), _DISC: (size * 0.7, size * 0.7)}
        fa, fb = dims[kind_f]
        spin = rng.uniform(-0.04, 0.04)
        groups.append(_sprites(len(fs), f=ffi, x=x + nx * off, y=y + ny * off,
                               angle=rng.uniform(0, 2 * np.pi) + spin * (fs - lo), kind=kind_f, a=fa, b=fb,
                               p2=rng.uniform(0, 2 * np.pi), mark=_M_CENTRE if kind_f == _DISC else _M_NONE,
                               c1=_FOREIGN_COLOURS[rng.integers(len(_FOREIGN_COLOURS))], layer=1, tag=i, seq=1))

    for j, m in enumerate(sc.machinery(tau)):
        m["f"] = np.arange(n)
        m["seq"][:] = 2 + j
        groups.append(m)
    sp = _concat(groups)
    ex, ey = _extents(sp)
    keep = (sp["x"] + ex + 1 > 0) & (sp["x"] - ex - 1 < W) & (sp["y"] + ey + 1 > 0) & (sp["y"] - ey - 1 < H)
    sp = _take(sp, np.nonzero(keep)[0])
    order = np.lexsort((sp["seq"], sp["layer"], sp["f"]))
    sp = _take(sp, order)

    # lighting: exposure, slow drift, colour temperature, a moving gradient, occasional flicker
    lr = np.random.default_rng([seed, 0x11])
    t = np.arange(n, dtype=np.float64)
    tw = 2 * np.pi
    gain = (1 + lighting * (lr.uniform(-0.05, 0.05) + lr.uniform(0.04, 0.10) * np.sin(tw * t / lr.uniform(120, 360) + lr.uniform(0, tw))
                            + lr.uniform(0.01, 0.03) * np.sin(tw * t / lr.uniform(25, 70) + lr.uniform(0, tw))))
    tint = 1 + lighting * 0.03 * np.sin(tw * t[:, None] / lr.uniform(150, 400) + lr.uniform(0, tw, 3)[None, :])
    grad = lighting * lr.uniform(0.04, 0.10) * np.sin(tw * t / lr.uniform(100, 300) + lr.uniform(0, tw))
    fl = lr.random(n) < flicker
    amp = lr.uniform(0.07, 0.15, n) * np.where(lr.random(n) < 0.5, -1.0, 1.0)
    gain = gain * np.where(fl, 1 + amp, 1.0)
    xs = ((np.arange(W) + 0.5) / W - 0.5).astype(np.float32)

    # sensor noise: i.i.d. Gaussian would dominate the rendering time, so every frame adds two
    # random crops of a per-video bank of Gaussian fields (different fields), scaled to σ.
    nr = np.random.default_rng([seed, 0x40])
    nb, pad = 8, 16
    bank = nr.standard_normal((nb, H + pad, W + pad, 3), dtype=np.float32) * np.float32(noise / math.sqrt(2))
    first = nr.integers(0, nb, n)
    pick = np.stack([first, (first + 1 + nr.integers(0, nb - 1, n)) % nb], axis=1)
    oy, ox = nr.integers(0, pad + 1, (n, 2)), nr.integers(0, pad + 1, (n, 2))
    video = np.empty((n, H, W, 3), np.uint8)
    ev_mask = np.zeros((len(ev), n), bool)
    for i, (a, b, kind) in enumerate(ev):
        if kind in _LINE_KINDS:
            ev_mask[i, a:b] = True
    bounds = np.searchsorted(sp["f"], np.arange(0, n + chunk, chunk))
    for ci, c0 in enumerate(range(0, n, chunk)):
        c1 = min(n, c0 + chunk)
        buf = np.broadcast_to(sc.background, (c1 - c0, H, W, 3)).copy()
        part = _take(sp, slice(bounds[ci], bounds[ci + 1]))
        frac = _draw(buf, c0, part, H, W, sc.ew)
        tagged = (part["tag"] >= 0) & (frac >= _VISIBLE)
        ev_mask[part["tag"][tagged], part["f"][tagged]] = True
        if sc.fg is not None:
            fa, fc, sl = sc.fg
            reg = buf[:, sl[0], sl[1]]
            reg += fa * (fc - reg)
        g = (gain[c0:c1, None] * (1 + 2 * grad[c0:c1, None] * xs[None, :]))[:, None, :, None] * tint[c0:c1, None, None, :]
        buf *= g.astype(np.float32)
        if noise:  # each frame: the sum of two random crops of the noise bank
            for j in range(c1 - c0):
                f = c0 + j
                buf[j] += bank[pick[f, 0], oy[f, 0]:oy[f, 0] + H, ox[f, 0]:ox[f, 0] + W]
                buf[j] += bank[pick[f, 1], oy[f, 1]:oy[f, 1] + H, ox[f, 1]:ox[f, 1] + W]
        np.clip(buf, 0, 255, out=buf)
        buf += 0.5
        video[c0:c1] = buf.astype(np.uint8)

    resolved = [Event(s0, s1, kind) for i, (_, _, kind) in enumerate(ev) for s0, s1 in _runs(ev_mask[i])]
    resolved.sort(key=lambda e: (e.start, e.end))
    labels = ev_mask.any(0).astype(np.int64) if ev else np.zeros(n, np.int64)
    return video, labels, resolved


def _draw(buf, f0, sp, H, W, ew) -> np.ndarray:
    """Composites sprites (sorted in drawing order) into buf (frames f0...); returns each
    sprite's fraction of coverage inside the frame (for labels)."""
    m = len(sp["f"])
    frac = np.zeros(m)
    if m == 0:
        return frac
    ex, ey = _extents(sp)
    # clearly rotated sprites get square patches of their bounding radius (one patch size for all
    # angles, so that they group); nearly axis-aligned ones keep tight patches
    off_axis = np.abs(np.mod(sp["angle"] + np.pi / 4, np.pi / 2) - np.pi / 4)
    turned = off_axis > 0.2
    rad = np.where(np.isin(sp["kind"], (_CAPSULE,)), sp["a"] + sp["b"], np.hypot(sp["a"], sp["b"]))
    rad = np.where(np.isin(sp["kind"], (_BOX, _NOTCHED, _BOTTLE, _CAPSULE)), rad, np.maximum(ex, ey))
    ex, ey = np.where(turned, rad, ex), np.where(turned, rad, ey)
    hw = ((np.ceil(ex).astype(np.int64) + 2) // 2) * 2   # ≥ ceil(extent) + 1, even: sprites group
    hh = ((np.ceil(ey).astype(np.int64) + 2) // 2) * 2
    key = (sp["kind"] * 4096 + hh) * 4096 + hw
    x0 = np.floor(sp["x"]).astype(np.int64) - hw
    y0 = np.floor(sp["y"]).astype(np.int64) - hh
    loc_group = np.zeros(m, np.int64)
    loc_index = np.zeros(m, np.int64)
    patches = []
    for gi, kv in enumerate(np.unique(key)):
        idx = np.nonzero(key == kv)[0]
        kind, phh, phw = int(sp["kind"][idx[0]]), int(hh[idx[0]]), int(hw[idx[0]])
        x, y, gx0, gy0 = sp["x"][idx], sp["y"][idx], x0[idx], y0[idx]
        jx = np.arange(2 * phw + 1)
        jy = np.arange(2 * phh + 1)
        dx = ((gx0[:, None] + jx[None, :] + 0.5) - x[:, None]).astype(np.float32)
        dy = ((gy0[:, None] + jy[None, :] + 0.5) - y[:, None]).astype(np.float32)
        ang = sp["angle"][idx]
        if np.any(ang != 0):
            c = np.cos(ang).astype(np.float32)[:, None, None]
            s = np.sin(ang).astype(np.float32)[:, None, None]
            uu = c * dx[:, None, :] + s * dy[:, :, None]
            vv = -s * dx[:, None, :] + c * dy[:, :, None]
        else:
            uu = np.broadcast_to(dx[:, None, :], (len(idx), len(jy), len(jx)))
            vv = np.broadcast_to(dy[:, :, None], (len(idx), len(jy), len(jx)))
        p = {k: sp[k][idx].astype(np.float32)[:, None, None] for k in ("a", "b", "r", "edge", "p1", "p2", "opacity")}
        p["mark"] = sp["mark"][idx][:, None, None]
        p["c1"] = sp["c1"][idx].astype(np.float32)[:, None, None, :]
        p["c2"] = sp["c2"][idx].astype(np.float32)[:, None, None, :]
        alpha, col = _patches(kind, uu, vv, p, ew)
        fade = sp["alpha"][idx].astype(np.float32)
        tagged = sp["tag"][idx] >= 0
        if tagged.any():  # coverage inside the frame, for labels
            t = np.nonzero(tagged)[0]
            inx = ((gx0[t, None] + jx[None, :]) >= 0) & ((gx0[t, None] + jx[None, :]) < W)
            iny = ((gy0[t, None] + jy[None, :]) >= 0) & ((gy0[t, None] + jy[None, :]) < H)
            total = alpha[t].sum((1, 2))
            inside = (alpha[t] * iny[:, :, None] * inx[:, None, :]).sum((1, 2)) * fade[t]
            frac[idx[t]] = inside / np.maximum(total, 1e-6)
        alpha *= fade[:, None, None]
        # premultiplied: frame = frame·(1 − α) + α·colour
        patches.append((1 - alpha[..., None], col * alpha[..., None]))
        loc_group[idx] = gi
        loc_index[idx] = np.arange(len(idx))
    ph, pw = 2 * hh + 1, 2 * hw + 1
    xa, xb = np.maximum(x0, 0), np.minimum(x0 + pw, W)
    ya, yb = np.maximum(y0, 0), np.minimum(y0 + ph, H)
    todo = np.nonzero(~sp["ghost"] & (xa < xb) & (ya < yb))[0]
    rows = zip(loc_group[todo].tolist(), loc_index[todo].tolist(), (sp["f"][todo] - f0).tolist(),
               xa[todo].tolist(), xb[todo].tolist(), ya[todo].tolist(), yb[todo].tolist(),
               (xa - x0)[todo].tolist(), (xb - x0)[todo].tolist(), (ya - y0)[todo].tolist(), (yb - y0)[todo].tolist())
    for g, j, f, xa_, xb_, ya_, yb_, pxa, pxb, pya, pyb in rows:
        keep, paint = patches[g]
        reg = buf[f, ya_:yb_, xa_:xb_]
        reg *= keep[j, pya:pyb, pxa:pxb]
        reg += paint[j, pya:pyb, pxa:pxb]
    return frac


def synthetic_video(scene: str = "conveyor", n_frames: int = 200, events: Iterable = (), *, height: int = 112,
                    width: int = 144, seed: int = 0, line_seed: int = 0, noise: float = 2.0, lighting: float = 1.0,
                    flicker: float = 0.01, jitter: float = 1.0) -> Tuple[np.ndarray, np.ndarray, List[Event]]:
    """One video of a synthetic production line, with the anomalous events asked for.

    The line (background, product look, geometry, period) is fixed by ``scene`` and
    ``line_seed``; ``seed`` fixes everything about this video (phase, per-product jitter,
    lighting, sensor noise, event details). Rendering with and without events from the same
    seeds gives identical frames until the first event begins to show.

    Args:
        events: (start, end, kind) triples. ``speed`` and ``stopped`` act on frames
            start..end−1 exactly; product kinds (colour, shape, angle, missing, position) change
            the products that come into view during [start, end) (at least one), and
            ``foreign`` puts one object on the line that comes into view from ``start`` on;
            their labelled frames are those in which the changed products (or, for
            ``missing``, the gaps) show (at least 5 % of their area inside the frame).
        noise: standard deviation of Gaussian sensor noise, in grey levels.
        lighting: strength of the lighting drift (exposure, slow drift, colour temperature,
            moving gradient); 0 turns it off.
        flicker: probability per frame of a brief brightness jump (±7–15 %).
        jitter: strength of the small per-product variations (offset, angle, colour).
    Returns:
        (video uint8 (n, H, W, 3), labels int64 (n,), resolved events: list of :class:`Event`
        whose union is exactly the labelled frames).
    """
    sc = _scene(str(scene), int(height), int(width), _check_seed(line_seed))
    n = int(n_frames)
    if n < 1:
        raise ValueError(f"n_frames must be positive, got {n}")
    return _render(sc, n, list(events), _check_seed(seed), float(noise), float(lighting), float(flicker),
                   float(jitter))


def _derive_seed(*parts) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint32)[0])


def _range(value, name) -> Tuple[int, int]:
    if np.ndim(value) == 0:
        lo = hi = int(value)
    else:
        lo, hi = (int(v) for v in value)
    if lo < 0 or hi < lo:
        raise ValueError(f"{name} must be a non-negative int or a (low, high) range, got {value!r}")
    return lo, hi


def synthetic_line(scene: str = "conveyor", n_train_videos: int = 8, n_test_videos: int = 8,
                   frames_per_video: int = 200, height: int = 112, width: int = 144,
                   anomalies: Sequence[str] = ANOMALIES, seed: int = 0, *,
                   events_per_video=(1, 2), event_length=(12, 32), noise: float = 2.0, lighting: float = 1.0,
                   flicker: float = 0.01, jitter: float = 1.0) -> Dataset:
    """A synthetic production line: normal training videos and test videos with labelled events.

    Products (boxes, cans, plates, crates, bottles, strip pieces; a few % of the frame each)
    move on a fixed trajectory with a fixed period over a static textured background
    (belts, rails, machine parts), with sensor noise, slow lighting drift and occasional
    flicker in *all* videos — lighting changes are never anomalies.

    Scenes (``SCENES``):
        conveyor: boxes translate left to right on a belt, under a sensor bridge.
        turntable: cans ride a rotary table (circular motion), loaded at one point and
            unloaded three quarters of a turn later; a marker and fixtures turn with the table.
        press: an indexing belt moves plates one step per period; each stops under a stamp that
            comes down and leaves an imprint.
        pick_and_place: an input belt brings items; an arm lowers, grips, lifts, carries each to
            an output belt, releases it and returns.
        bottling: bottles pass under a filler that travels with each bottle while filling it
            (the liquid level rises), then returns.
        cutter: a continuous strip runs under a blade that drops once per period; the cut
            pieces leave on a faster belt, opening gaps.

    Anomaly kinds (``ANOMALIES``), events in test videos:
        speed: the line runs 1.7–2.3× too fast (products arrive too fast, machinery hurries).
        colour: products of a clearly different colour (for bottles, the glass).
        shape: products of another shape (disc, triangle, box or can, notched piece).
        angle: products rotated (10–80° depending on the scene).
        missing: products absent, leaving a gap in the periodic sequence.
        position: products off their trajectory.
        foreign: a foreign object (a tool, a rag, a washer) riding the line.
        stopped: the line freezes (products and machinery), while lighting and noise go on.

    Args:
        scene: one of ``SCENES``.
        n_train_videos, n_test_videos, frames_per_video: how many videos, how long.
        height, width: frame size (at least 16×16; the ``small`` model preset is 112×144).
        anomalies: kinds used in test videos; they are cycled in a shuffled order so that
            every kind appears if there are enough events.
        seed: fixes everything (the line's look, every video).
        events_per_video: number of events per test video, int or (low, high); fewer if a
            video is too short for them, but always at least one.
        event_length: frames over which an event unfolds, int or (low, high): the duration
            of ``speed``/``stopped``, the window in which affected products come into view for
            product kinds (their labels then last while those products are in view).
        noise, lighting, flicker, jitter: see :func:`synthetic_video`.
    Returns:
        a :class:`Dataset`; every test video has normal frames after the first four and at
        least one anomalous frame.
    """
    name = str(scene)
    if name not in _SCENE_CLASSES:
        raise ValueError(f"unknown scene {scene!r}; scenes: {', '.join(SCENES)}")
    seed = _check_seed(seed)
    kinds = [_kind(a) for a in ([anomalies] if isinstance(anomalies, str) else anomalies)]
    n = int(frames_per_video)
    if n_test_videos and not kinds:
        raise ValueError("anomalies must name at least one kind when test videos are asked for")
    if n < 5:
        raise ValueError(f"frames_per_video must be at least 5, got {n}")
    if n_test_videos and n < 24:
        raise ValueError(f"test videos need at least 24 frames (normal frames and an event), got {n}")
    ev_lo, ev_hi = _range(events_per_video, "events_per_video")
    len_lo, len_hi = _range(event_length, "event_length")
    len_lo = max(len_lo, 1)
    len_hi = max(len_hi, len_lo)
    sc = _scene(name, int(height), int(width), seed)
    opts = dict(noise=float(noise), lighting=float(lighting), flicker=float(flicker), jitter=float(jitter))
    train_seeds = [_derive_seed(seed, 1, i) for i in range(int(n_train_videos))]
    test_seeds = [_derive_seed(seed, 2, i) for i in range(int(n_test_videos))]
    train = [_render(sc, n, [], s, **opts)[0] for s in train_seeds]

    plan = np.random.default_rng([seed, 3])
    cycle = [kinds[i] for i in plan.permutation(len(kinds))] if kinds else []
    pointer = 0
    visible = int(sc.s_max - sc.s_min)
    test, labels, events, requested = [], [], [], []
    for vi, vseed in enumerate(test_seeds):
        for attempt in range(8):
            want = max(1, int(plan.integers(ev_lo, ev_hi + 1)))
            cursor = 8 + int(plan.integers(0, max(1, n // 10)))
            req, p = [], pointer
            for j in range(want):
                kind = cycle[p % len(cycle)]
                length = int(plan.integers(len_lo, len_hi + 1))
                span = length + (visible if kind in _PRODUCT_KINDS + ("foreign",) else 0)
                if j > 0 and cursor + length + 8 > n:  # a late event may run past the end
                    break
                end = min(cursor + length, n - 2)
                if end <= cursor:
                    break
                req.append((cursor, end, kind))
                p += 1
                cursor += span + int(plan.integers(8, 24))
            video, lab, evs = _render(sc, n, req, vseed, **opts)
            if lab[4:].any() and not lab[4:].all():
                pointer = p
                break
        else:  # pragma: no cover - the plan always leaves normal frames at the start
            raise RuntimeError(f"could not place events in test video {vi}; try longer videos")
        test.append(video)
        labels.append(lab)
        events.append(evs)
        requested.append(req)
    info = dict(scene=name, period=sc.period, height=int(height), width=int(width), frames_per_video=n,
                seed=seed, anomalies=tuple(kinds), train_seeds=train_seeds, test_seeds=test_seeds,
                requested_events=requested, **opts)
    return Dataset(train=train, test=test, labels=labels, events=events, scene=name, info=info)


# =============================================================================================
# IPAD and real footage
# =============================================================================================

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _natural_key(name: str):
    """Sort key so that "2.jpg" < "10.jpg" and "video2" < "video10"."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower()) for t in re.split(r"(\d+)", name) if t != ""]


def _natural_sorted(names):
    return sorted(names, key=_natural_key)


def _pil():
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading and resizing frames needs Pillow: pip install pillow") from e
    return Image


def _bicubic(Image):
    return getattr(Image, "Resampling", Image).BICUBIC


def _workers(workers: Optional[int]) -> int:
    return max(1, min(8, os.cpu_count() or 1) if not workers else int(workers))


def _read_frame(path: str, size: Optional[Tuple[int, int]], draft: bool = False) -> np.ndarray:
    Image = _pil()
    with Image.open(path) as im:
        if draft and size is not None:  # JPEG: decode at 1/2, 1/4 or 1/8 scale, still ≥ 2× the target
            im.draft("RGB", (2 * size[0], 2 * size[1]))
        im = im.convert("RGB")
        if size is not None and im.size != size:
            im = im.resize(size, _bicubic(Image))
        return np.asarray(im, dtype=np.uint8)


def _size(height, width) -> Optional[Tuple[int, int]]:
    if (height is None) != (width is None):
        raise ValueError("give both height and width, or neither (native size)")
    if height is None:
        return None
    if int(height) < 1 or int(width) < 1:
        raise ValueError(f"height and width must be positive, got {height}×{width}")
    return int(width), int(height)


def resize_video(video: np.ndarray, height: int, width: int, *, workers: Optional[int] = None) -> np.ndarray:
    """Resizes uint8 RGB frames (n, H, W, 3) to (n, height, width, 3) with Pillow's bicubic
    filter, which antialiases when shrinking (as the released loader, spec §4)."""
    v = np.asarray(video)
    if v.ndim != 4 or v.shape[-1] != 3 or v.dtype != np.uint8:
        raise ValueError(f"video must be uint8 RGB frames (n, H, W, 3), got {v.dtype} {v.shape}")
    size = _size(height, width)
    if v.shape[1:3] == (size[1], size[0]):
        return v.copy()
    Image = _pil()
    out = np.empty((v.shape[0], size[1], size[0], 3), np.uint8)

    def one(i):
        out[i] = np.asarray(Image.fromarray(v[i]).resize(size, _bicubic(Image)), dtype=np.uint8)

    if v.shape[0] > 8 and _workers(workers) > 1:
        with ThreadPoolExecutor(_workers(workers)) as pool:
            list(pool.map(one, range(v.shape[0])))
    else:
        for i in range(v.shape[0]):
            one(i)
    return out


def _listing(path: str, dirs_only=True) -> str:
    try:
        names = [e.name for e in os.scandir(path) if (e.is_dir() or not dirs_only)]
    except OSError:
        return "(unreadable)"
    return ", ".join(_natural_sorted(names)) or "(nothing)"


def _read_video_folder(folder: str, size, workers, draft=False) -> np.ndarray:
    files = _natural_sorted([e.name for e in os.scandir(folder)
                             if e.is_file() and os.path.splitext(e.name)[1].lower() in _IMAGE_EXTENSIONS])
    if not files:
        raise ValueError(f"video folder {folder} holds no frames ({'/'.join(_IMAGE_EXTENSIONS)})")
    paths = [os.path.join(folder, f) for f in files]
    first = _read_frame(paths[0], size, draft)
    out = np.empty((len(paths),) + first.shape, np.uint8)
    out[0] = first

    def one(i):
        frame = _read_frame(paths[i], size, draft)
        if frame.shape != first.shape:
            raise ValueError(f"{paths[i]} is {frame.shape[1]}×{frame.shape[0]}, the first frame of the video is "
                             f"{first.shape[1]}×{first.shape[0]}; give height and width to resize them all")
        out[i] = frame

    if len(paths) > 1:
        if workers > 1:
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(one, range(1, len(paths))))
        else:
            for i in range(1, len(paths)):
                one(i)
    return out


def _as_labels(value, where: str) -> np.ndarray:
    lab = np.asarray(value)
    if lab.dtype == object:
        raise ValueError(f"labels {where} are not a numeric array")
    lab = lab.reshape(-1)
    if lab.size and not np.isin(np.unique(lab), (0, 1)).all():
        raise ValueError(f"labels {where} must be 0/1 per frame, found values {np.unique(lab)[:10]}")
    return lab.astype(np.int64)


def _mat_labels(path: str, count: int) -> List[np.ndarray]:
    try:
        import scipy.io
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"reading the labels in {path} needs SciPy: pip install scipy") from e
    mat = scipy.io.loadmat(path, squeeze_me=True)
    if "gt" not in mat:
        raise ValueError(f"{path} has no 'gt' entry (entries: {', '.join(k for k in mat if not k.startswith('__'))})")
    gt = mat["gt"]
    if gt.dtype == object:
        items = [gt.item()] if gt.ndim == 0 else list(gt.reshape(-1))
    elif gt.ndim == 2 and gt.shape[0] == count:
        items = list(gt)
    elif gt.ndim <= 1 and count == 1:
        items = [gt]
    else:
        raise ValueError(f"'gt' in {path} has shape {gt.shape}; expected one label array per test video ({count})")
    if len(items) != count:
        raise ValueError(f"'gt' in {path} holds {len(items)} label arrays, the testing split has {count} videos")
    return [_as_labels(x, f"{path} [{i}]") for i, x in enumerate(items)]


def load_ipad(root, category: str, split: str = "training", height: Optional[int] = 224, width: Optional[int] = 288,
              *, videos: Optional[Sequence] = None, labels: str = "auto", workers: Optional[int] = None,
              draft: bool = False):
    """Loads one IPAD category (spec §6).

    Layout: ``ROOT/<CAT>/training/frames/<NN>/<k>.jpg`` and ``ROOT/<CAT>/testing/frames/<NN>/<k>.jpg``
    (video folders and frames in natural order, so 2.jpg comes before 10.jpg); test labels from
    ``ROOT/<CAT>/test_label/<NN>.npy`` (per-frame 0/1) or from ``ROOT/<CAT>/<CAT>.mat`` (key
    ``gt``, one array per test video, as the released INFP code reads them).

    Args:
        root: the IPAD folder; category: e.g. "S01" or "R03".
        split: "training" or "testing" ("train"/"test" also accepted).
        height, width: model frame size; frames are resized with Pillow's bicubic filter (which
            antialiases when shrinking, as the released loader). ``None`` keeps the native size.
        videos: optional subset, as folder names ("01") or positions in the natural order.
        labels: "auto" (``test_label/*.npy`` if that folder exists, else the .mat), "npy" or "mat".
        workers: threads decoding frames (default: up to 8).
        draft: let libjpeg decode at a reduced scale (still at least twice the target size)
            before the bicubic resize: several times faster on IPAD's 2492×988 frames, but the
            pixels differ slightly from the released loader's. Off by default.
    Returns:
        training: a list of uint8 videos (n, H, W, 3); testing: (videos, labels) with labels a
        list of int64 (n,) arrays.
    """
    split = {"train": "training", "test": "testing"}.get(split, split)
    if split not in ("training", "testing"):
        raise ValueError(f"split must be 'training' or 'testing', got {split!r}")
    if labels not in ("auto", "npy", "mat"):
        raise ValueError(f"labels must be 'auto', 'npy' or 'mat', got {labels!r}")
    size = _size(height, width)
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"IPAD root {root} does not exist")
    cat_dir = os.path.join(root, str(category))
    if not os.path.isdir(cat_dir):
        raise FileNotFoundError(f"no category {category!r} in {root}; categories there: {_listing(root)}")
    frames_dir = os.path.join(cat_dir, split, "frames")
    if not os.path.isdir(frames_dir):
        raise FileNotFoundError(f"{frames_dir} does not exist; {cat_dir} holds: {_listing(cat_dir, dirs_only=False)}")
    names = _natural_sorted([e.name for e in os.scandir(frames_dir) if e.is_dir()])
    if not names:
        raise ValueError(f"{frames_dir} holds no video folders")
    if videos is None:
        picked = list(range(len(names)))
    else:
        picked = []
        for v in videos:
            if isinstance(v, (int, np.integer)):
                if not 0 <= int(v) < len(names):
                    raise IndexError(f"video {v} out of range: {frames_dir} has {len(names)} videos")
                picked.append(int(v))
            elif str(v) in names:
                picked.append(names.index(str(v)))
            else:
                raise FileNotFoundError(f"no video folder {v!r} in {frames_dir}; videos: {', '.join(names)}")
    nw = _workers(workers)
    out = [_read_video_folder(os.path.join(frames_dir, names[i]), size, nw, bool(draft)) for i in picked]
    if split == "training":
        return out

    label_dir = os.path.join(cat_dir, "test_label")
    mat_path = os.path.join(cat_dir, f"{category}.mat")
    source = labels
    if source == "auto":
        source = "npy" if os.path.isdir(label_dir) else "mat"
    if source == "npy":
        if not os.path.isdir(label_dir):
            raise FileNotFoundError(f"no label folder {label_dir}" + (f" (there is {mat_path}: use labels='mat')"
                                                                        if os.path.isfile(mat_path) else ""))
        labs = []
        for i in picked:
            p = os.path.join(label_dir, names[i] + ".npy")
            if not os.path.isfile(p):
                raise FileNotFoundError(f"no labels {p} for test video {names[i]}; {label_dir} holds: "
                                        f"{_listing(label_dir, dirs_only=False)}")
            labs.append(_as_labels(np.load(p, allow_pickle=False), f"in {p}"))
    else:
        if not os.path.isfile(mat_path):
            raise FileNotFoundError(f"no test labels for {category}: neither {label_dir}/<video>.npy nor {mat_path} exist")
        all_labs = _mat_labels(mat_path, len(names))
        labs = [all_labs[i] for i in picked]
    for i, v, lab in zip(picked, out, labs):
        if lab.shape[0] != v.shape[0]:
            raise ValueError(f"labels of test video {names[i]} have {lab.shape[0]} frames, the video has {v.shape[0]}")
    return out, labs


# =============================================================================================
# Model inputs and clips
# =============================================================================================

def to_model_input(video: np.ndarray) -> np.ndarray:
    """uint8 RGB (n, H, W, 3) → float32 (n, 3, H, W) in [−1, 1] (x / 127.5 − 1, spec §4).
    One frame (H, W, 3) gives (3, H, W)."""
    v = np.asarray(video)
    if v.dtype != np.uint8 or v.ndim not in (3, 4) or v.shape[-1] != 3:
        raise ValueError(f"expected uint8 RGB frames (n, H, W, 3) or one frame (H, W, 3), got {v.dtype} {v.shape}")
    x = v.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float (n, 3, H, W) or (3, H, W) in [−1, 1] → uint8 RGB (n, H, W, 3) / (H, W, 3), rounded
    and clipped: the inverse of :func:`to_model_input` (e.g. to look at predicted frames)."""
    a = np.asarray(x, np.float32)
    if a.ndim not in (3, 4) or a.shape[-3] != 3:
        raise ValueError(f"expected float frames (n, 3, H, W) or (3, H, W), got {a.shape}")
    return np.ascontiguousarray(np.moveaxis(np.clip(np.rint((a + 1) * 127.5), 0, 255).astype(np.uint8), -3, -1))


def _float_video(video, name="video") -> np.ndarray:
    v = np.asarray(video)
    if v.ndim != 4:
        raise ValueError(f"{name} must be (n, C, H, W) float frames, got shape {v.shape}")
    if v.dtype == np.uint8:
        raise ValueError(f"{name} is uint8 (n, H, W, 3): convert it with infp.data.to_model_input first")
    return np.ascontiguousarray(v, dtype=np.float32)


def clips(video_float: np.ndarray, step: int = 1, *, frames: int = 4) -> Tuple[np.ndarray, np.ndarray]:
    """Sliding windows for scoring (spec §5): target frames t = frames, frames+step, … ≤ n−1,
    each with its inputs t−frames … t−1.

    Args:
        video_float: float32 (n, 3, H, W) in [−1, 1] (:func:`to_model_input`), n > frames.
        step: distance between consecutive targets.
    Returns:
        (clips (m, frames, 3, H, W), targets (m, 3, H, W)), read-only views into the video (no
        copy; ``np.ascontiguousarray(clips[i:j])`` materialises a batch).
    """
    v = _float_video(video_float, "video_float")
    step, frames = int(step), int(frames)
    if step < 1 or frames < 1:
        raise ValueError(f"step and frames must be positive, got step={step}, frames={frames}")
    n = v.shape[0]
    if n <= frames:
        raise ValueError(f"a video needs more than {frames} frames to make clips, got {n}")
    m = (n - 1 - frames) // step + 1
    s0 = v.strides[0]
    cl = np.lib.stride_tricks.as_strided(v, shape=(m, frames) + v.shape[1:], strides=(step * s0,) + v.strides,
                                         writeable=False)
    tg = np.lib.stride_tricks.as_strided(v[frames:], shape=(m,) + v.shape[1:], strides=(step * s0,) + v.strides[1:],
                                         writeable=False)
    return cl, tg


def training_clips(videos, seed: int = 0, *, frames: int = 4) -> np.ndarray:
    """The released training sampler (spec §4), as indices instead of materialised clips.

    Per video of length n: starts ``range(0, n // L * L, step)`` with L = frames + 1 (5) and
    step 2 if n > 100 else 1, keeping a start only if the clip (L frames) fits in the video;
    all clips of all videos are shuffled with ``seed``. (Batching with drop_last is up to
    the caller.)

    Args:
        videos: list of videos (any array with frames first) or of their lengths.
    Returns:
        int64 (m, 2): (video index, start frame) per clip; clip = video[start : start+frames]
        and target = video[start+frames] (see :func:`take_clips`).
    """
    L = int(frames) + 1
    rows = []
    for i, v in enumerate(videos):
        n = int(v) if np.ndim(v) == 0 else len(v)
        step = 2 if n > 100 else 1
        starts = np.arange(0, n // L * L, step, dtype=np.int64)
        starts = starts[starts + L <= n]
        rows.append(np.stack([np.full_like(starts, i), starts], axis=1))
    idx = np.concatenate(rows) if rows else np.zeros((0, 2), np.int64)
    return idx[np.random.default_rng(seed).permutation(len(idx))]


def take_clips(videos, index, *, frames: int = 4) -> Tuple[np.ndarray, np.ndarray]:
    """Materialises clips chosen by :func:`training_clips` (e.g. one batch of it).

    Args:
        videos: list of videos, uint8 (n, H, W, 3) (converted with :func:`to_model_input`) or
            float32 (n, 3, H, W) in [−1, 1].
        index: int (B, 2) rows of (video index, start).
    Returns:
        (clips float32 (B, frames, 3, H, W), targets float32 (B, 3, H, W)).
    """
    idx = np.asarray(index, np.int64).reshape(-1, 2)
    xs = []
    for vi, st in idx.tolist():
        v = videos[vi]
        if st < 0 or st + frames + 1 > len(v):
            raise IndexError(f"clip ({vi}, {st}) does not fit in video {vi} of {len(v)} frames")
        part = v[st:st + frames + 1]
        xs.append(to_model_input(part) if np.asarray(part).dtype == np.uint8 else np.asarray(part, np.float32))
    if not xs:
        raise ValueError("index is empty")
    stack = np.stack(xs)
    return np.ascontiguousarray(stack[:, :frames]), np.ascontiguousarray(stack[:, frames])


# =============================================================================================
# Raw video files
# =============================================================================================

#: First 8 bytes of a raw video file.
RAW_MAGIC = b"INFPRAW1"
#: Size of the raw video header in bytes.
RAW_HEADER_SIZE = 32
_RAW_HEADER = struct.Struct("<8sIIII8s")


def write_raw_video(path, video: np.ndarray) -> None:
    """Writes frames in the INFP raw video format, for C/C++ line software examples.

    Format (all integers little-endian)::

        offset  size  field
        0       8     magic b"INFPRAW1"
        8       4     uint32 frames   (n)
        12      4     uint32 height   (H)
        16      4     uint32 width    (W)
        20      4     uint32 channels (3, RGB)
        24      8     reserved, zero
        32      n·H·W·3  uint8 pixels: frame after frame, each row-major (row, column, RGB),
                      i.e. exactly a C-contiguous NumPy array (n, H, W, 3)

    A reader checks the magic, that channels == 3 and that the file holds exactly
    32 + n·H·W·3 bytes. The file is written atomically (temporary file, then rename).

    Args:
        path: file to write. video: uint8 (n, H, W, 3).
    """
    v = np.asarray(video)
    if v.dtype != np.uint8 or v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"video must be uint8 RGB frames (n, H, W, 3), got {v.dtype} {v.shape}")
    if max(v.shape[:3]) >= 2 ** 32:
        raise ValueError(f"video of shape {v.shape} is too large for the raw format")
    path = os.fspath(path)
    header = _RAW_HEADER.pack(RAW_MAGIC, v.shape[0], v.shape[1], v.shape[2], 3, b"\0" * 8)

    def write(f):
        f.write(header)
        f.write(np.ascontiguousarray(v).tobytes())

    write_atomically(path, write)


def read_raw_video(path, *, mmap: bool = False) -> np.ndarray:
    """Reads a file written by :func:`write_raw_video` (format there): uint8 (n, H, W, 3).
    With ``mmap``, returns a read-only memory map instead of reading the pixels."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(RAW_HEADER_SIZE)
    if len(head) < RAW_HEADER_SIZE or head[:8] != RAW_MAGIC:
        raise ValueError(f"{path} is not an INFP raw video (magic {RAW_MAGIC!r} expected)")
    _, n, h, w, c, _ = _RAW_HEADER.unpack(head)
    if c != 3:
        raise ValueError(f"{path}: {c} channels, only 3 (RGB) are supported")
    want = RAW_HEADER_SIZE + n * h * w * c
    if size != want:
        raise ValueError(f"{path}: header says {n} frames of {h}×{w}×{c} ({want} bytes with the header), "
                         f"the file has {size} bytes")
    if mmap:
        return np.memmap(path, np.uint8, mode="r", offset=RAW_HEADER_SIZE, shape=(n, h, w, c))
    return np.fromfile(path, np.uint8, offset=RAW_HEADER_SIZE).reshape(n, h, w, c)


# Real footage: video files (PyAV, imported when a file is read), frame folders and label files.
from .video import iter_video, load_labels, load_video, load_videos, video_sources  # noqa: E402
