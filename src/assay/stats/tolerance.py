"""How far from perfect still counts as calibrated: one tolerance per level of the hierarchy.

Calibration is judged on the three levels clinical prediction uses (Van Calster et al. 2016,
"A calibration hierarchy for risk models"; Austin & Steyerberg 2019 for ICI/E50/E90):

* **in the large** — the ratio of observed to expected conversions, O/E = Σy / Σp, must lie in
  ``[1/ratio, ratio]`` (default [0.8, 1.25]). Relative, because a 3-point over-promise means
  nothing at a 30% base rate and everything at a 2% one;
* **weak** — the calibration slope b of logit θ = a + b·logit p must lie in
  ``[1/slope, slope]`` (default [0.8, 1.25]); b < 1 is over-confidence (scores too extreme);
* **moderate** — the calibration curve: the binned ECE must be at most
  ``clip(curve × mean promised probability, curve_floor, curve_cap)`` (default 25% of the mean
  score, never below 0.5 points nor above 5 points, the first version's absolute tolerance).

The defaults were chosen on the whole error table (false "calibrated", false "miscalibrated",
interval coverage) of the seeded simulations in ``tests/test_verdicts.py``; the closing note of
the change that introduced them prints that table.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

from assay._validation import AssayInputError

_KEYS = ("ratio", "slope", "curve", "curve_floor", "curve_cap")
_ALIASES = {"oe": "ratio", "floor": "curve_floor", "cap": "curve_cap"}


@dataclass(frozen=True)
class Tolerance:
    """How far from perfect still counts as calibrated, per level of the hierarchy.

    In the large, O/E = Σy / Σp must lie in [1/ratio, ratio]; the calibration slope b of
    logit θ = a + b·logit p in [1/slope, slope]; and the binned ECE of the curve must be at
    most clip(curve × mean score, curve_floor, curve_cap) (details in the module docstring).

    Parameters
    ----------
    ratio : float, default=1.25
        Band of the observed/expected ratio, [1/ratio, ratio]; above 1.
    slope : float, default=1.25
        Band of the calibration slope, [1/slope, slope]; above 1.
    curve : float, default=0.25
        The ECE allowed, as a share of the mean promised probability.
    curve_floor : float, default=0.005
        Least ECE allowed at any base rate.
    curve_cap : float, default=0.05
        Largest ECE allowed at any base rate.

    Raises
    ------
    AssayInputError
        If ``ratio`` or ``slope`` is not a finite number above 1, a curve setting is not a
        positive finite number, or ``curve_floor`` exceeds ``curve_cap``.

    References
    ----------
    .. [1] B. Van Calster, D. Nieboer, Y. Vergouwe, B. De Cock, M. J. Pencina and
       E. W. Steyerberg, "A calibration hierarchy for risk models was defined: from utopia
       to empirical data", Journal of Clinical Epidemiology 74, 2016, pp. 167–176.
    .. [2] P. C. Austin and E. W. Steyerberg, "The Integrated Calibration Index (ICI) and
       related metrics for quantifying the calibration of logistic regression models",
       Statistics in Medicine 38(21), 2019, pp. 4051–4065.

    Examples
    --------
    The ECE allowed is 25% of the mean score, between 0.5 and 5 points:

    >>> from assay import Tolerance
    >>> tolerance = Tolerance()
    >>> tolerance.ratio_band, tolerance.curve_limit(0.1)
    ((0.8, 1.25), 0.025)
    >>> tolerance.curve_limit(0.01), tolerance.curve_limit(0.4)
    (0.005, 0.05)
    >>> Tolerance.parse("ratio=1.5, floor=0.01").curve_limit(0.01)
    0.01
    >>> Tolerance(ratio=0.9)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    assay._validation.AssayInputError: tolerance ratio=0.9; it must be a number above 1 ...
    """

    ratio: float = 1.25
    slope: float = 1.25
    curve: float = 0.25
    curve_floor: float = 0.005
    curve_cap: float = 0.05

    def __post_init__(self) -> None:
        """Validate the five settings (see Raises)."""
        for name in ("ratio", "slope"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 1):
                raise AssayInputError(
                    f"tolerance {name}={value!r}; it must be a number above 1 "
                    f"(1.25 accepts [0.8, 1.25])"
                )
        for name in ("curve", "curve_floor", "curve_cap"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise AssayInputError(f"tolerance {name}={value!r}; it must be a positive number")
        if self.curve_floor > self.curve_cap:
            raise AssayInputError(
                f"tolerance curve_floor={self.curve_floor} is above curve_cap={self.curve_cap}"
            )

    @classmethod
    def absolute(cls, ece: float) -> Tolerance:
        """Return the first version's rule: ECE ≤ ``ece`` at every base rate.

        The other levels keep their defaults.
        """
        return cls(curve=1.0, curve_floor=ece, curve_cap=ece)

    @classmethod
    def coerce(cls, value: Tolerance | float | None) -> Tolerance:
        """Return a Tolerance: None → the defaults; a bare number → :meth:`absolute`."""
        if value is None:
            return cls()
        if isinstance(value, Tolerance):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls.absolute(float(value))
        raise AssayInputError(f"tolerance={value!r}; give a Tolerance or a number")

    @classmethod
    def parse(cls, text: str) -> Tolerance:
        """Parse ``"ratio=1.5,slope=1.3,curve=0.2,floor=0.005,cap=0.05"``.

        Omitted keys keep their defaults; ``oe`` is an alias of ``ratio``.
        """
        values: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            match = re.fullmatch(r"([a-z_]+)\s*=\s*([0-9.eE+-]+)", part)
            key = None if match is None else _ALIASES.get(match.group(1), match.group(1))
            if match is None or key not in _KEYS:
                raise AssayInputError(
                    f"tolerance {part!r} is not understood; write KEY=NUMBER with KEY one of "
                    "ratio (O/E), slope, curve, floor, cap, e.g. 'ratio=1.25,slope=1.25'"
                )
            values[key] = float(match.group(2))
        return cls(**values)

    @property
    def ratio_band(self) -> tuple[float, float]:
        """The accepted observed/expected ratios, (1/ratio, ratio)."""
        return 1.0 / self.ratio, self.ratio

    @property
    def slope_band(self) -> tuple[float, float]:
        """The accepted calibration slopes, (1/slope, slope)."""
        return 1.0 / self.slope, self.slope

    def curve_limit(self, mean_score: float) -> float:
        """Return the ECE allowed for a score whose mean promised probability is ``mean_score``."""
        return float(min(max(self.curve * mean_score, self.curve_floor), self.curve_cap))

    def describe(self, mean_score: float) -> str:
        """Return the tolerances in words, for the sentence beside a verdict."""
        lo, hi = self.ratio_band
        s_lo, s_hi = self.slope_band
        return (
            f"observed/expected conversions within {lo:.2f}–{hi:.2f}, calibration slope within "
            f"{s_lo:.2f}–{s_hi:.2f}, typical gap (ECE) at most "
            f"{100 * self.curve_limit(mean_score):.2f} points"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the five settings as a dict."""
        return asdict(self)
