"""The expected-calibration-error family.

Notation: bin b holds n_b rows, ȳ_b is its observed rate and p̄_b its *mean* score (never the
bin midpoint); r_i = y_i − p_i. Bins follow :mod:`assay.stats.binning` (left-closed, last bin
closed, exact for decimal scores). Empty bins contribute nothing.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from assay._validation import AssayInputError, FloatArray, check_choice
from assay.stats.binning import BinSpec, bin_edges
from assay.stats.binstats import BinStats
from assay.stats.metrics.multiclass import binary_views
from assay.stats.metrics.sorted_scores import SortedScores

NORMS = ("l1", "l2", "max")


def _binned_error(
    views: list[tuple[FloatArray, FloatArray]],
    weight: FloatArray | None,
    n_bins: BinSpec,
    strategy: str,
    norm: str,
) -> float:
    errors = [
        BinStats.accumulate(y, p, bin_edges(p, n_bins, strategy), weight).calibration_error(norm)
        for y, p in views
    ]
    return float(np.mean(errors))


def expected_calibration_error(
    y_true: Any,
    y_prob: Any,
    *,
    n_bins: BinSpec = 15,
    strategy: str = "uniform",
    norm: str = "l1",
    mode: str = "top-label",
    sample_weight: Any = None,
) -> float:
    """Compute the binned expected calibration error (ECE).

    ECE_q = (Σ_b (n_b / n) |ȳ_b − p̄_b|^q)^(1/q) for ``norm`` "l1" (q = 1) or "l2" (q = 2);
    ``norm="max"`` gives the maximum calibration error max_b |ȳ_b − p̄_b| over non-empty bins.
    Here n_b is the number of rows in bin b, ȳ_b their observed rate and p̄_b their *mean*
    score (never the bin midpoint). Bins are left-closed [lo, hi), the last one closed
    [lo, 1], so no row is dropped; empty bins contribute nothing. With ``sample_weight``
    every count and mean is weighted. A 2-D ``y_prob`` is first reduced to binary views:
    top-label (the argmax's probability against whether the argmax was right) or classwise
    (the mean of the K one-vs-rest errors).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 outcomes, or class indices 0 .. K − 1 when ``y_prob`` is 2-D.
    y_prob : array-like of shape (n,) or (n, K)
        P(y = 1) for binary; a probability matrix (rows summing to 1) for multiclass.
    n_bins : int or sequence of float, default=15
        Number of bins, or explicit strictly increasing edges inside [0, 1].
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins (tied scores are never split).
    norm : {"l1", "l2", "max"}, default="l1"
        How the per-bin gaps are combined; "max" gives the MCE.
    mode : {"top-label", "classwise"}, default="top-label"
        Multiclass reduction; ignored for 1-D ``y_prob``.
    sample_weight : array-like of shape (n,), optional
        Non-negative row weights, not all zero.

    Returns
    -------
    float
        The calibration error, in [0, 1].

    Raises
    ------
    AssayInputError
        On NaN/inf, probabilities outside [0, 1], labels other than 0/1 (or class indices),
        length mismatch, empty input, multiclass rows not summing to 1, negative or all-zero
        weights, invalid edges, or an unknown ``strategy``, ``norm`` or ``mode``.

    See Also
    --------
    maximum_calibration_error : The ``norm="max"`` case.
    debiased_calibration_error : The ℓ2 error with its sampling bias removed.
    smooth_calibration_error : A binning-free alternative.

    References
    ----------
    .. [1] M. P. Naeini, G. F. Cooper and M. Hauskrecht, "Obtaining well calibrated
       probabilities using Bayesian binning", Proc. AAAI Conference on Artificial
       Intelligence, 2015, pp. 2901–2907.
    .. [2] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On calibration of modern neural
       networks", Proc. ICML, PMLR 70, 2017, pp. 1321–1330 (the top-label view).
    .. [3] M. Kull, M. Perello-Nieto, M. Kängsepp, T. Silva Filho, H. Song and P. Flach,
       "Beyond temperature scaling: obtaining well-calibrated multiclass probabilities with
       Dirichlet calibration", NeurIPS 32, 2019 (the classwise view).

    Examples
    --------
    Two equal-width bins: [0, 0.5) holds the scores 0.1, 0.3, 0.35 (mean 0.25; 1 of 3
    converted) and [0.5, 1] holds 0.6, 0.8, 0.9 (mean 0.7667; 2 of 3 converted), so
    ECE = ½·|1/3 − 0.25| + ½·|2/3 − 0.7667| = ½·0.0833 + ½·0.1 = 0.0917.

    >>> from assay import expected_calibration_error
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> round(expected_calibration_error(y, p, n_bins=2), 4)
    0.0917
    >>> round(expected_calibration_error(y, p, n_bins=2, norm="max"), 4)
    0.1

    Top-label view of three classes: the confidences 0.8, 0.6, 0.5 promise 1.9 correct
    answers out of 3 and 2 were correct, so one bin gives |2/3 − 1.9/3| = 0.0333.

    >>> probs = [[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.5, 0.3, 0.2]]
    >>> round(expected_calibration_error([0, 1, 2], probs, n_bins=1), 4)
    0.0333
    """
    check_choice(norm, "norm", NORMS)
    views, weight = binary_views(y_true, y_prob, mode, sample_weight)
    return _binned_error(views, weight, n_bins, strategy, norm)


def maximum_calibration_error(
    y_true: Any, y_prob: Any, *, n_bins: BinSpec = 15, strategy: str = "uniform"
) -> float:
    """Compute the maximum calibration error (MCE).

    MCE = max_b |ȳ_b − p̄_b| over the non-empty bins, ȳ_b the observed rate and p̄_b the mean
    score of bin b, with the binning conventions of :func:`expected_calibration_error`
    (left-closed bins, last bin closed). A 2-D ``y_prob`` uses the top-label view.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 outcomes, or class indices when ``y_prob`` is 2-D.
    y_prob : array-like of shape (n,) or (n, K)
        P(y = 1) for binary; a probability matrix for multiclass.
    n_bins : int or sequence of float, default=15
        Number of bins, or explicit edges.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins.

    Returns
    -------
    float
        The largest per-bin gap, in [0, 1].

    Raises
    ------
    AssayInputError
        On invalid inputs, as :func:`expected_calibration_error`.

    References
    ----------
    .. [1] M. P. Naeini, G. F. Cooper and M. Hauskrecht, "Obtaining well calibrated
       probabilities using Bayesian binning", Proc. AAAI Conference on Artificial
       Intelligence, 2015, pp. 2901–2907.

    Examples
    --------
    The two bins of the :func:`expected_calibration_error` example have gaps 0.0833 and 0.1.

    >>> from assay import maximum_calibration_error
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> round(maximum_calibration_error(y, p, n_bins=2), 4)
    0.1
    """
    return expected_calibration_error(y_true, y_prob, n_bins=n_bins, strategy=strategy, norm="max")


def debiased_calibration_error(
    y_true: Any, y_prob: Any, *, n_bins: BinSpec = 15, strategy: str = "quantile"
) -> float:
    """Compute the debiased ℓ2 calibration error (Kumar, Liang & Ma 2019).

    CE² = Σ_b (n_b/n) [(ȳ_b − p̄_b)² − ȳ_b(1 − ȳ_b)/(n_b − 1)], floored at 0, and the function
    returns CE = sqrt(CE²). The subtracted term is the unbiased estimate of Var(ȳ_b), which
    removes the upward bias of the plug-in squared gap; single-row bins get no correction.
    Multiclass input uses the top-label view.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 outcomes, or class indices when ``y_prob`` is 2-D.
    y_prob : array-like of shape (n,) or (n, K)
        P(y = 1) for binary; a probability matrix for multiclass.
    n_bins : int or sequence of float, default=15
        Number of bins, or explicit edges.
    strategy : {"uniform", "quantile"}, default="quantile"
        Equal-width or equal-mass bins (equal mass is the estimator's design).

    Returns
    -------
    float
        The debiased ℓ2 error CE ≥ 0.

    Raises
    ------
    AssayInputError
        On invalid inputs, as :func:`expected_calibration_error`.

    References
    ----------
    .. [1] A. Kumar, P. Liang and T. Ma, "Verified uncertainty calibration", NeurIPS 32,
       2019.

    Examples
    --------
    Scores 0.2 and 0.8, ten rows each, half of each converting: both gaps are 0.3 and each
    bin's rate has estimated variance 0.25/9, so CE = sqrt(0.09 − 0.25/9) = 0.2494, below the
    plug-in 0.3.

    >>> from assay import debiased_calibration_error
    >>> y = [0] * 5 + [1] * 5 + [0] * 5 + [1] * 5
    >>> p = [0.2] * 10 + [0.8] * 10
    >>> round(debiased_calibration_error(y, p, n_bins=2), 4)
    0.2494

    With three rows per bin the sampling noise explains the whole plug-in gap:

    >>> debiased_calibration_error([0, 0, 1, 0, 1, 1], [0.1, 0.3, 0.35, 0.6, 0.8, 0.9], n_bins=2)
    0.0
    """
    views, _ = binary_views(y_true, y_prob)
    y, p = views[0]
    return debiased_from_stats(BinStats.accumulate(y, p, bin_edges(p, n_bins, strategy)))


def debiased_from_stats(stats: BinStats) -> float:
    """Debiased ℓ2 calibration error from per-bin sums (see :func:`debiased_calibration_error`)."""
    mask = stats.nonempty
    n_b = stats.count[mask].astype(np.float64)
    rate = stats.observed_rate[mask]
    gap2 = (rate - stats.mean_prob[mask]) ** 2
    correction = np.zeros_like(n_b)
    multi = n_b > 1
    correction[multi] = rate[multi] * (1 - rate[multi]) / (n_b[multi] - 1)
    squared = float(np.sum(n_b / n_b.sum() * (gap2 - correction)))
    return float(np.sqrt(max(squared, 0.0)))


def _tie_respecting_splits(sorted_prob: FloatArray, n_bins: int) -> np.ndarray:
    """Equal-mass split points of sorted scores, moved back to the start of a tie group."""
    n = len(sorted_prob)
    raw = (np.arange(1, n_bins) * n) // n_bins
    starts = np.searchsorted(sorted_prob, sorted_prob[raw], side="left")
    return np.unique(np.concatenate(([0], starts[starts > 0], [n])))


def sweep_calibration_error(y_true: Any, y_prob: Any, *, norm: str = "l1") -> float:
    """Compute ECE_sweep, the monotone-sweep calibration error (Roelofs et al. 2022).

    Sweeps the number of equal-mass bins B = 1, 2, ... and keeps the largest B whose bin
    rates ȳ_1 ≤ ȳ_2 ≤ ... ≤ ȳ_B are monotone (non-decreasing); returns the ECE (``norm``
    "l1" or "l2") at that B. Bins never split tied scores. Multiclass uses the top-label view.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 outcomes, or class indices when ``y_prob`` is 2-D.
    y_prob : array-like of shape (n,) or (n, K)
        P(y = 1) for binary; a probability matrix for multiclass.
    norm : {"l1", "l2"}, default="l1"
        How the per-bin gaps are combined.

    Returns
    -------
    float
        The ECE at the largest monotone equal-mass binning.

    Raises
    ------
    AssayInputError
        On invalid inputs, as :func:`expected_calibration_error`, or an unknown ``norm``.

    References
    ----------
    .. [1] R. Roelofs, N. Cain, J. Shlens and M. C. Mozer, "Mitigating bias in calibration
       error estimation", Proc. AISTATS, PMLR 151, 2022, pp. 4036–4054.

    Examples
    --------
    Three bins of two rows have rates 0, ½, 1 (monotone) and ECE
    (0.2 + 0.025 + 0.15)/3 = 0.125; four bins have rates 0, ½, 0, 1, so the sweep stops at 3.

    >>> from assay import sweep_calibration_error
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> round(sweep_calibration_error(y, p), 4)
    0.125
    """
    check_choice(norm, "norm", ("l1", "l2"))
    views, _ = binary_views(y_true, y_prob)
    y, p = views[0]
    order = np.argsort(p, kind="stable")
    p_sorted, y_sorted = p[order], y[order]
    cum_y = np.concatenate(([0.0], np.cumsum(y_sorted)))
    cum_p = np.concatenate(([0.0], np.cumsum(p_sorted)))
    n = len(p)

    def error_at(splits: np.ndarray) -> tuple[bool, float]:
        counts = np.diff(splits).astype(np.float64)
        rates = np.diff(cum_y[splits]) / counts
        means = np.diff(cum_p[splits]) / counts
        monotone = bool(np.all(np.diff(rates) >= 0))
        gaps = np.abs(rates - means)
        value = np.sum(counts * gaps) / n if norm == "l1" else np.sqrt(np.sum(counts * gaps**2) / n)
        return monotone, float(value)

    best = error_at(np.array([0, n]))[1]
    previous_bins = 1
    for n_bins in range(2, n + 1):
        splits = _tie_respecting_splits(p_sorted, n_bins)
        if len(splits) - 1 == previous_bins:
            continue  # ties merged this split into the previous one
        monotone, value = error_at(splits)
        if not monotone:
            break
        best, previous_bins = value, len(splits) - 1
    return best


# --------------------------------------------------------------------------- smooth ECE
#: Regulariser added to the smoothed density, as in the authors' reference implementation
#: (relplot), so that the two agree numerically.
_DENSITY_EPS = 1e-4
_MIN_BANDWIDTH = 1e-3


class _SmoothingGrid:
    """Residuals r = p − y and counts split linearly onto regular grids, per grid size.

    A row at p in cell k of a grid of S nodes (k = ⌊p(S − 1)⌋) gives share f = p(S − 1) − k of
    its value to node k + 1 and 1 − f to node k, so a cell sends (S − 1)·Σp·v − k·Σv to node
    k + 1: per-cell sums of v and p·v suffice, and :class:`SortedScores` gives them without a
    pass over the rows (r = p − y, so Σr = Σp − n⁺ and Σp·r = Σp² − Σ⁺p).
    """

    def __init__(self, scores: SortedScores) -> None:
        self._scores = scores
        self._cache: dict[int, tuple[FloatArray, FloatArray]] = {}

    def masses(self, size: int) -> tuple[FloatArray, FloatArray]:
        if size not in self._cache:
            count, sum_p, sum_p2, positives, positive_p = self._scores.cell_sums(size)
            k = np.arange(size - 1, dtype=np.float64)

            def split(total: FloatArray, weighted: FloatArray) -> FloatArray:
                upper = (size - 1) * weighted - k * total
                nodes = np.zeros(size)
                nodes[:-1] += total - upper
                nodes[1:] += upper
                return nodes

            residual = split(sum_p - positives, sum_p2 - positive_p)
            self._cache[size] = (residual, split(count, sum_p))
        return self._cache[size]


def _reflected_gaussian_smooth(values: FloatArray, sigma: float) -> FloatArray:
    """Convolve grid masses with a Gaussian of s.d. ``sigma``, reflecting at 0 and 1."""
    size = len(values)
    t = np.linspace(0.0, 1.0, size)
    kernel = np.exp(-((t - 0.5) ** 2) / (2 * sigma**2)) / (np.sqrt(2 * np.pi) * sigma)
    extended = np.concatenate((values[::-1][:-1], values, values[::-1][1:]))
    full = np.convolve(extended, kernel, "valid")
    return full[size // 2 : size // 2 + size]


def _smooth_ece_at(grid: _SmoothingGrid, sigma: float) -> float:
    size = max(2000, round(20 / sigma)) // 2 + 1
    residual_mass, count_mass = grid.masses(size)
    nodes = np.linspace(0.0, 1.0, size)
    evaluation = np.linspace(0.0, 1.0, max(round(10 / sigma), 200))
    residual = np.interp(evaluation, nodes, _reflected_gaussian_smooth(residual_mass, sigma))
    density = np.interp(evaluation, nodes, _reflected_gaussian_smooth(count_mass, sigma))
    return float(np.sum(np.abs(residual)) / np.sum(density + _DENSITY_EPS))


def smooth_calibration_error(y_true: Any, y_prob: Any, *, return_bandwidth: bool = False) -> Any:
    """Compute SmoothECE, the kernel-smoothed calibration error (Błasiok & Nakkiran 2023).

    smECE_σ = ∫ |r̂_σ(t)| δ̂_σ(t) dt / ∫ δ̂_σ(t) dt, where r̂_σ is the Nadaraya–Watson smoothing
    of the residuals r_i = y_i − p_i with a Gaussian kernel of width σ reflected at 0 and 1,
    and δ̂_σ the matching kernel density. The bandwidth is the fixed point σ* = smECE_σ*,
    found by bisection (10 halvings on (0, 1], stopping below σ = 0.001) from the side
    σ ≥ smECE_σ. Masses are split linearly onto a grid of max(2000, 20/σ)/2 + 1 nodes, as in
    the authors' relplot package, so the two agree to ~1e-10; the scores are sorted once and
    each grid's masses come from prefix sums. Multiclass uses the top-label view.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 outcomes, or class indices when ``y_prob`` is 2-D.
    y_prob : array-like of shape (n,) or (n, K)
        P(y = 1) for binary; a probability matrix for multiclass.
    return_bandwidth : bool, default=False
        Also return the fixed-point bandwidth σ*.

    Returns
    -------
    float or tuple of (float, float)
        The smooth ECE smECE_σ*, or ``(smECE_σ*, σ*)`` with ``return_bandwidth=True``.

    Raises
    ------
    AssayInputError
        On invalid inputs, as :func:`expected_calibration_error`.

    References
    ----------
    .. [1] J. Błasiok and P. Nakkiran, "Smooth ECE: principled reliability diagrams via
       kernel smoothing", arXiv:2309.12236, 2023 (ICLR 2024); reference implementation
       ``relplot.smECE``.

    Examples
    --------
    The value agrees with ``relplot.smECE(p, y)`` (0.117187096...).

    >>> from assay import smooth_calibration_error
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> value, sigma = smooth_calibration_error(y, p, return_bandwidth=True)
    >>> round(value, 4), round(sigma, 4)
    (0.1172, 0.1182)
    """
    views, _ = binary_views(y_true, y_prob)
    y, p = views[0]
    return smooth_ece_of(SortedScores(y, p), return_bandwidth=return_bandwidth)


def smooth_ece_of(scores: SortedScores, *, return_bandwidth: bool = False) -> Any:
    """:func:`smooth_calibration_error` from scores already sorted (shared with the AUC)."""
    grid = _SmoothingGrid(scores)
    memo: dict[float, float] = {}

    def at(sigma: float) -> float:
        if sigma not in memo:
            memo[sigma] = _smooth_ece_at(grid, sigma)
        return memo[sigma]

    def too_wide(sigma: float) -> bool:
        return sigma < _MIN_BANDWIDTH or sigma < at(sigma)

    upper, lower = 1.0, 0.0
    if not too_wide(upper):
        for _ in range(10):
            middle = (upper + lower) / 2
            if too_wide(middle):
                lower = middle
            else:
                upper = middle
    value = at(upper)
    return (value, upper) if return_bandwidth else value


# --------------------------------------------------------------------------- MMCE
def _laplacian_quadratic_form(positions: FloatArray, values: FloatArray, width: float) -> float:
    """Σ_i Σ_j a_i a_j exp(−|x_i − x_j| / width) in O(n log n).

    After sorting, the off-diagonal part is 2 Σ_i a_i L_i with L_i = Σ_{j<i} a_j
    exp(−(x_i − x_j)/width). Within a block of span ≤ 30·width, L_i = e^{−(x_i − x_s)/width}
    (carry + Σ_{s≤j<i} a_j e^{(x_j − x_s)/width}) is a cumulative sum; the carry passes to the
    next block with decay e^{−Δx/width}, so no exponential overflows or cancels badly.
    """
    order = np.argsort(positions, kind="stable")
    x, a = positions[order], values[order]
    total = float(np.dot(a, a))
    span = 30.0 * width
    starts = np.searchsorted(x, np.arange(x[0], x[-1] + span, span), side="left")
    starts = np.unique(np.concatenate((starts, [len(x)])))
    carry, carry_at = 0.0, x[0]
    for s, e in itertools.pairwise(starts):
        anchor = x[s]
        carry *= np.exp(-(anchor - carry_at) / width)
        grow = a[s:e] * np.exp((x[s:e] - anchor) / width)
        before = np.concatenate(([0.0], np.cumsum(grow)[:-1]))
        lagged = np.exp(-(x[s:e] - anchor) / width) * (carry + before)
        total += 2.0 * float(np.dot(a[s:e], lagged))
        carry, carry_at = carry + float(grow.sum()), anchor
    return total


def mmce(y_true: Any, y_prob: Any, *, width: float = 0.4) -> float:
    """Compute the maximum mean calibration error (MMCE) with a Laplacian kernel.

    MMCE² = (1/n²) Σ_i Σ_j (c_i − r_i)(c_j − r_j) exp(−|r_i − r_j| / width), where r_i is the
    probability and c_i the outcome (binary: r = p, c = y; multiclass: top-label confidence
    and correctness). Computed exactly in O(n log n): the 1-D Laplacian kernel factorises
    into running sums over the sorted scores.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        0/1 outcomes, or class indices when ``y_prob`` is 2-D.
    y_prob : array-like of shape (n,) or (n, K)
        P(y = 1) for binary; a probability matrix for multiclass.
    width : float, default=0.4
        Width of the Laplacian kernel exp(−|r_i − r_j| / width).

    Returns
    -------
    float
        MMCE = sqrt(MMCE²) ≥ 0.

    Raises
    ------
    AssayInputError
        If ``width`` is not a positive finite number, or on invalid inputs as
        :func:`expected_calibration_error`.

    References
    ----------
    .. [1] A. Kumar, S. Sarawagi and U. Jain, "Trainable calibration measures for neural
       networks from kernel mean embeddings", Proc. ICML, PMLR 80, 2018, pp. 2805–2814.

    Examples
    --------
    The O(n log n) value equals the O(n²) double sum written out:

    >>> import numpy as np
    >>> from assay import mmce
    >>> y = np.array([0, 0, 1, 0, 1, 1])
    >>> p = np.array([0.1, 0.3, 0.35, 0.6, 0.8, 0.9])
    >>> round(mmce(y, p), 4)
    0.0801
    >>> kernel = np.exp(-np.abs(np.subtract.outer(p, p)) / 0.4)
    >>> round(float(np.sqrt((y - p) @ kernel @ (y - p))) / len(p), 4)
    0.0801
    """
    if not (isinstance(width, (int, float)) and np.isfinite(width) and width > 0):
        raise AssayInputError(f"width={width!r}; the kernel width must be a positive number")
    views, _ = binary_views(y_true, y_prob)
    y, p = views[0]
    squared = _laplacian_quadratic_form(p, y - p, float(width)) / len(p) ** 2
    return float(np.sqrt(max(squared, 0.0)))
