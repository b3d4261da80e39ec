"""The honest score in the report: a vendor's raw score and its honest version, side by side.

When a report audits a vendor ``VENDOR`` and its honest scorer ``VENDOR~honest`` (the calibrated
probability :func:`assay.models.honest.score_honestly` serves and records), it shows, per pair:

* **Side by side, on the leads both judged**: the matured leads (same ``entity_id``) the vendor
  scored and the honest scorer made a claim on (not an abstention), one emission per lead under
  the report's policy. That is the common set of the two scorers' comparison
  (:func:`assay.stats.compare.compare`; the report's own comparison when it compares exactly
  these two, else the same seam run on the pair). Per scorer: the calibration error (plug-in,
  with its posterior credible interval) and verdict, the AUC with its Bayesian-bootstrap
  interval, and observed/expected conversions O/E = Σy / Σp beside the promised rate Σp / n
  and the observed rate Σy / n. Then P(honest closer to calibrated): the share of paired
  bootstrap draws in which the honest score's debiased CE² is below the raw score's, ties
  counting one half (:class:`assay.stats.compare.PairComparison`, oriented honest first).
* **Held out**: the honest scorer's labels are the ledger's held-out labels
  (:meth:`Ledger.judged_labels`): a lead counts only when the map version that served it was
  built before the lead was scored and before any of its outcomes was recorded (the
  ``derivations`` table, :mod:`assay.ledger.labels`), so no version is judged on an outcome it
  learned from. ``in_sample`` is how many leads that rule left out.
* **Served**: per map version, when it was built (its derivation's fit cut-off), the honest
  scores it served as of the report (every recorded prediction with ``recorded_at`` and
  ``scored_at`` ≤ the as-of, matured or not) and how many of them abstained: the map's
  "not yet" (too little evidence near that score or in that segment) and "out of range" (a
  raw score outside what it has seen), recorded without a probability. The share is
  abstentions / served.

Nothing here fits a statistic: the numbers are the comparison's, the counts the ledger's.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from assay.models.honest import SUFFIX

if TYPE_CHECKING:
    from assay.audit.report import ComparisonView
    from assay.audit.scorer import Audit
    from assay.ledger import Ledger
    from assay.stats.compare import Comparison, ScorerSummary


@dataclass(frozen=True)
class ServedVersion:
    """One map version: when it was built, the scores it served and its abstentions."""

    map_version: str | None
    built_as_of: str | None  # ISO 8601, UTC; None: no derivation recorded by the as-of
    served: int
    abstained: int  # "not yet" or "out of range": recorded without a probability


@dataclass(frozen=True)
class Side:
    """One scorer on the leads both judged: the comparison's summary, promise and O/E."""

    summary: ScorerSummary
    expected_rate: float  # Σp / n: the conversion rate it promised
    observed_expected: float | None  # Σy / Σp (None when it promised nothing)

    def to_dict(self) -> dict[str, Any]:
        """Return the summary's fields, then the promised rate and O/E."""
        return {
            **asdict(self.summary),
            "expected_rate": self.expected_rate,
            "observed_expected": self.observed_expected,
        }


