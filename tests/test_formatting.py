"""Numbers and dates for people: each formatter against strings written out by hand."""

from __future__ import annotations

import datetime as dt

import pytest

from assay.report import formatting as fmt


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (999, "999"), (1000, "1,000"), (19284, "19,284"), (1234567, "1,234,567"),
     (2780.6, "2,781")],
)  # fmt: skip
def test_counts_have_thousands_separators(value, shown):
    assert fmt.count(value) == shown


@pytest.mark.parametrize(
    ("n", "singular", "plural_form", "shown"),
    [
        (0, "resolved prediction", None, "0 resolved predictions"),
        (1, "resolved prediction", None, "1 resolved prediction"),
        (2, "resolved prediction", None, "2 resolved predictions"),
        (19284, "lead", None, "19,284 leads"),
        (1, "batch", "batches", "1 batch"),
        (3, "batch", "batches", "3 batches"),
    ],
)
def test_plurals_agree_with_the_count(n, singular, plural_form, shown):
    assert fmt.plural(n, singular, plural_form) == shown


def test_calibration_error_is_always_in_points_interval_included():
    assert fmt.pts(0.068) == "6.8 pts"
    assert fmt.pts(0.38665) == "38.7 pts"
    assert fmt.pts(0.0) == "0.0 pts"
    assert fmt.pts_range(0.0639, 0.0724) == "6.4–7.2 pts"
    assert fmt.signed_pts(0.116) == "+11.6 pts"
    assert fmt.signed_pts(-0.0049) == "-0.5 pts"
    assert fmt.pts(None) == fmt.pts_range(None, 0.1) == "—"


def test_rates_are_always_in_percent():
    assert fmt.pct(0.1508) == "15.1%"
    assert fmt.pct(0.5, 0) == "50%"
    assert fmt.pct(1.0) == "100.0%"
    assert fmt.pct_range(0.134, 0.161) == "13.4–16.1%"
    assert fmt.pct(None) == fmt.pct_range(0.1, None) == "—"


def test_plain_numbers_keep_their_decimals():
    assert fmt.decimal(0.52113, 3) == "0.521"
    assert fmt.decimal(1.8, 2) == "1.80"
    assert fmt.decimal(1234.5, 1) == "1,234.5"
    assert fmt.decimal_range(0.5114, 0.5316, 3) == "0.511–0.532"
    assert fmt.decimal(None, 2) == "—"


@pytest.mark.parametrize(
    ("p", "shown"),
    [
        (0.0009, "< 0.001"),
        (4.34e-11, "< 0.001"),
        (0.0, "< 0.001"),
        (0.000999000999, "< 0.001"),
        (0.001, "0.001"),
        (0.0123, "0.0123"),
        (0.04567, "0.0457"),
        (0.5, "0.500"),
        (0.9999, "1.00"),
        (1.0, "1.00"),
        (None, "—"),
        (float("nan"), "—"),
    ],
)
def test_p_values(p, shown):
    assert fmt.p_value(p) == shown


def test_p_equals_reads_as_a_sentence():
    assert fmt.p_equals(4.34e-11) == "p < 0.001"
    assert fmt.p_equals(0.0123) == "p = 0.0123"


def test_dates_are_human_and_utc():
    assert fmt.utc_date("2010-11-30T00:00:00+00:00") == "30 Nov 2010"
    assert fmt.utc_time("2010-11-30T00:00:00+00:00") == "30 Nov 2010, 00:00 UTC"
    # Microseconds dropped; another offset converted to UTC (here across midnight).
    assert fmt.utc_time("2024-05-01T01:30:59.123456+02:00") == "30 Apr 2024, 23:30 UTC"
    assert fmt.utc_time(dt.datetime(2024, 1, 5, 9, 7, tzinfo=dt.UTC)) == "5 Jan 2024, 09:07 UTC"
    assert fmt.utc_date(dt.datetime(2024, 1, 5, 23, 0)) == "5 Jan 2024"  # naive reads as UTC
    assert fmt.month("2010-11") == "Nov 2010"


def test_dates_inside_sentences_are_rewritten_and_nothing_else():
    said = (
        "first alarm at lead 1,105, 2009-10-19; no lead as of 2024-05-01T00:00:00+00:00 "
        "nor 2024-05-01T14:05:00Z; version 2024-05 and 12:30 stay"
    )
    assert fmt.human_dates(said) == (
        "first alarm at lead 1,105, 19 Oct 2009; no lead as of 1 May 2024 "
        "nor 1 May 2024, 14:05 UTC; version 2024-05 and 12:30 stay"
    )


def test_huge_e_values_are_powers_of_ten_with_a_raised_exponent():
    ln10 = 2.302585092994046
    assert fmt.e_value_html(468 * ln10) == "10<sup>468</sup>"
    assert fmt.e_value_html(827.4 * ln10) == "10<sup>827</sup>"
    assert fmt.e_value_html(0.0) == "1"
    assert fmt.e_value_html(2.995732273553991) == "20"  # ln 20
    assert fmt.e_value_html(5 * ln10) == "100,000"
    assert fmt.e_value_html(-2 * ln10) == "0.01"
    assert fmt.powers_html("E = 10^827 &ge; 1/&alpha; = 20") == (
        "E = 10<sup>827</sup> &ge; 1/&alpha; = 20"
    )
    assert fmt.powers_html("110^3 and 10^x") == "110^3 and 10^x"
