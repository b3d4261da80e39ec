"""Lead scores with a known truth, for simulations: what each kind of miscalibration looks like.

Each lead's true log-odds is t ~ N(m, 1), with m chosen so that the mean true probability is
``base_rate`` (E[σ(m + Z)] = base_rate, by Gauss–Hermite quadrature), and the score is derived
from it by a ``distortion`` of size ``amount``:

* ``"calibrated"``: p = σ(t);
* ``"multiple"``: p = min(amount·σ(t), 0.999) (amount 1.5 promises 1.5× the truth);
* ``"stretch"``: p = σ(m + amount·(t − m)) (amount > 1 is over-confident);
* ``"shift"``: p = σ(t + amount);
* ``"wiggle"``: p = σ(t + amount·sin(2.5(t − m))), a non-monotone calibration curve.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

from assay._validation import AssayInputError, FloatArray

DISTORTIONS = ("calibrated", "multiple", "stretch", "shift", "wiggle")


@dataclass(frozen=True, eq=False)
class SimulatedScores:
    """Simulated leads: outcomes ``y``, the model's ``score`` and the ``truth`` P(y = 1)."""

    y: FloatArray
    score: FloatArray
    truth: FloatArray


@functools.cache
def centre_for(base_rate: float) -> float:
    """Return m with E[σ(m + Z)] = base_rate for Z ~ N(0, 1)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    weights = weights / weights.sum()
    from scipy.optimize import brentq  # here: `import assay` loads no scipy.optimize

    return float(brentq(lambda m: weights @ expit(m + nodes) - base_rate, -15.0, 15.0))


def simulate_scores(
    n: int, base_rate: float, *, distortion: str = "calibrated", amount: float = 1.0, seed: int = 0
) -> SimulatedScores:
    """Outcomes, scores and true probabilities of ``n`` leads (module docstring)."""
    if distortion not in DISTORTIONS:
        raise AssayInputError(f"distortion={distortion!r}; choose one of {', '.join(DISTORTIONS)}")
    if not 0 < base_rate < 1:
        raise AssayInputError(f"base_rate={base_rate!r} must lie strictly between 0 and 1")
    rng = np.random.default_rng(seed)
    m = centre_for(base_rate)
    t = rng.normal(m, 1.0, n)
    truth = expit(t)
    score = {
        "calibrated": lambda: truth,
        "multiple": lambda: np.minimum(amount * truth, 0.999),
        "stretch": lambda: expit(m + amount * (t - m)),
        "shift": lambda: expit(t + amount),
        "wiggle": lambda: expit(t + amount * np.sin(2.5 * (t - m))),
    }[distortion]()
    y = (rng.random(n) < truth).astype(np.float64)
    return SimulatedScores(y, np.asarray(score, dtype=np.float64), truth)
