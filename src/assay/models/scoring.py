"""Score new leads with a registered model and record each score with its inputs and seed.

:func:`score_leads` is how an in-house model writes to the ledger: it loads ``NAME@VERSION``
(:func:`assay.models.registry.get_model`), reads the leads (a CSV or Parquet path, an Arrow
table, a pandas or polars frame: :func:`assay.ledger.parse.read_source`), computes the
probability of the positive class for each, and ingests them as predictions of scorer NAME,
model version VERSION, score kind probability, with the seed, and the model's features as the
inputs (:meth:`assay.ledger.Ledger.ingest_predictions` with ``inputs=``): the inputs batch and
the predictions batch are written together or not at all.

**The frame the model sees is the frame replay sees.** The feature columns are typed (CSV text
as the ledger types input columns, :func:`assay.ledger.inputs.typed_text`), encoded as
canonical records (:func:`assay.ledger.inputs.canonical_records`) and parsed back
(:func:`assay.ledger.inputs.records_frame`) before the model predicts, so the stored record
reproduces the exact frame. Rows are scored in ``prediction_id`` order, the
order :mod:`assay.models.replay` re-runs them in. That frame is also handed to the ledger as
the batch's typed input copy (``typed_inputs`` of :meth:`assay.ledger.Ledger.ingest_predictions`),
which replay reads instead of parsing the records again.

**Prediction ids.** From the ``prediction_id`` column (``id_column`` renames another), else
``sha256("NAME@VERSION|entity_id|scored_at")`` (its first 32 hex digits, scored_at as written,
or the scoring time in ISO 8601 when the leads carry none): the same lead scored by the same
model version at the same time gets the same id, so scoring a file twice is a no-op.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from assay._validation import AssayInputError, to_utc
from assay.ledger.parse import apply_mapping, read_source

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from assay.ledger import IngestReceipt, Ledger
    from assay.ledger.store import Progress

#: Columns ``score_leads`` writes itself: leads that carry them are refused.
COMPUTED = ("score", "scorer", "model_version", "score_kind", "seed", "input_hash", "inputs")


def score_leads(
    ledger: Ledger,
    ref: str,
    data: Any,
    *,
    seed: int | None = None,
    id_column: str = "prediction_id",
    mapping: Mapping[str, str] | None = None,
    defaults: Mapping[str, Any] | None = None,
    segments: Sequence[str] = (),
    assume_timezone: str | None = None,
    date_format: str | None = None,
    now: dt.datetime | None = None,
    progress: Progress | None = None,
) -> IngestReceipt:
    """Score ``data`` with the registered model ``ref`` and record the scores (module docstring).

    Parameters
    ----------
    ledger : Ledger
    ref : str
        ``NAME@VERSION`` of a registered model (``assay models register``).
    data : path, Arrow table, pandas or polars frame
        The leads: ``entity_id``, every feature the model reads, and optionally
        ``prediction_id`` (or ``id_column``), ``scored_at``, ``horizon_days``,
        ``target_event``, ``source`` and segment columns.
    seed : int, optional
        Set on every ``random_state`` of the model before predicting, and stored with each
        prediction (None: nothing is set, and nothing stored).
    id_column : str
        The column holding the prediction ids (default ``prediction_id``).
    mapping, defaults, segments, assume_timezone, date_format, progress
        As :meth:`Ledger.ingest_predictions` takes them (``mapping`` applies before the
        features are looked up; ``defaults`` give e.g. ``horizon_days`` and ``target_event``).
    now : datetime, optional
        The scoring and ingest time (default: the clock); ``scored_at`` of leads without one.

    Returns
    -------
    IngestReceipt
        The predictions batch's receipt.
    """
    from assay.ledger.inputs import canonical_records, records_frame, typed_text
    from assay.models.registry import get_model, parse_model_ref

    name, version = parse_model_ref(ref)
    _, model = get_model(ledger, name, version)
    moment = dt.datetime.now(dt.UTC) if now is None else to_utc(now)
    source = read_source(data)
    rename = {
        **(mapping or {}),
        **({id_column: "prediction_id"} if id_column != "prediction_id" else {}),
    }
    table = apply_mapping(source.table, rename)
    _check_columns(table, model.features, ref)
    if "scored_at" not in table.column_names and "scored_at" not in (defaults or {}):
        table = table.append_column(
            "scored_at", pa.repeat(pa.scalar(moment.isoformat()), table.num_rows)
        )
    if "prediction_id" not in table.column_names:
        table = table.append_column("prediction_id", _derived_ids(ref, table, defaults))
    table = table.take(pc.sort_indices(pc.cast(table["prediction_id"], pa.string())))
    features = typed_text(table.select(list(model.features)), decimal_comma=source.decimal_comma)
    frame = records_frame(canonical_records(features)["record"].combine_chunks())
    probability = np.asarray(model.predict(frame, seed), dtype=np.float64)
    for name_, column in zip(features.column_names, features.columns, strict=True):
        table = table.set_column(table.column_names.index(name_), name_, column)
    n = table.num_rows
    table = (
        table.append_column("score", pa.array(probability, pa.float64()))
        .append_column("scorer", pa.repeat(pa.scalar(name), n))
        .append_column("model_version", pa.repeat(pa.scalar(version), n))
        .append_column("score_kind", pa.repeat(pa.scalar("probability"), n))
        .append_column("seed", pa.repeat(pa.scalar(seed, pa.int64()), n))
    )
    return ledger.ingest_predictions(
        table,
        defaults=defaults,
        segments=segments,
        assume_timezone=assume_timezone,
        date_format=date_format,
        inputs=list(model.features),
        typed_inputs=frame,
        now=moment,
        progress=progress,
    )


def _check_columns(table: pa.Table, features: Sequence[str], ref: str) -> None:
    """Refuse leads that lack a feature or carry a column that scoring computes."""
    missing = [f for f in features if f not in table.column_names]
    if missing:
        raise AssayInputError(
            f"the leads lack {len(missing)} column(s) model {ref} reads: {', '.join(missing)} "
            f"(its features: {', '.join(features)}); rename a column with --map SOURCE=NAME"
        )
    computed = [c for c in COMPUTED if c in table.column_names and c not in features]
    if computed:
        raise AssayInputError(
            f"the leads carry column(s) {', '.join(computed)}, which scoring with {ref} writes "
            "itself; drop or rename them (--map SOURCE=OTHER)"
        )


def _derived_ids(ref: str, table: pa.Table, defaults: Mapping[str, Any] | None) -> pa.Array:
    """Return sha256("NAME@VERSION|entity_id|scored_at")[:32] per row (module docstring)."""
    if "entity_id" not in table.column_names:
        raise AssayInputError(
            "the leads have no entity_id column (the lead each score is about); rename yours "
            "with --map SOURCE=entity_id"
        )
    entity = pc.cast(table["entity_id"], pa.string()).to_pylist()
    scored = (
        pc.cast(table["scored_at"], pa.string()).to_pylist()
        if "scored_at" in table.column_names
        else [str((defaults or {})["scored_at"])] * table.num_rows
    )
    return pa.array(
        [
            hashlib.sha256(f"{ref}|{e}|{s}".encode()).hexdigest()[:32]
            for e, s in zip(entity, scored, strict=True)
        ]
    )
