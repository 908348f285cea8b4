"""infp.metrics against scikit-learn and an independent NumPy implementation of the evaluation
protocol (INFP-SPEC §5): ROC AUC, ROC curve, frame-level AUC, macro AUC, and input errors."""

import numpy as np
import pytest

import infp
from infp import InfpError, metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")


# ---- independent reference of spec §5 ---------------------------------------------------

def ref_normalise(psnr):
    """Per-video min-max normalisation; a flat video normalises to 1 (spec §5)."""
    p = np.asarray(psnr, np.float64)
    lo, hi = p.min(), p.max()
    if hi == lo:
        return np.ones_like(p)
    return (p - lo) / (hi - lo)


def ref_labels(labels, n_psnr):
    """Labels of frames 4..n-1: drop the first 4 when all n frames are labelled."""
    lab = np.asarray(labels)
    if lab.size == n_psnr + 4:
        return lab[4:]
    assert lab.size == n_psnr
    return lab


def ref_frame_auc(psnr_per_video, labels_per_video):
    s = np.concatenate([ref_normalise(p) for p in psnr_per_video])
    l = np.concatenate([ref_labels(l, len(p)) for p, l in zip(psnr_per_video, labels_per_video)])
    return sklearn_metrics.roc_auc_score(l, -s)  # higher PSNR = more normal


def ref_macro_auc(psnr_per_video, labels_per_video):
    aucs = []
    for p, l in zip(psnr_per_video, labels_per_video):
        lab = ref_labels(l, len(p))
        if lab.min() == lab.max():
            continue
        aucs.append(sklearn_metrics.roc_auc_score(lab, -ref_normalise(p)))
    return float(np.mean(aucs))


def make_videos(rng, lengths, with_flat=False):
    """PSNR traces (frames 4..n-1) and labels of all n frames, with anomalies that lower PSNR
    (imperfectly, so the AUC is strictly between 0 and 1) and videos on different PSNR scales."""
    psnrs, labels = [], []
    for i, n in enumerate(lengths):
        lab = np.zeros(n, np.int64)
        start = int(rng.integers(5, n - 6))
        lab[start:start + int(rng.integers(3, 6))] = 1
        base = 20.0 + 6.0 * i  # per-video offset: normalisation matters
        p = base + rng.normal(0, 1.0, n - 4) - 2.0 * lab[4:] * rng.uniform(0.3, 1.5, n - 4)
        psnrs.append(p)
        labels.append(lab)
    if with_flat:
        n = 14
        lab = np.zeros(n, np.int64)
        lab[8:11] = 1
        psnrs.append(np.full(n - 4, 27.5))
        labels.append(lab)
    return psnrs, labels


# ---- roc_auc -----------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 7, 100, 3001])
def test_roc_auc_matches_sklearn_random(rng, n):
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]
    scores = rng.normal(size=n) + 0.7 * labels
    got = metrics.roc_auc(labels, scores)
    assert isinstance(got, float)
    assert got == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12)


@pytest.mark.parametrize("levels", [1, 2, 3, 5, 20])
def test_roc_auc_matches_sklearn_heavily_tied(rng, levels):
    n = 2000
    labels = rng.integers(0, 2, n)
    scores = rng.integers(0, levels, n).astype(np.float64) + 0.3 * labels * rng.integers(0, 2, n)
    scores = np.round(scores)  # many exact ties, some across classes
    want = sklearn_metrics.roc_auc_score(labels, scores)
    assert metrics.roc_auc(labels, scores) == pytest.approx(want, abs=1e-12)
    if levels == 1:
        assert metrics.roc_auc(labels, scores) == 0.5  # all tied: 1/2 by the tie rule


def test_roc_auc_extremes_and_orientation():
    labels = np.array([0, 0, 0, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    assert metrics.roc_auc(labels, scores) == 1.0
    assert metrics.roc_auc(labels, -scores) == 0.0
    # one tie across classes counts 1/2 out of 6 pairs
    assert metrics.roc_auc([0, 0, 1, 1], [0.1, 0.5, 0.5, 0.9]) == pytest.approx(3.5 / 4)


def test_roc_auc_accepts_lists_bools_and_int_scores():
    assert metrics.roc_auc([False, True, False, True], [1, 3, 2, 4]) == pytest.approx(
        sklearn_metrics.roc_auc_score([0, 1, 0, 1], [1, 3, 2, 4]), abs=1e-12)


# ---- roc_curve ---------------------------------------------------------------------------

@pytest.mark.parametrize("tied", [False, True])
def test_roc_curve_shape_and_area(rng, tied):
    n = 500
    labels = rng.integers(0, 2, n)
    scores = rng.normal(size=n) + labels
    if tied:
        scores = np.round(scores * 2) / 2
    fpr, tpr, thr = metrics.roc_curve(labels, scores)
    assert fpr.shape == tpr.shape == thr.shape
    assert 2 <= fpr.size <= n + 1
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and thr[0] == np.inf
    assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.all(np.diff(thr) < 0)  # from the highest threshold down, distinct
    assert np.all((fpr >= 0) & (fpr <= 1) & (tpr >= 0) & (tpr <= 1))
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert area == pytest.approx(metrics.roc_auc(labels, scores), abs=1e-12)
    # the points are those of scikit-learn's full curve (one point per distinct score)
    sf, st, sth = sklearn_metrics.roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sf, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tpr, st, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(thr[1:], sth[1:])


def test_roc_curve_small_by_hand():
    fpr, tpr, thr = metrics.roc_curve([0, 1, 0, 1], [0.1, 0.9, 0.5, 0.5])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.5, 0.1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 1, 1])
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 1])


