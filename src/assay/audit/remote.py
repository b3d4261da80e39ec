"""Audit predictions where they live: labels, edges and per-bin sums run in the engine.

Only per-bin sums and label counts leave the engine; the verdict, the credible interval and
the noise floor come from :func:`assay.calibration_from_stats` on the merged BinStats.
Metrics that need every row (AUC, log loss, smooth ECE) are not computed on this path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ibis

from assay._validation import AssayInputError
from assay.audit.scorer import AuditConfig, Bucket, bucket_rows
from assay.pushdown.expressions import labelled
from assay.pushdown.stats import equal_mass_stats, total_binstats
from assay.stats.calibration import CalibrationReport, calibration_from_stats

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Sequence

    from assay.pushdown.sources import Source
    from assay.stats.binstats import BinStats

REMOTE_SCHEMA_VERSION = 1


@dataclass(frozen=True, eq=False)
class RemoteAudit:
    """One scorer's calibration from in-engine BinStats, with its label counts."""

    scorer: str
    stats: BinStats
    calibration: CalibrationReport
    buckets: list[Bucket]
    labels: dict[str, int]  # matured positive / negative, and pending, of visible predictions

    def to_dict(self) -> dict[str, Any]:
        """Return the scorer, its label counts, BinStats and calibration as JSON-safe data."""
        return {
            "scorer": self.scorer,
            "labels": dict(self.labels),
            "binstats": self.stats.to_dict(),
            "calibration": self.calibration.to_dict(),
        }


def label_counts(source: Source, *, as_of: dt.datetime, policy: str) -> dict[str, dict[str, int]]:
    """Count the visible predictions per scorer, in the engine.

    Matured positive / negative, and pending (window open, early conversions included, as the
    audit leaves them out).
    """
    labels = labelled(source.predictions, source.outcomes, as_of=as_of, policy=policy)
    state = ibis.ifelse(labels.matured, labels.label, "pending")
    rows = labels.group_by(scorer=labels.scorer, state=state).aggregate(n=ibis._.count())
    table = rows.to_pyarrow()
    counts: dict[str, dict[str, int]] = {}
    columns = (table[c].to_pylist() for c in ("scorer", "state", "n"))
    for scorer, label, n in zip(*columns, strict=True):
        counts.setdefault(scorer, {"positive": 0, "negative": 0, "pending": 0})[label] = int(n)
    return dict(sorted(counts.items()))


def audit_source(
    source: Source,
    *,
    as_of: dt.datetime,
    scorers: Sequence[str] | None = None,
    policy: str = "first",
    edges: Sequence[float] | None = None,
    config: AuditConfig | None = None,
) -> list[RemoteAudit]:
    """Audit each scorer of ``source`` as of ``as_of`` on equal-mass (or the given) edges."""
    config = config or AuditConfig()
    counts = label_counts(source, as_of=as_of, policy=policy)
    unknown = sorted(set(scorers or ()) - set(counts))
    if unknown:
        raise AssayInputError(
            f"no visible predictions for scorer(s) {', '.join(unknown)} as of {as_of.isoformat()}; "
            f"the source has {', '.join(counts) or 'none'}"
        )
    audits = []
    for name in scorers or list(counts):
        labels = labelled(
            source.predictions, source.outcomes, as_of=as_of, scorer=name, policy=policy
        )
        if counts[name]["positive"] + counts[name]["negative"] == 0:
            raise AssayInputError(
                f"scorer {name!r} has no matured predictions as of {as_of.isoformat()} "
                f"({counts[name]['pending']} pending); choose a later as-of"
            )
        stats = (
            equal_mass_stats(labels, config.n_bins)
            if edges is None
            else total_binstats(labels, edges)
        )
        report = calibration_from_stats(
            stats, tolerance=config.tolerance, probability=config.probability,
            credibility=config.credibility, seed=config.seed,
        )  # fmt: skip
        buckets = bucket_rows(report.table, config.credibility, config.thin_bucket)
        audits.append(RemoteAudit(name, stats, report, buckets, counts[name]))
    return audits


def remote_document(
    audits: Sequence[RemoteAudit], *, source: Source, as_of: dt.datetime, policy: str
) -> dict[str, Any]:
    """Return the JSON document of a remote audit: what it was computed from, then each scorer."""
    return {
        "schema_version": REMOTE_SCHEMA_VERSION,
        "source": source.description,
        "as_of": as_of.isoformat(),
        "policy": policy,
        "audits": [a.to_dict() for a in audits],
    }