@dataclass(frozen=True, eq=False)
class HonestScore:
    """A vendor's raw score beside its honest version (module docstring)."""

    vendor: str
    scorer: str  # VENDOR~honest
    n_judged: int  # leads both judged (0: none yet, see ``note``)
    observed_rate: float | None  # Σy / n on those leads
    raw: Side | None
    honest: Side | None
    prob_honest_closer: float | None  # P(honest debiased CE² < raw's), paired draws
    pair_verdict: str | None  # the comparison's verdict of the pair
    in_sample: int  # the honest scorer's leads left out: its map learned from their outcomes
    served: list[ServedVersion]
    note: str | None = None  # why they are not judged side by side
    #: The pair's comparison, for its reliability diagrams (not serialised).
    view: ComparisonView | None = field(default=None, repr=False)

    @property
    def served_total(self) -> int:
        """Honest scores served as of the report, every map version."""
        return sum(v.served for v in self.served)

    @property
    def abstained_total(self) -> int:
        """Served honest scores that were "not yet" or "out of range"."""
        return sum(v.abstained for v in self.served)

    @property
    def abstention_share(self) -> float | None:
        """Abstentions / served (None when nothing was served)."""
        total = self.served_total
        return self.abstained_total / total if total else None

    def sentences(self) -> list[str]:
        """Say the block in words: both scorers judged side by side, then what was served."""
        said = []
        if self.raw is None or self.honest is None:
            said.append(str(self.note))
        else:
            raw, honest = self.raw.summary, self.honest.summary
            said.append(
                f"On {self.n_judged:,} leads both judged, the raw score of {self.vendor} is "
                f"{raw.verdict} ({_error(raw)}) and its honest score {self.scorer} is "
                f"{honest.verdict} ({_error(honest)}); {self.pair_verdict} "
                f"(P({self.scorer} closer to calibrated) = {self.prob_honest_closer:.3f}). "
                f"Ranking: AUC {_auc(raw)} raw, {_auc(honest)} honest"
            )
        share = self.abstention_share
        if share is None:
            said.append(f"{self.scorer} has served no score as of the report")
        else:
            versions = len(self.served)
            said.append(
                f"{self.scorer} served {self.served_total:,} scores "
                f"({versions:,} map version{'' if versions == 1 else 's'}); "
                f"{self.abstained_total:,} ({100 * share:.1f}%) were “not yet” or "
                "“out of range”, recorded as abstentions and never judged"
            )
        return said

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe, in a stable key order (without the comparison kept for diagrams)."""
        return {
            "vendor": self.vendor,
            "scorer": self.scorer,
            "n_judged": self.n_judged,
            "observed_rate": self.observed_rate,
            "raw": None if self.raw is None else self.raw.to_dict(),
            "honest": None if self.honest is None else self.honest.to_dict(),
            "prob_honest_closer": self.prob_honest_closer,
            "pair_verdict": self.pair_verdict,
            "in_sample": self.in_sample,
            "served": [asdict(v) for v in self.served],
            "served_total": self.served_total,
            "abstained_total": self.abstained_total,
            "abstention_share": self.abstention_share,
            "note": self.note,
        }


def _error(summary: ScorerSummary) -> str:
    """Write the calibration error in points, with its interval when it has one."""
    error = f"calibration error {100 * summary.ece:.1f} pts"
    if summary.ece_lower is None or summary.ece_upper is None:
        return error
    return f"{error}, interval {100 * summary.ece_lower:.1f}–{100 * summary.ece_upper:.1f} pts"


def _auc(summary: ScorerSummary) -> str:
    if summary.auc is None:
        return "—"
    if summary.auc_lower is None or summary.auc_upper is None:
        return f"{summary.auc:.3f}"
    return f"{summary.auc:.3f} ({summary.auc_lower:.3f}–{summary.auc_upper:.3f})"


def honest_pairs(audits: list[Audit]) -> list[tuple[Audit, Audit]]:
    """Return (vendor's audit, honest scorer's audit) per honest scorer audited with its vendor.

    In the report's order of the honest scorers.
    """
    by_name = {a.scorer: a for a in audits}
    return [
        (by_name[a.scorer.removesuffix(SUFFIX)], a)
        for a in audits
        if a.scorer.endswith(SUFFIX) and a.scorer.removesuffix(SUFFIX) in by_name
    ]


def served_versions(ledger: Ledger, scorer: str, as_of: dt.datetime) -> list[ServedVersion]:
    """Per model version of ``scorer``: its fit cut-off and the predictions it served by ``as_of``.

    A prediction is served by the as-of when it was recorded and scored by then (the label
    rule's visibility); the versions are in the order they were built.
    """
    rows = ledger.con.execute(
        """
        SELECT p.model_version, min(d.fitted_as_of) AS built, count(*),
               count(*) FILTER (WHERE p.abstained)
        FROM predictions p LEFT JOIN derivations d
          ON d.scorer = p.scorer AND d.model_version = p.model_version
         AND d.recorded_at <= $as_of
        WHERE p.scorer = $scorer AND p.recorded_at <= $as_of AND p.scored_at <= $as_of
        GROUP BY p.model_version ORDER BY built NULLS LAST, p.model_version
        """,
        {"scorer": scorer, "as_of": as_of},
    ).fetchall()
    return [
        ServedVersion(
            map_version=version,
            built_as_of=None if built is None else _utc(built).isoformat(),
            served=int(served),
            abstained=int(abstained),
        )
        for version, built, served, abstained in rows
    ]


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _side(comparison: Comparison, name: str) -> Side:
    summary = next(s for s in comparison.common if s.scorer == name)
    promised = float(np.sum(comparison.common_scores[name]))
    happened = float(np.sum(comparison.common_y))
    return Side(
        summary=summary,
        expected_rate=promised / comparison.n_common,
        observed_expected=happened / promised if promised > 0 else None,
    )


def honest_score(
    ledger: Ledger,
    raw: Audit,
    honest: Audit,
    view: ComparisonView | None,
    why: list[str],
    as_of: dt.datetime,
) -> HonestScore:
    """Return the block of one pair (:func:`honest_pairs`) from the comparison of the two.

    ``view`` compares exactly these two scorers (None when they share no judged lead, ``why``
    saying so).
    """
    served = served_versions(ledger, honest.scorer, as_of)
    if view is None:
        return HonestScore(
            vendor=raw.scorer, scorer=honest.scorer, n_judged=0, observed_rate=None, raw=None,
            honest=None, prob_honest_closer=None, pair_verdict=None,
            in_sample=honest.counts.in_sample, served=served,
            note=" ".join(why),
        )  # fmt: skip
    comparison = view.comparison
    pair = next(p for p in comparison.pairs if {p.a, p.b} == {raw.scorer, honest.scorer})
    prob = pair.prob_a_lower_ece if pair.a == honest.scorer else 1 - pair.prob_a_lower_ece
    return HonestScore(
        vendor=raw.scorer,
        scorer=honest.scorer,
        n_judged=comparison.n_common,
        observed_rate=float(np.mean(comparison.common_y)),
        raw=_side(comparison, raw.scorer),
        honest=_side(comparison, honest.scorer),
        prob_honest_closer=prob,
        pair_verdict=pair.verdict,
        in_sample=honest.counts.in_sample,
        served=served,
        view=view,
    )
