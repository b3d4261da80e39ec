"""Every bad input is refused with a message that says what, where and how to fix."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import assay
from assay import AssayInputError

Y = [0, 1, 1, 0, 1]
P = [0.1, 0.9, 0.7, 0.3, 0.6]


@pytest.mark.parametrize(
    ("y_true", "y_prob", "pattern"),
    [
        (
            Y,
            [0.1, 0.9, np.nan, 0.3, np.nan],
            r"y_prob\[2\] is nan; values must be finite .*2 values offend",
        ),
        (Y, [0.1, np.inf, 0.7, 0.3, 0.6], r"y_prob\[1\] is inf; values must be finite"),
        (
            Y,
            [0.1, 0.9, 1.3, 0.3, 0.6],
            r"y_prob\[2\] is 1.3; probabilities must lie in \[0, 1\] \(1 value offends\)",
        ),
        (Y, [-0.1, 0.9, 0.7, 0.3, 0.6], r"y_prob\[0\] is -0.1; probabilities must lie in \[0, 1\]"),
        ([0, 1, 2, 0, 1], P, r"y_true\[2\] is 2.0; labels must be 0 or 1"),
        ([0, 1, 0.5, 0, 1], P, r"y_true\[2\] is 0.5; labels must be 0 or 1"),
        ([0, 1, 1], P, r"inputs have different lengths: y_true has 3, y_prob has 5"),
        ([], [], r"y_prob is empty"),
        (Y, [[[0.1]]], r"y_prob has shape \(1, 1, 1\) \(3-D\)"),
        (Y, ["a", "b", "c", "d", "e"], r"y_prob holds values that are not numbers"),
        (Y, None, r"y_prob is None"),
    ],
)
def test_bad_binary_inputs_are_refused_with_location(y_true, y_prob, pattern):
    with pytest.raises(AssayInputError, match=pattern):
        assay.expected_calibration_error(y_true, y_prob)


def test_error_is_a_value_error():
    assert issubclass(AssayInputError, ValueError)


@pytest.mark.parametrize(
    "func",
    [
        assay.brier_score,
        assay.log_loss,
        assay.roc_auc,
        assay.maximum_calibration_error,
        assay.debiased_calibration_error,
        assay.sweep_calibration_error,
        assay.smooth_calibration_error,
        assay.mmce,
        assay.brier_decomposition,
        assay.corp_decomposition,
        assay.spiegelhalter_test,
        assay.hosmer_lemeshow_test,
        assay.calibration_slope_intercept,
        assay.reliability_table,
    ],
)
def test_every_public_function_validates(func):
    with pytest.raises(AssayInputError, match=r"y_prob\[2\] is 1.3"):
        func(Y, [0.1, 0.9, 1.3, 0.3, 0.6])
    with pytest.raises(AssayInputError, match=r"y_true\[0\] is -1.0"):
        func([-1, 1, 1, 0, 1], P)


def test_multiclass_rows_must_sum_to_one():
    prob = np.array([[0.5, 0.5], [0.6, 0.3], [0.2, 0.8]])
    with pytest.raises(
        AssayInputError,
        match=r"y_prob row 1 sums to 0.8999+\d*; each row must sum to 1 within 1e-06 "
        r"\(1 rows offend\)",
    ):
        assay.expected_calibration_error([0, 1, 1], prob)


def test_multiclass_labels_must_be_class_indices():
    prob = np.array([[0.5, 0.5], [0.6, 0.4], [0.2, 0.8]])
    with pytest.raises(
        AssayInputError, match=r"y_true\[2\] is 2.0; labels must be class indices 0..1"
    ):
        assay.expected_calibration_error([0, 1, 2], prob)


@pytest.mark.parametrize(
    ("weights", "pattern"),
    [
        ([1, 1, -2, 1, 1], r"sample_weight\[2\] is -2.0; weights must be >= 0"),
        ([1, 1, np.nan, 1, 1], r"sample_weight\[2\] is nan; values must be finite"),
        ([0, 0, 0, 0, 0], r"sample_weight sums to 0"),
        ([1, 1], r"inputs have different lengths: y_prob has 5, sample_weight has 2"),
    ],
)
def test_bad_weights(weights, pattern):
    with pytest.raises(AssayInputError, match=pattern):
        assay.expected_calibration_error(Y, P, sample_weight=weights)


def test_bad_options_are_named():
    with pytest.raises(AssayInputError, match=re.escape("norm='l3' is not supported")):
        assay.expected_calibration_error(Y, P, norm="l3")
    with pytest.raises(AssayInputError, match=re.escape("strategy='kmeans' is not supported")):
        assay.expected_calibration_error(Y, P, strategy="kmeans")
    with pytest.raises(AssayInputError, match=re.escape("n_bins=0; it must be an integer >= 1")):
        assay.expected_calibration_error(Y, P, n_bins=0)
    with pytest.raises(AssayInputError, match="edges must increase strictly"):
        assay.expected_calibration_error(Y, P, n_bins=[0.0, 0.5, 0.5, 1.0])
    with pytest.raises(AssayInputError, match=r"y_prob\[1\] is 0.9, outside the bin edges"):
        assay.expected_calibration_error(Y, P, n_bins=[0.0, 0.5, 0.8])


def test_auc_needs_both_classes():
    with pytest.raises(AssayInputError, match="every outcome in y_true is negative"):
        assay.roc_auc([0, 0, 0], [0.1, 0.2, 0.3])


@pytest.mark.parametrize(
    "convert",
    [
        list,
        np.asarray,
        pd.Series,
        pl.Series,
        pa.array,
        lambda v: pa.chunked_array([v[:2], v[2:]]),
        lambda v: pd.Series(v, dtype="Float64"),
    ],
)
def test_array_likes_are_accepted(convert):
    expected = assay.expected_calibration_error(Y, P, n_bins=5)
    assert assay.expected_calibration_error(convert(Y), convert(P), n_bins=5) == expected


def test_nulls_in_a_frame_are_refused():
    with pytest.raises(AssayInputError, match=r"y_prob\[1\]"):
        assay.brier_score(Y, pd.Series([0.1, None, 0.7, 0.3, 0.6], dtype="Float64"))
