"""BinStats: mergeable per-bin sufficient statistics (DESIGN §4).

For fixed edges and each bin b the statistics are ``count`` (rows), ``weight`` (Σw),
``sum_p`` (Σw·p), ``sum_p2`` (Σw·p²), ``sum_y`` (Σw·y) and ``sum_py`` (Σw·p·y); without
``sample_weight`` every w is 1. Every binned quantity in assay (ECE of any norm, MCE, the
reliability table, the Stephenson Brier decomposition, the posterior and the noise floor)
is a function of these sums alone. Two BinStats on identical edges merge by addition:
``BinStats.from_arrays(a) + BinStats.from_arrays(b)`` equals ``BinStats.from_arrays(a ++ b)``
(counts exactly, sums up to floating-point rounding), so statistics can be built per batch,
per day or per worker and combined, and stored as JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from assay._validation import AssayInputError, FloatArray, IntArray, check_binary_inputs
from assay.stats.binning import BinSpec, assign_bins, bin_edges

#: Rows processed per chunk when accumulating; keeps temporaries small and cache-friendly.
CHUNK_ROWS = 1 << 16

_SUM_FIELDS = ("weight", "sum_p", "sum_p2", "sum_y", "sum_py")
SCHEMA_VERSION = 1


@dataclass(frozen=True, eq=False)
class BinStats:
    """Mergeable per-bin sufficient statistics on fixed ``edges``.

    For each bin b (left-closed [lo, hi), the last closed [lo, 1]) the sums over its rows
    of 1, w, w·p, w·p², w·y and w·p·y (w = 1 without weights). Every binned quantity (ECE
    of any norm, MCE, the reliability table, the Brier decomposition, the posterior, the
    noise floor) is a function of these sums alone, so two BinStats on identical edges merge
    by ``+`` (counts exactly, sums up to rounding) and serialise as JSON. Usually built with
    :meth:`from_arrays`; the arrays are read-only.

    Parameters
    ----------
    edges : ndarray of shape (B + 1,)
        Bin edges, increasing, inside [0, 1].
    count : ndarray of shape (B,)
        Rows per bin (int64).
    weight : ndarray of shape (B,)
        Σw per bin (equals ``count`` without weights).
    sum_p : ndarray of shape (B,)
        Σw·p per bin.
    sum_p2 : ndarray of shape (B,)
        Σw·p² per bin.
    sum_y : ndarray of shape (B,)
        Σw·y per bin.
    sum_py : ndarray of shape (B,)
        Σw·p·y per bin.

    Raises
    ------
    AssayInputError
        If an array's shape does not match the B + 1 edges.

    References
    ----------
    .. [1] P. K. Agarwal, G. Cormode, Z. Huang, J. M. Phillips, Z. Wei and K. Yi,
       "Mergeable summaries", ACM Transactions on Database Systems 38(4), 2013, 26.
    .. [2] M. P. Naeini, G. F. Cooper and M. Hauskrecht, "Obtaining well calibrated
       probabilities using Bayesian binning", Proc. AAAI, 2015.

    Examples
    --------
    >>> from assay import BinStats
    >>> y = [0, 0, 1, 0, 1, 1]
    >>> p = [0.1, 0.3, 0.35, 0.6, 0.8, 0.9]
    >>> stats = BinStats.from_arrays(y, p, n_bins=2)
    >>> stats.count.tolist(), stats.sum_p.tolist(), stats.sum_y.tolist()
    ([3, 3], [0.75, 2.3], [1.0, 2.0])
    >>> round(stats.calibration_error("l1"), 4)
    0.0917
    >>> halves = BinStats.from_arrays(y[:3], p[:3], n_bins=2) + BinStats.from_arrays(
    ...     y[3:], p[3:], n_bins=2
    ... )
    >>> halves == stats, BinStats.from_json(stats.to_json()) == stats
    (True, True)
    """

    edges: FloatArray
    count: IntArray
    weight: FloatArray
    sum_p: FloatArray
    sum_p2: FloatArray
    sum_y: FloatArray
    sum_py: FloatArray

    def __post_init__(self) -> None:
        """Check every array's shape against the edges and make the arrays read-only."""
        n_bins = len(self.edges) - 1
        for name in ("count", *_SUM_FIELDS):
            arr = getattr(self, name)
            if arr.shape != (n_bins,):
                raise AssayInputError(
                    f"BinStats.{name} has shape {arr.shape}; expected ({n_bins},) for "
                    f"{n_bins + 1} edges"
                )
            arr.setflags(write=False)
        self.edges.setflags(write=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        y_true: Any,
        y_prob: Any,
        *,
        n_bins: BinSpec = 15,
        strategy: str = "uniform",
        sample_weight: Any = None,
    ) -> BinStats:
        """Validate binary inputs, choose edges and accumulate the sums.

        Parameters
        ----------
        y_true : array-like of shape (n,)
            Binary outcomes, 0 or 1.
        y_prob : array-like of shape (n,)
            Probabilities P(y = 1) in [0, 1].
        n_bins : int or sequence of float, default=15
            Number of bins, or explicit edges (needed to merge batches).
        strategy : {"uniform", "quantile"}, default="uniform"
            Equal-width or equal-mass bins.
        sample_weight : array-like of shape (n,), optional
            Non-negative row weights, not all zero.

        Returns
        -------
        BinStats
            The per-bin sums.
        """
        labels, prob, weight = check_binary_inputs(y_true, y_prob, sample_weight)
        return cls.accumulate(labels, prob, bin_edges(prob, n_bins, strategy), weight)

    @classmethod
    def accumulate(
        cls,
        labels: FloatArray,
        prob: FloatArray,
        edges: FloatArray,
        weight: FloatArray | None = None,
    ) -> BinStats:
        """Sum already-validated arrays on given edges, in chunks of ``CHUNK_ROWS``."""
        n_bins = len(edges) - 1
        count = np.zeros(n_bins, dtype=np.int64)
        sums = np.zeros((len(_SUM_FIELDS), n_bins))
        for start in range(0, len(prob), CHUNK_ROWS):
            stop = start + CHUNK_ROWS
            p, y = prob[start:stop], labels[start:stop]
            w = None if weight is None else weight[start:stop]
            idx = assign_bins(p, edges)
            chunk_count = np.bincount(idx, minlength=n_bins)
            count += chunk_count
            wp = p if w is None else w * p
            wy = y if w is None else w * y
            sums[0] += chunk_count if w is None else np.bincount(idx, weights=w, minlength=n_bins)
            sums[1] += np.bincount(idx, weights=wp, minlength=n_bins)
            sums[2] += np.bincount(idx, weights=wp * p, minlength=n_bins)
            sums[3] += np.bincount(idx, weights=wy, minlength=n_bins)
            sums[4] += np.bincount(idx, weights=wy * p, minlength=n_bins)
        return cls(np.array(edges, dtype=np.float64), count, *sums)

    # ------------------------------------------------------------------ algebra
    def __add__(self, other: object) -> BinStats:
        """Merge two BinStats on identical edges by adding their sums."""
        if not isinstance(other, BinStats):
            return NotImplemented
        if self.edges.shape != other.edges.shape or not np.array_equal(self.edges, other.edges):
            raise AssayInputError(
                "cannot merge BinStats with different edges; build both with the same "
                "explicit edges (n_bins=<edges>) before merging"
            )
        return BinStats(
            self.edges.copy(),
            self.count + other.count,
            *(getattr(self, f) + getattr(other, f) for f in _SUM_FIELDS),
        )

    def __eq__(self, other: object) -> bool:
        """Compare edges, counts and sums exactly."""
        if not isinstance(other, BinStats):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f), getattr(other, f))
            for f in ("edges", "count", *_SUM_FIELDS)
        )

    __hash__ = None  # type: ignore[assignment]

    # ------------------------------------------------------------------ derived values
    @property
    def n_bins(self) -> int:
        """Number of bins B."""
        return len(self.edges) - 1

    @property
    def nonempty(self) -> np.ndarray:
        """Mask of bins holding positive weight (empty bins contribute nothing)."""
        return self.weight > 0

    @property
    def total_weight(self) -> float:
        """Total weight W = Σw over all bins."""
        return float(self.weight.sum())

    @property
    def total_count(self) -> int:
        """Total number of rows."""
        return int(self.count.sum())

    def _per_bin_mean(self, sums: FloatArray) -> FloatArray:
        out = np.full(self.n_bins, np.nan)
        mask = self.nonempty
        out[mask] = sums[mask] / self.weight[mask]
        return out

    @property
    def mean_prob(self) -> FloatArray:
        """Mean score p̄_b per bin (NaN for empty bins)."""
        return self._per_bin_mean(self.sum_p)

    @property
    def observed_rate(self) -> FloatArray:
        """Observed positive rate ȳ_b per bin (NaN for empty bins)."""
        return self._per_bin_mean(self.sum_y)

    def calibration_error(self, norm: str = "l1") -> float:
        """Compute the binned calibration error from the sums.

        ``l1``: Σ_b |Σ_{i∈b} w_i (y_i − p_i)| / Σw, which equals Σ_b (W_b/W)|ȳ_b − p̄_b|;
        ``l2``: sqrt(Σ_b (W_b/W)(ȳ_b − p̄_b)²); ``max``: max over non-empty bins of |ȳ_b − p̄_b|.
        """
        mask = self.nonempty
        if norm == "l1":
            return float(np.abs(self.sum_y - self.sum_p)[mask].sum() / self.total_weight)
        gaps = (self.observed_rate - self.mean_prob)[mask]
        if norm == "l2":
            frac = self.weight[mask] / self.total_weight
            return float(np.sqrt(np.sum(frac * gaps**2)))
        if norm == "max":
            return float(np.abs(gaps).max())
        raise AssayInputError(f"norm={norm!r} is not supported; choose one of 'l1', 'l2', 'max'")

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; floats survive a JSON round trip exactly (shortest repr)."""
        return {
            "schema_version": SCHEMA_VERSION,
            "edges": self.edges.tolist(),
            "count": self.count.tolist(),
            **{f: getattr(self, f).tolist() for f in _SUM_FIELDS},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BinStats:
        """Rebuild from :meth:`to_dict` output (schema version checked)."""
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise AssayInputError(
                f"BinStats schema_version {version!r} is not supported (expected {SCHEMA_VERSION})"
            )
        missing = [f for f in ("edges", "count", *_SUM_FIELDS) if f not in data]
        if missing:
            raise AssayInputError(f"BinStats data lacks the fields {missing}")
        return cls(
            np.asarray(data["edges"], dtype=np.float64),
            np.asarray(data["count"], dtype=np.int64),
            *(np.asarray(data[f], dtype=np.float64) for f in _SUM_FIELDS),
        )

    def to_json(self) -> str:
        """Serialise :meth:`to_dict` as JSON text."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> BinStats:
        """Rebuild from :meth:`to_json` output."""
        return cls.from_dict(json.loads(text))
