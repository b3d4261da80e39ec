"""Numbers and dates written for people: one unit per quantity, the same decimals everywhere.

Every renderer of the HTML report writes its numbers through these pure functions, so a
quantity reads the same in a card, a table and a sentence:

* counts with thousands separators (``19,284``) and plurals that agree (``1 resolved
  prediction``, ``2 resolved predictions``);
* a calibration error in percentage points, its interval too (``6.8 pts``, ``6.4–7.2 pts``);
* rates in percent with one decimal (``15.1%``, ``13.4–16.1%``);
* p-values to three significant digits, and ``< 0.001`` below 0.001 (never ``4.34e-11``);
* moments in UTC as day, month name and year (``30 Nov 2010, 14:05 UTC``);
* e-values too large to write out as a power of ten with the exponent raised
  (``10<sup>468</sup>``: the only functions here that return HTML end in ``_html``).

A missing value (``None``) is written :data:`MISSING`.
"""

from __future__ import annotations

import datetime as dt
import math
import re

#: What a missing number is written as.
MISSING = "—"
#: The range dash between two ends of an interval.
EN_DASH = "–"
#: P-values below this are written ``< 0.001``.
SMALLEST_P = 0.001
#: E-values from this power of ten on are written as a power of ten.
POWER_FROM = 6

_ISO_MOMENT = re.compile(
    r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?(?![\d:])"
)
_POWER = re.compile(r"\b10\^(-?\d+)\b")


def count(value: float) -> str:
    """Write a count with thousands separators: ``count(19284) == "19,284"``."""
    return f"{value:,.0f}"


def plural(n: int, singular: str, plural_form: str | None = None) -> str:
    """Write ``n`` and the noun that agrees with it.

    >>> plural(1, "resolved prediction"), plural(19284, "lead"), plural(2, "entry", "entries")
    ('1 resolved prediction', '19,284 leads', '2 entries')
    """
    return f"{count(n)} {singular if n == 1 else plural_form or singular + 's'}"


def decimal(value: float | None, digits: int) -> str:
    """Write a number with ``digits`` decimals (:data:`MISSING` for None)."""
    return MISSING if value is None else f"{value:,.{digits}f}"


def decimal_range(lower: float | None, upper: float | None, digits: int) -> str:
    """Write an interval of plain numbers: ``decimal_range(0.511, 0.532, 3) == "0.511–0.532"``."""
    if lower is None or upper is None:
        return MISSING
    return f"{decimal(lower, digits)}{EN_DASH}{decimal(upper, digits)}"


def pts(value: float | None, digits: int = 1) -> str:
    """Write a difference of rates in percentage points: ``pts(0.068) == "6.8 pts"``."""
    return MISSING if value is None else f"{100 * value:.{digits}f} pts"


def signed_pts(value: float | None, digits: int = 1) -> str:
    """Write a signed gap in percentage points: ``signed_pts(0.116) == "+11.6 pts"``."""
    return MISSING if value is None else f"{100 * value:+.{digits}f} pts"


def pts_range(lower: float | None, upper: float | None, digits: int = 1) -> str:
    """Write an interval in percentage points: ``pts_range(0.064, 0.072) == "6.4–7.2 pts"``."""
    if lower is None or upper is None:
        return MISSING
    return f"{100 * lower:.{digits}f}{EN_DASH}{100 * upper:.{digits}f} pts"


def pct(value: float | None, digits: int = 1) -> str:
    """Write a rate in percent: ``pct(0.1508) == "15.1%"``."""
    return MISSING if value is None else f"{100 * value:.{digits}f}%"


def pct_range(lower: float | None, upper: float | None, digits: int = 1) -> str:
    """Write an interval of rates in percent: ``pct_range(0.134, 0.161) == "13.4–16.1%"``."""
    if lower is None or upper is None:
        return MISSING
    return f"{100 * lower:.{digits}f}{EN_DASH}{100 * upper:.{digits}f}%"


def p_value(p: float | None) -> str:
    """Write a p-value: ``< 0.001`` below 0.001, else three significant digits.

    >>> p_value(4.34e-11), p_value(0.0123), p_value(0.5), p_value(1.0), p_value(0.001)
    ('< 0.001', '0.0123', '0.500', '1.00', '0.001')
    """
    if p is None or math.isnan(p):
        return MISSING
    if p < SMALLEST_P:
        return f"< {SMALLEST_P:g}"
    if p == SMALLEST_P:
        return f"{SMALLEST_P:g}"
    return f"{p:#.3g}"  # three significant digits, trailing zeros kept


def p_equals(p: float | None) -> str:
    """Write ``p = …`` or ``p < 0.001`` (:func:`p_value`).

    >>> p_equals(0.000999), p_equals(0.0123)
    ('p < 0.001', 'p = 0.0123')
    """
    shown = p_value(p)
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def _moment(value: str | dt.datetime) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:  # a naive time is read as UTC, as the ledger stores it
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def utc_date(value: str | dt.datetime) -> str:
    """Write the UTC day of a moment: ``utc_date("2010-11-30T00:00:00+00:00") == "30 Nov 2010"``."""
    moment = _moment(value)
    return f"{moment.day} {moment:%b %Y}"


def utc_time(value: str | dt.datetime) -> str:
    """Write a moment in UTC to the minute.

    >>> utc_time("2010-11-30T00:00:00+00:00"), utc_time("2024-05-01T16:30:12.5+02:00")
    ('30 Nov 2010, 00:00 UTC', '1 May 2024, 14:30 UTC')
    """
    moment = _moment(value)
    return f"{utc_date(moment)}, {moment:%H:%M} UTC"


def month(value: str) -> str:
    """Write a calendar month ``YYYY-MM`` as ``Nov 2010``."""
    return f"{dt.datetime.strptime(value, '%Y-%m'):%b %Y}"


def human_dates(text: str) -> str:
    """Rewrite the ISO dates and times in a sentence (UTC) as :func:`utc_date` / :func:`utc_time`.

    A date alone, or a time at midnight, reads as the day; any other time keeps its minutes.

    >>> human_dates("first alarm at lead 1,105, 2009-10-19; loaded on 2010-11-30T06:15:00Z")
    'first alarm at lead 1,105, 19 Oct 2009; loaded on 30 Nov 2010, 06:15 UTC'
    """

    def written(match: re.Match[str]) -> str:
        moment = _moment(match[0])
        return utc_date(moment) if moment.time() == dt.time() else utc_time(moment)

    return _ISO_MOMENT.sub(written, text)


def e_value_html(log_e: float) -> str:
    """Write an e-value from its natural log, as HTML.

    Three significant digits below 10⁶ (``20.0``, ``1,230``); beyond, the power of ten with a
    raised exponent (``10<sup>468</sup>``).
    """
    log10 = log_e / math.log(10)
    if log10 < POWER_FROM:
        value = math.exp(log_e)
        return f"{value:,.0f}" if value >= 1000 else f"{value:.3g}"
    return f"10<sup>{log10:.0f}</sup>"


def powers_html(escaped: str) -> str:
    """Raise the exponents of ``10^N`` in already escaped HTML text: ``10<sup>N</sup>``.

    >>> powers_html("evidence E = 10^827 &ge; 20")
    'evidence E = 10<sup>827</sup> &ge; 20'
    """
    return _POWER.sub(r"10<sup>\1</sup>", escaped)
