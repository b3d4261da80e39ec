"""A lead-scoring model to register: a seeded lead table and a scikit-learn pipeline.

``fitted_pipeline`` is the model the model tests register: numeric columns standardised,
categorical ones one-hot encoded (a ``ColumnTransformer``), then a logistic regression. Its
artefacts are the same fitted pipeline saved with skops (``skops_bytes``) and converted to ONNX
by skl2onnx with one input per column (``onnx_bytes``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

#: Whole-number columns (int64), measured columns (float64) and categories (strings).
INTEGER_FEATURES = ("employees", "visits", "email_opens", "days_since_contact")
FLOAT_FEATURES = ("pages_per_visit", "revenue_musd")
CATEGORICAL_FEATURES = ("industry", "channel")
FEATURES = (*INTEGER_FEATURES, *FLOAT_FEATURES, *CATEGORICAL_FEATURES)
INDUSTRIES = ("retail", "saas", "finance", "health", "logistics")
CHANNELS = ("organic", "paid", "referral", "event")


def lead_frame(n: int, seed: int) -> pd.DataFrame:
    """Return ``n`` synthetic leads (the :data:`FEATURES` columns and ``converted``, 0/1).

    The log-odds of conversion are linear in the standardised features plus an effect per
    industry and channel, so the logistic pipeline is well specified.
    """
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "employees": rng.integers(1, 5_000, n),
            "visits": rng.poisson(4.0, n),
            "email_opens": rng.poisson(2.0, n),
            "days_since_contact": rng.integers(0, 120, n),
            "pages_per_visit": rng.gamma(2.0, 1.5, n),
            "revenue_musd": rng.lognormal(1.0, 1.2, n),
            "industry": rng.choice(INDUSTRIES, n),
            "channel": rng.choice(CHANNELS, n),
        }
    )
    industry = frame["industry"].map(
        dict(zip(INDUSTRIES, (-0.4, 0.6, 0.2, -0.1, 0.0), strict=True))
    )
    channel = frame["channel"].map(dict(zip(CHANNELS, (0.3, -0.5, 0.8, 0.1), strict=True)))
    eta = (
        -1.5
        + 0.25 * frame["visits"]
        + 0.3 * frame["email_opens"]
        - 0.015 * frame["days_since_contact"]
        + 0.2 * np.log(frame["employees"])
        + 0.1 * frame["pages_per_visit"]
        + industry
        + channel
    )
    frame["converted"] = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    return frame


def pipeline() -> Pipeline:
    """Return the unfitted pipeline: scaler + one-hot encoder, then a logistic regression."""
    columns = ColumnTransformer(
        [
            ("numeric", StandardScaler(), [*INTEGER_FEATURES, *FLOAT_FEATURES]),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
        ]
    )
    return Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=1_000))])


def fitted_pipeline(seed: int = 0, n: int = 5_000) -> Pipeline:
    """Return :func:`pipeline` fitted on ``lead_frame(n, seed)``."""
    frame = lead_frame(n, seed)
    return pipeline().fit(frame[list(FEATURES)], frame["converted"])


def skops_bytes(model: Any) -> bytes:
    """Return the fitted model saved with skops.

    Each call gives different bytes for the same model (skops names its arrays by object id
    and stamps the zip's times): dump once and keep the bytes where a fingerprint matters.
    """
    import skops.io

    return skops.io.dumps(model)


def onnx_bytes(model: Pipeline, frame: pd.DataFrame | None = None) -> bytes:
    """Return the fitted pipeline converted to ONNX, one input per :data:`FEATURES` column.

    Integer columns are int64 inputs, floats float (float32: what skl2onnx's linear models
    compute in), categories strings; the classifier's probabilities come as an (n, 2) tensor
    (``zipmap=False``).
    """
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType

    kinds = {name: Int64TensorType for name in INTEGER_FEATURES}
    kinds.update({name: FloatTensorType for name in FLOAT_FEATURES})
    kinds.update({name: StringTensorType for name in CATEGORICAL_FEATURES})
    initial = [(name, kinds[name]([None, 1])) for name in FEATURES]
    onnx_model = to_onnx(model, initial_types=initial, options={"zipmap": False})
    return bytes(onnx_model.SerializeToString())
