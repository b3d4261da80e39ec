"""Model artefacts: which formats assay accepts, how each is checked, and how it is run.

Three formats, none of them pickle:

* ``skops``: a scikit-learn estimator saved with ``skops.io.dump``. The file's schema is read as
  data and every type it names (classes, functions, methods) must be in :data:`TRUSTED_TYPES` or
  trusted by the caller (``--trust TYPE``); ``skops.io.get_untrusted_types`` is consulted too,
  so a type skops itself distrusts needs the same explicit trust. No object is built at
  register; ``skops.io.loads`` runs only in :func:`load_model`, after the same check.
* ``onnx``: an ONNX graph run by onnxruntime on the CPU. Inputs are matched by name (one input
  per column, as skl2onnx makes with per-column ``initial_types``), or a single 2-D tensor whose
  column order the registrant gives (``features``). The probability of the positive class is
  column 1 of an (n, 2) tensor output, or key 1 of skl2onnx's ZipMap output.
* ``calibrator``: assay's own calibrator JSON (``assay recalibrate --out``); its one input is
  ``score``.
* ``honest``: an honest map version (:class:`assay.stats.honest.HonestMap` JSON, what
  ``assay score --honest`` registers); its inputs are ``raw_score`` and ``segment``, and it
  predicts NaN (an abstention) where the map says "not yet" or "out of range".

A pickle (``.pkl``, ``.pickle``, ``.joblib``, or bytes that start like one) is refused: loading
one runs arbitrary code. Save the model with ``skops.io.dump`` instead.

**Inputs and dtypes.** :meth:`LoadedModel.predict` takes an Arrow table with the model's
feature columns, as stored input records come back (integers int64, floats float64, text
strings). A skops model receives them as a pandas DataFrame, unchanged: scikit-learn converts
numeric columns to float64, exactly for integers of magnitude below 2⁵³, so a whole number
stored as an integer gives the same probability as the float it was in the original frame. An
ONNX model receives each column cast to its input's declared element type (e.g. float32).

**Seed convention.** With a seed, every estimator parameter named ``random_state`` (or ending
``__random_state``) is set to it before predicting; with ``None`` those parameters keep the
values stored in the artefact. ONNX graphs and calibrators take no seed.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np

from assay._validation import AssayInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    import pyarrow as pa

FORMATS = ("skops", "onnx", "calibrator", "honest")
#: The inputs of an honest map: the vendor's raw score and the lead's segment (may be null).
HONEST_FEATURES = ("raw_score", "segment")

#: Types a skops artefact may name without ``--trust``: scikit-learn's preprocessing, impute,
#: compose, pipeline, logistic / SGD and tree-ensemble classifiers with the internals they store
#: (trees, binners, losses), the numpy/scipy containers they keep, and plain Python containers.
TRUSTED_TYPES: tuple[str, ...] = (
    "builtins.dict", "builtins.list", "builtins.tuple", "builtins.str", "builtins.int",
    "builtins.float", "builtins.bool", "builtins.slice", "builtins.object",
    "numpy.ndarray", "numpy.dtype", "numpy.float64", "numpy.float32", "numpy.int64",
    "numpy.int32", "numpy.uint64", "numpy.bool_",
    "numpy.random.mtrand.RandomState", "numpy.random._generator.Generator",
    "scipy.sparse._csr.csr_matrix",
    "functools.partial", "sklearn.utils.validation.check_array",
    "sklearn.pipeline.Pipeline", "sklearn.pipeline.FeatureUnion",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.compose._column_transformer.make_column_selector",
    "sklearn.impute._base.SimpleImputer", "sklearn.impute._base.MissingIndicator",
    "sklearn.impute._knn.KNNImputer",
    "sklearn.preprocessing._data.StandardScaler", "sklearn.preprocessing._data.MinMaxScaler",
    "sklearn.preprocessing._data.MaxAbsScaler", "sklearn.preprocessing._data.RobustScaler",
    "sklearn.preprocessing._data.Normalizer", "sklearn.preprocessing._data.Binarizer",
    "sklearn.preprocessing._data.QuantileTransformer",
    "sklearn.preprocessing._data.PowerTransformer",
    "sklearn.preprocessing._encoders.OneHotEncoder",
    "sklearn.preprocessing._encoders.OrdinalEncoder",
    "sklearn.preprocessing._target_encoder.TargetEncoder",
    "sklearn.preprocessing._discretization.KBinsDiscretizer",
    "sklearn.preprocessing._polynomial.PolynomialFeatures",
    "sklearn.preprocessing._label.LabelEncoder", "sklearn.preprocessing._label.LabelBinarizer",
    # its function is a separate reference, checked on its own (check_array is trusted)
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._logistic.LogisticRegressionCV",
    "sklearn.linear_model._stochastic_gradient.SGDClassifier",
    "sklearn.dummy.DummyClassifier",  # gradient boosting's initial estimator
    "sklearn.tree._classes.DecisionTreeClassifier", "sklearn.tree._classes.DecisionTreeRegressor",
    "sklearn.tree._classes.ExtraTreeClassifier", "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn._loss.loss.HalfBinomialLoss", "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn._loss.link.LogitLink", "sklearn._loss.link.Interval",
)  # fmt: skip

_PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")
_SUFFIXES = {".skops": "skops", ".onnx": "onnx", ".json": "calibrator"}
#: ONNX element types → the NumPy dtype each input column is cast to.
_ONNX_DTYPES: dict[str, Any] = {
    "tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
    "tensor(int32)": np.int32, "tensor(bool)": np.bool_, "tensor(string)": object,
}  # fmt: skip
_SAVE_WITH_SKOPS = (
    "pickle runs arbitrary code when loaded, so assay never loads one; save the model with "
    "skops (`import skops.io; skops.io.dump(model, 'model.skops')`) or convert it to ONNX"
)


@dataclass(frozen=True)
class LoadedModel:
    """A registered model ready to score: its feature columns and how to run it.

    ``features`` are the input columns the model reads, in its order; ``predict`` returns the
    probability of the positive class (float64) for each row of a table holding them.
    """

    format: str
    features: tuple[str, ...]
    _run: Callable[[pa.Table], Any]
    _reseed: Callable[[int | None], None]

    def predict(self, frame: pa.Table, seed: int | None = None) -> np.ndarray:
        """Return P(y = 1) for every row of ``frame`` (extra columns are ignored).

        Parameters
        ----------
        frame : pyarrow.Table
            A table with every column of :attr:`features`.
        seed : int or None
            Set every ``random_state`` parameter to it first (None: the artefact's own values).

        Returns
        -------
        numpy.ndarray
            float64 probabilities, one per row.

        Raises
        ------
        AssayInputError
            If a feature column is missing.
        """
        missing = [name for name in self.features if name not in frame.column_names]
        if missing:
            raise AssayInputError(
                f"the {self.format} model reads the columns {', '.join(self.features)}; "
                f"missing: {', '.join(missing)}"
            )
        self._reseed(seed)
        return np.asarray(self._run(frame.select(list(self.features))), dtype=np.float64)


def detect_format(data: bytes, name: str) -> str:
    """Return the format of an artefact from its bytes, then its file name.

    A skops file is a zip archive holding ``schema.json``; a calibrator is a JSON object;
    anything else named ``*.onnx`` (or parsing as an ONNX model) is ONNX.

    Parameters
    ----------
    data : bytes
        The artefact.
    name : str
        Its file name (only the suffix is read).

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    AssayInputError
        If it is a pickle (refused, with advice) or none of the formats.
    """
    suffix = PurePath(name).suffix.lower()
    if suffix in _PICKLE_SUFFIXES or data[:1] == b"\x80":
        raise AssayInputError(f"{name} is a pickle: {_SAVE_WITH_SKOPS}")
    if data[:4] == b"PK\x03\x04" and "schema.json" in _zip_names(data):
        return "skops"
    if data.lstrip()[:1] == b"{":
        return "honest" if _HONEST_MARK in data else "calibrator"
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    try:
        _onnx_model(data)
    except AssayInputError:
        raise AssayInputError(
            f"cannot tell the format of {name}: it is none of {', '.join(FORMATS)} (a skops "
            "zip, an ONNX model, assay's calibrator JSON); pass --format"
        ) from None
    return "onnx"


def audit_artefact(
    data: bytes, format: str, trusted: Sequence[str] = (), features: Sequence[str] = ()
) -> dict[str, Any]:
    """Check an artefact without running any of its code; return the details to load it by.

    Parameters
    ----------
    data : bytes
        The artefact.
    format : str
        One of :data:`FORMATS`.
    trusted : sequence of str
        skops types trusted beyond :data:`TRUSTED_TYPES` (fully qualified names).
    features : sequence of str
        The input columns in order, for a model that does not name them (an ONNX model with
        one 2-D input, a skops model fitted on an array).

    Returns
    -------
    dict
        JSON-safe details: ``features`` always; for skops the ``trusted`` types it uses beyond
        the defaults; for ONNX the ``inputs`` (name → element type), ``output`` and whether it
        is a ZipMap.

    Raises
    ------
    AssayInputError
        If the format is unknown, the artefact is not of it, a skops file names an untrusted
        type, or the input columns cannot be told.
    """
    if format not in FORMATS:
        raise AssayInputError(f"format {format!r} is none of {', '.join(FORMATS)}")
    if format == "skops":
        return _audit_skops(data, tuple(trusted), tuple(features))
    if format == "onnx":
        return _audit_onnx(data, tuple(features))
    if format == "honest":
        return {"features": list(HONEST_FEATURES), "map_version": _honest_map(data).version}
    _calibrator(data)
    return {"features": ["score"]}


def load_model(data: bytes, format: str, details: dict[str, Any]) -> LoadedModel:
    """Load an artefact checked by :func:`audit_artefact` with the details it returned.

    Parameters
    ----------
    data : bytes
        The artefact.
    format : str
        One of :data:`FORMATS`.
    details : dict
        What :func:`audit_artefact` returned for it.

    Returns
    -------
    LoadedModel
        The model, ready to :meth:`~LoadedModel.predict`.

    Raises
    ------
    AssayInputError
        If the artefact fails its check again or cannot give probabilities.
    """
    audit_artefact(data, format, details.get("trusted", ()), details["features"])
    features = tuple(details["features"])
    if format == "skops":
        return _load_skops(data, details, features)
    if format == "onnx":
        return _load_onnx(data, details, features)
    if format == "honest":
        honest = _honest_map(data)
        return LoadedModel(
            format,
            features,
            lambda frame: honest.claims(_floats(frame.column(0)), frame.column(1).to_pylist()),
            lambda _: None,
        )
    calibrator = _calibrator(data)
    return LoadedModel(
        format,
        features,
        lambda frame: calibrator.predict_proba(_floats(frame.column(0)))[:, 1],
        lambda _: None,
    )


# ---------------------------------------------------------------------- skops
def _zip_names(data: bytes) -> list[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return archive.namelist()
    except zipfile.BadZipFile:
        return []


def _skops_schema(data: bytes) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError):
        raise AssayInputError(
            "the artefact is not a skops file (a zip archive with schema.json, as "
            "skops.io.dump writes)"
        ) from None
    if not isinstance(schema, dict):
        raise AssayInputError("the skops file's schema.json is not an object")
    return schema


def _named_types(node: Any) -> Iterator[str]:
    """Every type a skops schema names: ``module.class`` of each node (functions included)."""
    if isinstance(node, dict):
        if isinstance(node.get("__class__"), str) and isinstance(node.get("__module__"), str):
            yield f"{node['__module__']}.{node['__class__']}"
        for value in node.values():
            yield from _named_types(value)
    elif isinstance(node, list):
        for value in node:
            yield from _named_types(value)


def _audit_skops(
    data: bytes, trusted: tuple[str, ...], features: tuple[str, ...]
) -> dict[str, Any]:
    import skops.io

    schema = _skops_schema(data)
    flagged = set(skops.io.get_untrusted_types(data=data))
    allowed = {*TRUSTED_TYPES, *trusted}
    refused = sorted((set(_named_types(schema)) | flagged) - allowed)
    if refused:
        flags = " ".join(f"--trust {name}" for name in refused)
        raise AssayInputError(
            f"the skops file names {len(refused)} type(s) outside the trusted list: "
            f"{', '.join(refused)}. Loading it could run their code; if you wrote the model and "
            f"trust them, register it with {flags}"
        )
    stored = _stored_features(schema)
    if stored is None and not features:
        raise AssayInputError(
            "the skops model does not name its input columns (it was fitted on an array): "
            "fit it on a pandas DataFrame, or give the columns in order with --features a,b,c"
        )
    return {
        "features": list(features or stored or ()),
        "trusted": sorted(flagged | (set(trusted) & set(_named_types(schema)))),
    }


def _stored_features(node: dict[str, Any]) -> list[str] | None:
    """Read the ``feature_names_in_`` the estimator stores from the schema, as data.

    A pipeline stores none of its own: its first step's are read.
    """
    attrs = node.get("content", {}).get("content", {})
    if not isinstance(attrs, dict):
        return None
    names = attrs.get("feature_names_in_")
    if isinstance(names, dict) and names.get("type") == "json":
        return [str(json.loads(item["content"])) for item in names.get("content", [])]
    steps = attrs.get("steps", {}).get("content")
    if isinstance(steps, list) and steps:
        first = steps[0].get("content", [None, None])[1]
        return _stored_features(first) if isinstance(first, dict) else None
    return None


def _load_skops(data: bytes, details: dict[str, Any], features: tuple[str, ...]) -> LoadedModel:
    import skops.io

    model = skops.io.loads(data, trusted=list(details.get("trusted", [])))
    if not hasattr(model, "predict_proba"):
        raise AssayInputError(
            f"the skops model ({type(model).__name__}) has no predict_proba: assay needs a "
            "classifier that gives probabilities"
        )
    named = hasattr(model, "feature_names_in_")
    stored = {
        key: value
        for key, value in model.get_params(deep=True).items()
        if key == "random_state" or key.endswith("__random_state")
    }

    def reseed(seed: int | None) -> None:
        if stored:
            model.set_params(**(stored if seed is None else dict.fromkeys(stored, seed)))

    def run(frame: pa.Table) -> Any:
        table = _pandas_frame(frame)
        return model.predict_proba(table if named else table.to_numpy())[:, 1]

    return LoadedModel("skops", features, run, reseed)


def _pandas_frame(frame: pa.Table) -> Any:
    """Return ``frame`` as a pandas DataFrame whose text columns hold Python ``str`` objects.

    The values a scikit-learn model sees are those of ``frame.to_pandas()``; only the dtype
    differs: object instead of pandas' Arrow-backed strings, which scikit-learn's encoders would
    convert to object arrays again on every call (the same frame in scoring and in replay, so
    the bits agree).
    """
    import pandas as pd
    import pyarrow as pa

    def text(column: pa.ChunkedArray) -> Any:
        # each distinct value becomes one str object, shared by its rows (lead data repeats)
        encoded = column.combine_chunks().dictionary_encode()
        values = np.empty(len(encoded.dictionary) + 1, dtype=object)  # the last: None (null)
        values[:-1] = encoded.dictionary.to_numpy(zero_copy_only=False)
        codes = encoded.indices.fill_null(len(encoded.dictionary)).to_numpy()
        return pd.Series(values[codes], dtype=object, copy=False)

    columns = {
        name: (
            text(column)
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
            else column.to_pandas()
        )
        for name, column in zip(frame.column_names, frame.columns, strict=True)
    }
    return pd.DataFrame(columns, copy=False)


# ---------------------------------------------------------------------- ONNX
def _onnx_model(data: bytes) -> Any:
    import onnx

    try:
        model = onnx.load_model_from_string(data)
        onnx.checker.check_model(model)
    except Exception as error:  # onnx raises DecodeError, ValidationError, ValueError …
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AssayInputError(f"the artefact is not a valid ONNX model ({first[:200]})") from None
    return model


def _audit_onnx(data: bytes, features: tuple[str, ...]) -> dict[str, Any]:
    model = _onnx_model(data)
    initializers = {init.name for init in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    types: dict[str, str] = {}
    for item in inputs:
        tensor = item.type.tensor_type
        name = _element_name(tensor.elem_type)
        if name not in _ONNX_DTYPES:
            raise AssayInputError(
                f"the ONNX input {item.name!r} has element type {name}; assay feeds "
                f"{', '.join(sorted(_ONNX_DTYPES))}"
            )
        types[item.name] = name
    output, zipmap = _probability_output(model)
    if len(inputs) == 1:
        dims = inputs[0].type.tensor_type.shape.dim
        width = dims[1].dim_value if len(dims) == 2 else 0
        if width != 1:
            if not features or (width and len(features) != width):
                raise AssayInputError(
                    f"the ONNX model takes one tensor {inputs[0].name!r} of "
                    f"{width or 'unknown'} columns: give its columns in order with "
                    "--features a,b,c (or convert it with one input per column)"
                )
            return {"features": list(features), "inputs": types, "tensor": inputs[0].name,
                    "output": output, "zipmap": zipmap}  # fmt: skip
    return {"features": list(types), "inputs": types, "output": output, "zipmap": zipmap}


def _element_name(elem_type: int) -> str:
    import onnx

    name = onnx.helper.tensor_dtype_to_string(elem_type).removeprefix("TensorProto.")
    return f"tensor({name.lower()})"


def _probability_output(model: Any) -> tuple[str, bool]:
    """Find the output holding class probabilities: an (n, 2) tensor or a ZipMap's maps."""
    for item in model.graph.output:
        kind = item.type.WhichOneof("value")
        if kind == "sequence_type" and item.type.sequence_type.elem_type.HasField("map_type"):
            return item.name, True
        if kind == "tensor_type":
            dims = item.type.tensor_type.shape.dim
            if len(dims) == 2 and dims[1].dim_value == 2:
                return item.name, False
    raise AssayInputError(
        "the ONNX model has no probability output (an (n, 2) tensor, or a ZipMap): convert "
        "the classifier with its probabilities (skl2onnx does by default)"
    )


def _load_onnx(data: bytes, details: dict[str, Any], features: tuple[str, ...]) -> LoadedModel:
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    inputs: dict[str, str] = details["inputs"]
    output, zipmap, tensor = details["output"], details["zipmap"], details.get("tensor")

    def column(values: pa.ChunkedArray, dtype: Any) -> np.ndarray:
        return np.asarray(values.to_numpy(), dtype=dtype)

    def run(frame: pa.Table) -> Any:
        if tensor is not None:
            dtype = _ONNX_DTYPES[inputs[tensor]]
            feeds = {tensor: np.column_stack([column(frame[f], dtype) for f in features])}
        else:
            feeds = {
                name: column(frame[name], _ONNX_DTYPES[kind]).reshape(-1, 1)
                for name, kind in inputs.items()
            }
        result = session.run([output], feeds)[0]
        if zipmap:  # a list of {class: probability} maps (one Python dict per row)
            return np.fromiter((row[1] for row in result), np.float64, len(result))
        return np.asarray(result)[:, 1]

    return LoadedModel("onnx", features, run, lambda _: None)


# ---------------------------------------------------------------------- calibrator
def _calibrator(data: bytes) -> Any:
    from assay.stats.recalibration import load_calibrator

    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise AssayInputError("the calibrator artefact is not UTF-8 JSON") from None
    return load_calibrator(text)


_HONEST_MARK = b'"format":"assay-honest-map"'


def _honest_map(data: bytes) -> Any:
    from assay.stats.honest import HonestMap

    try:
        return HonestMap.from_json(data)
    except (ValueError, KeyError, TypeError) as error:
        raise AssayInputError(f"the honest map artefact is not a valid map: {error}") from None


def _floats(values: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(), dtype=np.float64)
