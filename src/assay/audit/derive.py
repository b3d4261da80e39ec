"""Record a calibrated score as a new, auditable scorer in the ledger.

``apply_calibrator`` reads a scorer's predictions (those with a probability), maps them through
a fitted calibrator, and ingests them as the derived scorer ``NAME+METHOD`` whose model version
is the calibrator's fingerprint. The derived predictions keep the original ``scored_at``,
horizon and target, but are *recorded now*: an audit as of an earlier date cannot see them.

**Judged out of sample.** A calibrator fitted on the ledger's outcomes as of F would look
calibrated on those very outcomes. So the derivation is recorded first (``derivations``, in
the hash chain): the derived scorer version, its base scorer, the calibrator's JSON and its fit
cut-off F. The labels it is judged on (``Ledger.judged_labels``, used by every audit) leave out
every lead it first scored before F; only leads scored at or after F count. A calibrator that
does not record F (fitted outside ``assay recalibrate``, or saved before assay recorded it) is
refused: set ``calibrator.fitted_as_of_`` to the as-of of the outcomes it learned from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError
from assay.stats.recalibration import CALIBRATORS

if TYPE_CHECKING:
    import datetime as dt

    from assay.ledger import IngestReceipt, Ledger


def method_name(calibrator: Any) -> str:
    """Return the METHOD of a derived scorer ``NAME+METHOD``.

    The calibrator's name in :data:`assay.stats.recalibration.CALIBRATORS` (``assay recalibrate
    --method``) without its hyphen ("platt", "vennabers"). A calibrator that is not one of those (or
    a subclass of one) is refused: its method would have no name a user could type.
    """
    for cls in type(calibrator).__mro__:
        for name, registered in CALIBRATORS.items():
            if cls is registered:
                return name.replace("-", "")
    raise AssayInputError(
        f"{type(calibrator).__name__} is not a calibrator assay can record; use one of "
        f"{', '.join(CALIBRATORS)} (assay recalibrate --method)"
    )


def apply_calibrator(
    ledger: Ledger, calibrator: Any, *, scorer: str, now: dt.datetime | None = None
) -> IngestReceipt:
    """Ingest ``calibrator``'s output on ``scorer``'s predictions as a derived scorer.

    The derivation and its fit cut-off are recorded first (module docstring).
    """
    fitted_as_of = getattr(calibrator, "fitted_as_of_", None)
    if fitted_as_of is None:
        raise AssayInputError(
            "the calibrator does not record the as-of of the outcomes it was fitted on, so its "
            "in-sample leads cannot be told apart; refit it with `assay recalibrate` (or set "
            "fitted_as_of_ to the as-of of its training outcomes)"
        )
    table = ledger.labels(scorer=scorer, policy="all", as_of=now).table
    table = table.filter(pc.is_valid(table["probability"]))
    if table.num_rows == 0:
        raise AssayInputError(
            f"scorer {scorer!r} has no predictions with a probability to calibrate"
        )
    method = method_name(calibrator)
    derived = f"{scorer}+{method}"
    calibrated = calibrator.predict_proba(table["probability"].to_numpy())[:, 1]
    keys = sorted({k for row in table["segments"].to_pylist() for k, _ in row})
    segment_columns = {
        key: pc.map_lookup(table["segments"], pa.scalar(key), "first") for key in keys
    }
    batch = pa.table(
        {
            "prediction_id": pc.binary_join_element_wise(
                table["prediction_id"], pa.scalar(method), "+"
            ),
            "entity_id": table["entity_id"],
            "scorer": pa.repeat(pa.scalar(derived), table.num_rows),
            "model_version": pa.repeat(pa.scalar(calibrator.fingerprint[:16]), table.num_rows),
            "score": pa.array(calibrated),
            "scored_at": table["scored_at"],
            "horizon_days": table["horizon_days"],
            "target_event": table["target_event"],
            "input_hash": table["input_hash"],
            "source": pa.repeat(pa.scalar(f"calibrator {calibrator.fingerprint}"), table.num_rows),
            **segment_columns,
        }
    )
    ledger.record_derivation(
        scorer=derived, base_scorer=scorer, fingerprint=calibrator.fingerprint,
        calibrator_json=calibrator.to_json(), fitted_as_of=fitted_as_of, now=now,
    )  # fmt: skip
    return ledger.ingest_predictions(batch, segments=keys, now=now)
