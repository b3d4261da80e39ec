"""Reduce binary or multiclass predictions to binary (outcome, probability) views.

* 1-D ``y_prob`` is P(y = 1): one view, ``(y_true, y_prob)``. It is never folded into
  max(p, 1 − p).
* 2-D ``(n, K)`` with ``mode="top-label"``: one view, (argmax correct?, max probability),
  the "confidence" calibration of Guo et al. (2017). Ties in the argmax go to the lowest
  class index, as ``numpy.argmax`` does.
* 2-D with ``mode="classwise"``: K views, (y == k, p_k); classwise metrics average them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from assay._validation import (
    FloatArray,
    check_binary_inputs,
    check_choice,
    check_class_labels,
    check_multiclass_rows,
    check_probabilities,
    check_same_length,
    check_sample_weight,
)

MODES = ("top-label", "classwise")

View = tuple[FloatArray, FloatArray]


def binary_views(
    y_true: Any, y_prob: Any, mode: str = "top-label", sample_weight: Any = None
) -> tuple[list[View], FloatArray | None]:
    """Return validated binary views of the predictions, and the validated weights."""
    check_choice(mode, "mode", MODES)
    prob = check_probabilities(y_prob, ndim=(1, 2))
    if prob.ndim == 1:
        labels, prob, weight = check_binary_inputs(y_true, prob, sample_weight)
        return [(labels, prob)], weight
    check_multiclass_rows(prob)
    classes = check_class_labels(y_true, prob.shape[1])
    check_same_length(("y_true", classes), ("y_prob", prob))
    weight = check_sample_weight(sample_weight, len(prob))
    if mode == "top-label":
        predicted = np.argmax(prob, axis=1)
        confidence = prob[np.arange(len(prob)), predicted]
        return [((predicted == classes).astype(np.float64), confidence)], weight
    views = [
        ((classes == k).astype(np.float64), np.ascontiguousarray(prob[:, k]))
        for k in range(prob.shape[1])
    ]
    return views, weight