# ---- frame_auc (spec §5) -----------------------------------------------------------------

@pytest.mark.parametrize("layout", ["all_frames", "scored_frames"])
def test_frame_auc_matches_protocol(rng, layout):
    psnrs, labels = make_videos(rng, [20, 33, 15, 41])
    if layout == "scored_frames":
        labels = [l[4:] for l in labels]
    got = metrics.frame_auc(psnrs, labels)
    want = ref_frame_auc(psnrs, labels)
    assert 0.0 < want < 1.0
    assert got == pytest.approx(want, abs=1e-12)


def test_frame_auc_label_layouts_agree_and_mix(rng):
    psnrs, labels = make_videos(rng, [18, 25, 30])
    full = metrics.frame_auc(psnrs, labels)
    short = metrics.frame_auc(psnrs, [l[4:] for l in labels])
    mixed = metrics.frame_auc(psnrs, [labels[0], labels[1][4:], labels[2]])
    assert full == short == mixed


def test_frame_auc_drops_the_first_four_labels():
    # With labels of all n frames, the first 4 (unscored) frames must not count: putting the
    # only anomalies there leaves one class, whatever the scores.
    psnr = np.array([30.0, 29.0, 10.0, 31.0])  # frames 4..7
    labels_all = np.array([1, 0, 0, 0, 0, 0, 1, 0])  # frame 0 anomalous (dropped), frame 6
    assert metrics.frame_auc([psnr], [labels_all]) == 1.0  # frame 6 has the lowest PSNR
    # (keeping labels 0..3 instead of 4..7 would have given a different answer)
    assert ref_frame_auc([psnr], [labels_all[:4]]) != 1.0


def test_frame_auc_normalises_per_video():
    # Video A has high PSNR everywhere, video B low; without per-video normalisation every
    # frame of B would rank as more anomalous than every frame of A.
    a = np.array([40.0, 41.0, 39.0, 42.0, 38.0])
    b = np.array([20.0, 21.0, 19.0, 22.0, 18.0])
    la = np.array([0, 0, 0, 0, 1])   # lowest PSNR of A is anomalous
    lb = np.array([0, 0, 0, 0, 1])   # lowest PSNR of B is anomalous
    assert metrics.frame_auc([a, b], [la, lb]) == 1.0
    raw = sklearn_metrics.roc_auc_score(np.r_[la, lb], -np.r_[a, b])
    assert raw < 1.0
    # normalisation is invariant to per-video affine rescaling with a positive factor
    assert metrics.frame_auc([3 * a + 7, b - 100], [la, lb]) == 1.0


def test_frame_auc_flat_video_normalises_to_one(rng):
    psnrs, labels = make_videos(rng, [22, 30], with_flat=True)
    got = metrics.frame_auc(psnrs, labels)
    assert np.isfinite(got)
    assert got == pytest.approx(ref_frame_auc(psnrs, labels), abs=1e-12)
    # s = 1 (most normal), not 0 (most anomalous): the two readings give different AUCs here
    s0 = np.concatenate([ref_normalise(p) for p in psnrs[:-1]] + [np.zeros(len(psnrs[-1]))])
    l = np.concatenate([ref_labels(l, len(p)) for p, l in zip(psnrs, labels)])
    assert got != pytest.approx(sklearn_metrics.roc_auc_score(l, -s0), abs=1e-6)


def test_frame_auc_single_flat_video_is_one_half():
    assert metrics.frame_auc([np.full(6, 25.0)], [[0, 0, 0, 0, 0, 1, 1, 0, 0, 0]]) == 0.5


# ---- macro_auc ---------------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["all_frames", "scored_frames"])
def test_macro_auc_is_mean_of_per_video_aucs(rng, layout):
    psnrs, labels = make_videos(rng, [20, 33, 15, 41], with_flat=True)
    if layout == "scored_frames":
        labels = [l[4:] for l in labels]
    per_video = [sklearn_metrics.roc_auc_score(ref_labels(l, len(p)), -np.asarray(p))
                 for p, l in zip(psnrs, labels)]
    got = metrics.macro_auc(psnrs, labels)
    assert got == pytest.approx(np.mean(per_video), abs=1e-12)
    assert got == pytest.approx(ref_macro_auc(psnrs, labels), abs=1e-12)
    assert got != pytest.approx(metrics.frame_auc(psnrs, labels), abs=1e-9)


