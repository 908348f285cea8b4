"""Frame-level evaluation metrics (INFP-SPEC §5), computed by libinfp.

    >>> infp.metrics.frame_auc([model.score(v) for v in test_videos], labels)
"""

from __future__ import annotations

import ctypes
from ctypes import POINTER, byref, c_double, c_int32, c_int64
from typing import Sequence, Tuple

import numpy as np

from ._lib import check, lib

__all__ = ["roc_auc", "roc_curve", "frame_auc", "macro_auc"]

_D = POINTER(c_double)
_I32 = POINTER(c_int32)

def _labels(labels, name="labels") -> np.ndarray:
    a = np.asarray(labels)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if a.size and not np.isin(a, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0 (normal) and 1 (anomalous)")
    return np.ascontiguousarray(a, dtype=np.int32)


def _scores(scores, name="scores") -> np.ndarray:
    a = np.ascontiguousarray(scores, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def _pair(labels, scores):
    l, s = _labels(labels), _scores(scores)
    if l.size != s.size:
        raise ValueError(f"labels has {l.size} entries but scores has {s.size}")
    if l.size == 0:
        raise ValueError("labels and scores are empty")
    return l, s


def roc_auc(labels, scores) -> float:
    """Area under the ROC curve; ``scores`` higher = more anomalous; ties count ½
    (equal to scikit-learn's ``roc_auc_score(labels, scores)``)."""
    l, s = _pair(labels, scores)
    out = c_double()
    check(lib.infp_roc_auc(l.ctypes.data_as(_I32), s.ctypes.data_as(_D), l.size, byref(out)))
    return out.value


def roc_curve(labels, scores) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), from the highest threshold down, starting at (0, 0, inf)."""
    l, s = _pair(labels, scores)
    cap = l.size + 1
    fpr, tpr, thr = np.empty(cap), np.empty(cap), np.empty(cap)
    n = c_int64()
    check(lib.infp_roc_curve(l.ctypes.data_as(_I32), s.ctypes.data_as(_D), l.size,
                             fpr.ctypes.data_as(_D), tpr.ctypes.data_as(_D), thr.ctypes.data_as(_D), cap, byref(n)))
    return fpr[: n.value], tpr[: n.value], thr[: n.value]


def _per_video(fn, psnr_per_video: Sequence, labels_per_video: Sequence) -> float:
    if len(psnr_per_video) != len(labels_per_video):
        raise ValueError(f"scores for {len(psnr_per_video)} videos but labels for {len(labels_per_video)}")
    if not len(psnr_per_video):
        raise ValueError("no videos given")
    ps = [_scores(p, f"scores[{i}]") for i, p in enumerate(psnr_per_video)]
    ls = [_labels(l, f"labels[{i}]") for i, l in enumerate(labels_per_video)]
    n = len(ps)
    pp = (_D * n)(*[p.ctypes.data_as(_D) for p in ps])
    lp = (_I32 * n)(*[l.ctypes.data_as(_I32) for l in ls])
    pc = (c_int64 * n)(*[p.size for p in ps])
    lc = (c_int64 * n)(*[l.size for l in ls])
    out = c_double()
    check(fn(pp, pc, lp, lc, n, byref(out)))
    return out.value


def frame_auc(psnr_per_video: Sequence, labels_per_video: Sequence) -> float:
    """Frame-level AUC of the field's protocol (spec §5).

    Args:
        psnr_per_video: per test video, the PSNR of frames 4..n-1 (``Model.score``);
            higher = more normal. Min-max normalised within each video.
        labels_per_video: per video, 0/1 labels of all n frames (the first 4 are dropped)
            or of frames 4..n-1.
    """
    return _per_video(lib.infp_frame_auc, psnr_per_video, labels_per_video)


def macro_auc(psnr_per_video: Sequence, labels_per_video: Sequence) -> float:
    """Mean of per-video frame AUCs (videos holding one class only are skipped)."""
    return _per_video(lib.infp_macro_auc, psnr_per_video, labels_per_video)
