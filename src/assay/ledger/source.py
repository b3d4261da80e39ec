"""What an audit reads from evidence: the :class:`LabelSource` protocol.

The audit layer (:func:`assay.audit.scorer.evidence`) needs the labels a scorer is judged on
and what the evidence leaves out, nothing else: not the file, not the connection, not ingest.
:class:`assay.ledger.Ledger` implements it — the DuckDB ledger, and the service's stores,
whose reads hand a task a ``Ledger`` (the PostgreSQL store loads the workspace's rows into an
in-memory one) — and so does any reader that shares one read among several audits (a report
reads each scorer's labels once). mypy checks each against it where it is passed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import datetime as dt
    from pathlib import Path

    from assay.ledger.checks import Backfilled, EvidenceWarning
    from assay.ledger.labels import LabelSet


class LabelSource(Protocol):
    """Labelled leads as of a time, and the evidence checks that go with them."""

    #: Where the evidence lives, as a report may show it (a file, or a workspace's name).
    path: Path

    def scorers(self) -> list[str]:
        """Return the scorers with predictions, sorted."""
        ...

    def require_scorer(self, name: str) -> None:
        """Refuse (``AssayInputError``) a scorer the evidence does not hold."""
        ...

    def judged_labels(
        self,
        *,
        as_of: dt.datetime | str | None = None,
        scorer: str | None = None,
        model_version: str | None = None,
        policy: str = "first",
        recording_lag_days: float | None = None,
    ) -> LabelSet:
        """Return the labels a scorer is judged on as of ``as_of`` (:mod:`assay.ledger.labels`)."""
        ...

    def evidence_warnings(
        self, *, as_of: dt.datetime | str | None = None, scorer: str | None = None
    ) -> list[EvidenceWarning]:
        """Rows no label can use as of ``as_of`` (:mod:`assay.ledger.checks`)."""
        ...

    def backfilled(
        self, *, as_of: dt.datetime | str | None = None, scorer: str | None = None
    ) -> Backfilled | None:
        """Visible predictions that were loaded after the fact (``--backfill``)."""
        ...