def test_macro_auc_skips_one_class_videos(rng):
    psnrs, labels = make_videos(rng, [20, 25])
    normal_only = rng.normal(30, 1, 12)
    all_anomalous = rng.normal(30, 1, 8)
    ps = psnrs + [normal_only, all_anomalous]
    ls = labels + [np.zeros(16, np.int64), np.ones(8, np.int64)]
    assert metrics.macro_auc(ps, ls) == pytest.approx(metrics.macro_auc(psnrs, labels), abs=1e-15)
    assert metrics.macro_auc(ps, ls) == pytest.approx(ref_macro_auc(psnrs, labels), abs=1e-12)


# ---- errors ------------------------------------------------------------------------------

def raises_with_message(fn, *args, match):
    with pytest.raises((ValueError, InfpError), match=match) as e:
        fn(*args)
    assert str(e.value).strip()
    return e.value


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1, 1]])
def test_roc_auc_one_class(labels):
    e = raises_with_message(metrics.roc_auc, labels, [0.1, 0.2, 0.3], match="both normal and anomalous")
    assert isinstance(e, InfpError) and e.status_name == "invalid argument"
    raises_with_message(metrics.roc_curve, labels, [0.1, 0.2, 0.3], match="both normal and anomalous")


def test_metric_errors_length_mismatch():
    raises_with_message(metrics.roc_auc, [0, 1], [0.1, 0.2, 0.3], match=r"2 entries.*3")
    raises_with_message(metrics.roc_curve, [0, 1, 0], [0.1, 0.2], match=r"3 entries.*2")
    # per video: labels must have n (all frames) or n - 4 (scored frames) entries
    e = raises_with_message(metrics.frame_auc, [np.arange(6.0)], [[0, 1] * 4 + [0]], match=r"6 scores.*9 labels")
    assert "10" in str(e)
    raises_with_message(metrics.macro_auc, [np.arange(6.0)], [[0, 1] * 4 + [0]], match=r"6 scores.*9 labels")
    # number of videos
    raises_with_message(metrics.frame_auc, [np.arange(6.0), np.arange(6.0)], [[0, 1] * 3], match=r"2 videos.*1")


@pytest.mark.parametrize("bad", [[0, 2, 1, 0], [0, -1, 1, 0], [0.0, 0.5, 1.0, 0.0]])
def test_metric_errors_labels_not_binary(bad):
    scores = [0.1, 0.2, 0.3, 0.4]
    raises_with_message(metrics.roc_auc, bad, scores, match="0.*1")
    raises_with_message(metrics.roc_curve, bad, scores, match="0.*1")
    raises_with_message(metrics.frame_auc, [scores], [bad], match="0.*1")
    raises_with_message(metrics.macro_auc, [scores], [bad], match="0.*1")


def test_c_api_rejects_labels_not_binary():
    """The library checks labels itself, not only the Python wrapper."""
    import ctypes
    from infp._lib import lib
    labels = np.array([0, 2, 1], np.int32)
    scores = np.array([0.1, 0.2, 0.3])
    out = ctypes.c_double(-1)
    status = lib.infp_roc_auc(labels.ctypes.data_as(ctypes.POINTER(ctypes.c_int32)),
                              scores.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), 3, ctypes.byref(out))
    assert status == infp._lib.ERR_INVALID_ARGUMENT
    assert "found 2" in infp._lib.last_error()


@pytest.mark.parametrize("where", [1, 3])
def test_metric_errors_nan_scores(where):
    scores = np.array([30.0, 29.0, 28.0, 27.0, 26.0])
    scores[where] = np.nan
    labels = [0, 1, 0, 1, 0]
    raises_with_message(metrics.roc_auc, labels, scores, match="NaN")
    raises_with_message(metrics.roc_curve, labels, scores, match="NaN")
    raises_with_message(metrics.frame_auc, [scores], [labels], match="NaN")
    raises_with_message(metrics.macro_auc, [scores], [labels], match="NaN")


@pytest.mark.parametrize("fn", [metrics.frame_auc, metrics.macro_auc])
@pytest.mark.parametrize("scores", [[np.nan, 1.0, 2.0, 3.0], [np.nan] * 4])
def test_metric_errors_leading_nan_score(fn, scores):
    raises_with_message(fn, [np.array(scores)], [[1, 0, 1, 0]], match="NaN")


def test_metric_errors_empty_input():
    raises_with_message(metrics.roc_auc, [], [], match="empty")
    raises_with_message(metrics.roc_curve, [], [], match="empty")
    raises_with_message(metrics.frame_auc, [], [], match="no videos")
    raises_with_message(metrics.macro_auc, [], [], match="no videos")


def test_metric_errors_one_class_over_all_videos():
    e = raises_with_message(metrics.frame_auc, [[1.0, 2.0, 3.0], [4.0, 5.0]], [[0, 0, 0], [0, 0]],
                            match="both normal and anomalous")
    assert isinstance(e, InfpError)
    raises_with_message(metrics.macro_auc, [[1.0, 2.0, 3.0], [4.0, 5.0]], [[0, 0, 0], [1, 1]],
                        match="no video has both")


def test_metric_errors_not_one_dimensional():
    raises_with_message(metrics.roc_auc, [[0, 1]], [[0.1, 0.2]], match="one-dimensional")
    raises_with_message(metrics.frame_auc, [[[0.1, 0.2]]], [[0, 1]], match="one-dimensional")
