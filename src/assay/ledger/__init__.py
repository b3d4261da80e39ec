"""The evidence ledger: frozen predictions, outcomes, derived labels and a hash chain."""

from assay.ledger.labels import InSample, LabelCounts, LabelSet
from assay.ledger.lag import RecordingLag
from assay.ledger.parse import BadRow
from assay.ledger.store import IngestReceipt, Ledger, LedgerIngestError, VerifyResult

__all__ = [
    "BadRow",
    "InSample",
    "IngestReceipt",
    "LabelCounts",
    "LabelSet",
    "Ledger",
    "LedgerIngestError",
    "RecordingLag",
    "VerifyResult",
]
