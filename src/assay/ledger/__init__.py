"""The evidence ledger: frozen predictions, outcomes, derived labels and a hash chain.

The names below load on first use (:mod:`assay._lazy`), so a light submodule such as
``assay.ledger.columns`` (the CLI's help text) is imported without DuckDB. Add a re-export to
``_EXPORTS``, the ``TYPE_CHECKING`` block and ``__all__``.
"""

from typing import TYPE_CHECKING

from assay._lazy import lazy_exports

if TYPE_CHECKING:
    from assay.ledger.integrity import VerifyResult
    from assay.ledger.labels import InSample, LabelCounts, LabelSet
    from assay.ledger.lag import RecordingLag
    from assay.ledger.parse import BadRow
    from assay.ledger.source import LabelSource
    from assay.ledger.store import IngestReceipt, Ledger, LedgerIngestError

_EXPORTS = {
    "InSample": "assay.ledger.labels",
    "LabelCounts": "assay.ledger.labels",
    "LabelSet": "assay.ledger.labels",
    "RecordingLag": "assay.ledger.lag",
    "BadRow": "assay.ledger.parse",
    "LabelSource": "assay.ledger.source",
    "IngestReceipt": "assay.ledger.store",
    "Ledger": "assay.ledger.store",
    "LedgerIngestError": "assay.ledger.store",
    "VerifyResult": "assay.ledger.integrity",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "BadRow",
    "InSample",
    "IngestReceipt",
    "LabelCounts",
    "LabelSet",
    "LabelSource",
    "Ledger",
    "LedgerIngestError",
    "RecordingLag",
    "VerifyResult",
]
