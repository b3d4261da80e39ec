"""Bundled real data: the UCI bank-marketing calls (CC BY 4.0, Moro, Cortez & Rita 2014).

A call is a touch and ``y`` is the conversion; rows are in date order, so training on early
calls and scoring later ones is a realistic time split. ``duration`` is dropped from the
inputs because it is known only after the call.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

if TYPE_CHECKING:
    from assay._validation import FloatArray

BANK_FILE = "bank-additional-full.csv.gz"
BANK_SHA256 = "74adfc578bf77a7ff4bb1ba4a9f8709d9e3c6907342959c2c8416847e0afb4d8"
CATEGORICAL = (
    "job", "marital", "education", "default", "housing", "loan", "contact", "month",
    "day_of_week", "poutcome",
)  # fmt: skip
NUMERIC = (
    "age", "campaign", "pdays", "previous", "emp.var.rate", "cons.price.idx", "cons.conf.idx",
    "euribor3m", "nr.employed",
)  # fmt: skip


def load_bank_marketing() -> pa.Table:
    """Load the 41,188 calls as an Arrow table (checksum verified), with ``y`` as 0/1 int."""
    raw = gzip.decompress(resources.files("assay.demo.data").joinpath(BANK_FILE).read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != BANK_SHA256:
        raise RuntimeError(
            f"bundled {BANK_FILE} is corrupt: sha256 {digest}, expected {BANK_SHA256}"
        )
    table = pacsv.read_csv(pa.BufferReader(raw), parse_options=pacsv.ParseOptions(delimiter=";"))
    converted = pc.cast(pc.equal(table["y"], "yes"), pa.int64())
    return table.set_column(table.schema.get_field_index("y"), "y", converted)


def feature_matrix(table: pa.Table) -> FloatArray:
    """One-hot categoricals (fixed category order) beside the numeric inputs."""
    columns = [np.asarray(table[name].to_numpy(), dtype=np.float64) for name in NUMERIC]
    for name in CATEGORICAL:
        values = table[name].to_numpy(zero_copy_only=False)
        for level in sorted(set(values.tolist()))[1:]:
            columns.append((values == level).astype(np.float64))
    return np.column_stack(columns)


@dataclass(frozen=True)
class ScoredCalls:
    """Later calls scored by models trained on earlier ones."""

    calls: pa.Table  # the scored (later) calls, in date order
    y: FloatArray
    scores: dict[str, FloatArray]  # scorer name -> P(subscribe)


def score_bank_calls(train_fraction: float = 0.5, seed: int = 0) -> ScoredCalls:
    """Train logistic regression and gradient boosting on the first calls; score the rest.

    The first ``train_fraction`` of calls is the training set. Deterministic for a given
    ``seed``.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    table = load_bank_marketing()
    x = feature_matrix(table)
    y = np.asarray(table["y"].to_numpy(), dtype=np.float64)
    cut = int(len(y) * train_fraction)
    models = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        "boosting": HistGradientBoostingClassifier(max_iter=200, random_state=seed),
    }
    scores = {}
    for name, model in models.items():
        model.fit(x[:cut], y[:cut])
        scores[name] = model.predict_proba(x[cut:])[:, 1]
    return ScoredCalls(table.slice(cut), y[cut:], scores)
