"""Input checks shared by every public function.

Every check raises :class:`AssayInputError` (a ``ValueError``) whose message says *what* is
wrong, *where* (the first offending index and how many offend) and *how to fix it*. Nothing
is clipped, squashed or dropped silently.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

#: Tolerance for a multiclass probability row to count as summing to one.
ROW_SUM_TOLERANCE = 1e-6


class AssayInputError(ValueError):
    """Raised when an input cannot be used as given; the message says what, where and how to fix.

    Every public function validates its inputs and raises this error instead of clipping,
    squashing or dropping anything silently. The message names the argument, the first
    offending index and value, how many values offend, and the usual fix. It is a
    ``ValueError``, as scikit-learn's input checks raise, so ``except ValueError`` catches it.
    Its only argument is that message.

    References
    ----------
    .. [1] L. Buitinck, G. Louppe, M. Blondel, F. Pedregosa, A. Mueller, O. Grisel et al.,
       "API design for machine learning software: experiences from the scikit-learn
       project", ECML PKDD Workshop on Languages for Data Mining and Machine Learning,
       2013, pp. 108–122.

    Examples
    --------
    Scores written as percents are refused with the fix, not clipped:

    >>> from assay import AssayInputError, brier_score
    >>> issubclass(AssayInputError, ValueError)
    True
    >>> brier_score([0, 1, 1], [0.2, 80, 95])  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
        ...
    assay._validation.AssayInputError: y_prob[1] is 80.0; probabilities must lie in [0, 1]
    (2 values offend); rescale percents with / 100 or convert raw scores with a calibrator
    """


def _to_numpy(values: Any, name: str) -> NDArray[Any]:
    """Convert lists, NumPy, pandas, polars and pyarrow inputs to a NumPy array."""
    if values is None:
        raise AssayInputError(f"{name} is None; pass an array-like of numbers")
    if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):
        try:
            values = values.to_numpy()
        except TypeError:  # pyarrow ChunkedArray with nulls needs zero_copy_only=False
            values = values.to_numpy(zero_copy_only=False)
    return np.asarray(values)


def _describe_offenders(name: str, mask: NDArray[np.bool_], values: NDArray[Any], what: str) -> str:
    bad = np.flatnonzero(mask.ravel())
    first = int(bad[0])
    where = np.unravel_index(first, mask.shape)
    index = ", ".join(str(int(i)) for i in where)
    value = values[where].item() if hasattr(values[where], "item") else values[where]
    count = f"{bad.size} value{'s' if bad.size != 1 else ''} offend{'s' if bad.size == 1 else ''}"
    return f"{name}[{index}] is {value!r}; {what} ({count})"


def as_float_array(values: Any, name: str, *, ndim: tuple[int, ...] = (1,)) -> FloatArray:
    """Return ``values`` as a finite float64 array of an allowed dimensionality."""
    raw = _to_numpy(values, name)
    if raw.ndim not in ndim:
        shapes = " or ".join(f"{d}-D" for d in ndim)
        raise AssayInputError(
            f"{name} has shape {raw.shape} ({raw.ndim}-D); it must be {shapes}. "
            "Pass one score per row (1-D) or an (n, K) probability matrix for multiclass."
        )
    if raw.size == 0:
        raise AssayInputError(f"{name} is empty; at least one prediction is needed")
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise AssayInputError(
            f"{name} holds values that are not numbers ({exc}); convert them to floats first "
            "(missing values must be removed or filled explicitly)"
        ) from None
    finite = np.isfinite(arr)
    if not finite.all():
        raise AssayInputError(
            _describe_offenders(name, ~finite, arr, "values must be finite (no NaN or inf)")
            + "; remove or impute those rows before scoring"
        )
    return arr


def check_probabilities(
    values: Any, name: str = "y_prob", *, ndim: tuple[int, ...] = (1,)
) -> FloatArray:
    """Probabilities: finite and inside the closed interval [0, 1]."""
    arr = as_float_array(values, name, ndim=ndim)
    outside = (arr < 0.0) | (arr > 1.0)
    if outside.any():
        raise AssayInputError(
            _describe_offenders(name, outside, arr, "probabilities must lie in [0, 1]")
            + "; rescale percents with / 100 or convert raw scores with a calibrator"
        )
    return arr


def check_binary_labels(values: Any, name: str = "y_true") -> FloatArray:
    """Binary outcomes: 1-D, every value 0 or 1 (booleans accepted), returned as float 0.0/1.0."""
    arr = as_float_array(values, name)
    not_binary = (arr != 0.0) & (arr != 1.0)
    if not_binary.any():
        raise AssayInputError(
            _describe_offenders(name, not_binary, arr, "labels must be 0 or 1")
            + "; encode the converted outcome as 1 and every other outcome as 0"
        )
    return arr


def check_class_labels(values: Any, n_classes: int, name: str = "y_true") -> IntArray:
    """Multiclass outcomes: integer class indices in ``0 .. n_classes - 1``."""
    arr = as_float_array(values, name)
    invalid = (arr != np.round(arr)) | (arr < 0) | (arr >= n_classes)
    if invalid.any():
        raise AssayInputError(
            _describe_offenders(
                name, invalid, arr, f"labels must be class indices 0..{n_classes - 1}"
            )
            + "; map class names to the column order of y_prob"
        )
    return arr.astype(np.int64)


def check_same_length(*pairs: tuple[str, NDArray[Any]]) -> int:
    """All arrays have the same number of rows; return it."""
    lengths = {name: len(arr) for name, arr in pairs}
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise AssayInputError(
            f"inputs have different lengths: {listing}; pass one value per prediction"
        )
    return next(iter(lengths.values()))


def check_sample_weight(values: Any, n: int) -> FloatArray | None:
    """Check optional weights: non-negative, finite, one per row, not all zero."""
    if values is None:
        return None
    arr = as_float_array(values, "sample_weight")
    check_same_length(("y_prob", np.empty(n)), ("sample_weight", arr))
    negative = arr < 0
    if negative.any():
        raise AssayInputError(
            _describe_offenders("sample_weight", negative, arr, "weights must be >= 0")
            + "; drop rows instead of giving them negative weight"
        )
    if not arr.sum() > 0:
        raise AssayInputError("sample_weight sums to 0; at least one row needs positive weight")
    return arr


def check_multiclass_rows(prob: FloatArray, name: str = "y_prob") -> None:
    """Each row of an (n, K) probability matrix sums to one within ``ROW_SUM_TOLERANCE``."""
    if prob.shape[1] < 2:
        raise AssayInputError(
            f"{name} has {prob.shape[1]} column; a multiclass matrix needs at least 2 "
            "(for binary scores pass the positive-class probability as 1-D)"
        )
    sums = prob.sum(axis=1)
    off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
    if off.any():
        first = int(np.flatnonzero(off)[0])
        raise AssayInputError(
            f"{name} row {first} sums to {float(sums[first])!r}; each row must sum to 1 within "
            f"{ROW_SUM_TOLERANCE} ({int(off.sum())} rows offend); normalise the rows or "
            "apply a softmax to logits first"
        )


def check_binary_inputs(
    y_true: Any, y_prob: Any, sample_weight: Any = None
) -> tuple[FloatArray, FloatArray, FloatArray | None]:
    """Validate a binary (labels, positive-class probabilities, optional weights) triple."""
    prob = check_probabilities(y_prob)
    labels = check_binary_labels(y_true)
    check_same_length(("y_true", labels), ("y_prob", prob))
    return labels, prob, check_sample_weight(sample_weight, len(prob))


def check_choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    """Check that a string option is one of ``allowed``; return it."""
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed)
        raise AssayInputError(f"{name}={value!r} is not supported; choose one of {options}")
    return value


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Check an integer option against its lower bound; return it as int."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise AssayInputError(f"{name}={value!r}; it must be an integer >= {minimum}")
    return int(value)


def to_utc(moment: dt.datetime | str | None) -> dt.datetime:
    """Return a timezone-aware UTC datetime (now for None); naive values are refused."""
    if moment is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(moment, str):
        try:
            moment = dt.datetime.fromisoformat(moment.strip().replace("Z", "+00:00"))
        except ValueError:
            raise AssayInputError(
                f"as_of {moment!r} is not an ISO 8601 timestamp (e.g. 2024-05-01T00:00:00Z)"
            ) from None
    if moment.tzinfo is None:
        raise AssayInputError(
            f"as_of {moment.isoformat()} has no time zone; give one, e.g. {moment.isoformat()}Z"
        )
    return moment.astimezone(dt.UTC)
