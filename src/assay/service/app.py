"""``assay serve``: the HTTP API CRMs and scoring vendors push to (FastAPI, versioned ``/v1``).

Authentication is ``Authorization: Bearer ak_<id>_<secret>`` (the HTTP bearer scheme, declared
in the OpenAPI document; a bare token is refused); the key fixes the workspace and the scopes
(see :mod:`assay.service.keys`). Ingest is all or nothing:

* 201 with a receipt when a batch is written; 200 with the *original* receipt when the same
  body is sent again (nothing is written twice);
* 422 with every bad row ``{row, field, value, reason}`` when any row is invalid;
* 409 when a row reuses a ``prediction_id``/``outcome_id`` with different content (frozen);
* 403 when a vendor key sends another scorer's predictions; 413 above 32 MiB, 50,000 rows,
  64 segment names or 2,000 CSV columns; 415 for a body that is neither NDJSON nor CSV; 429
  above the per-key rate; 408 when the body does not arrive within the body timeout.

``POST /v1/score?scorer=VENDOR`` (scope ``scores:write``) serves the vendor's honest score of
a batch of leads (≤ 10,000, NDJSON or CSV) and records every lead served
(:mod:`assay.service.scoring`): 201 with the map version, the count per status and each lead's
honest probability, interval and status (200 when every lead was already recorded so); 422
naming every bad value, 404 for an unknown vendor, 409 before the vendor has matured outcomes,
403 for a key bound to another vendor, 501 on a store that keeps no model registry
(PostgreSQL). A refusal writes nothing.

An ``Idempotency-Key`` header belongs to the API key that sent it (two keys of a workspace
may use the same value): the first request claims it, its response is stored and replayed
for the same body; the same value with a different body is a 422 ("Idempotency-Key reused
with a different request body"), and while the first request is still running a 409.

No answer names a place on the server: audits and reports name the workspace, exports give
paths relative to the store's export directory. Every refusal is one JSON object
``{"error": ...}`` (with ``bad_rows`` when rows are at fault, at most 1,000 of them, and
``bad_rows_total``); an unexpected failure is a JSON 500 that reveals nothing.

Each request is logged in one line (:mod:`assay.service.access_log`: method, path, status,
rows, milliseconds, the key's public id). The API docs (``/docs``, ``/redoc``) load their
scripts and styles from the server itself, so they work without the internet.
"""

import asyncio
import datetime as dt
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Annotated, Any, cast

import orjson
from fastapi import Depends, FastAPI, Header, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import ClientDisconnect

import assay
from assay._validation import AssayInputError, to_utc
from assay.audit.document import report_document
from assay.audit.report import Report, build_report
from assay.audit.scorer import AuditConfig, Evidence
from assay.audit.scorer import evidence as find_evidence
from assay.ledger import IngestReceipt, Ledger, LedgerIngestError
from assay.ledger.columns import client_columns, row_schema
from assay.ledger.parse import BadRow
from assay.models.registry import list_models
from assay.models.replay import replay
from assay.report.html import render_html
from assay.service.access_log import AccessLog, note_key, note_rows
from assay.service.batches import (
    FIELDS,
    MAX_BAD_ROWS,
    MAX_BYTES,
    MAX_ROWS,
    Batch,
    BatchRejected,
    parse_csv,
    parse_ndjson,
)
from assay.service.keys import ApiKey, KeyStore
from assay.service.limits import BodyDeadline, RequestTimeout
from assay.service.scoring import MAX_LEADS, SCORE_RANGE, ScoreRefused, answer, checked_leads, serve
from assay.service.store import Store, Unsupported
from assay.stats.compare import compare
from assay.stats.decisions import certify_threshold
from assay.stats.segments import segment_rates
from assay.stats.tolerance import Tolerance

NDJSON_TYPES = ("application/x-ndjson", "application/ndjson", "application/jsonl")
#: Predictions one ``POST /v1/replay`` re-runs at most (its default sample).
MAX_REPLAY = 10_000
#: Where the API docs' scripts, styles and icon are served from (no CDN: /docs works offline).
DOCS_ASSETS = "/docs/assets"

_ERROR: dict[str, Any] = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "error": {"type": "string"},
                    "bad_rows": {"type": "array"},
                    "bad_rows_total": {"type": "integer"},
                },
                "required": ["error"],
            }
        }
    }
}
#: Documented responses of every authenticated route (OpenAPI), besides its success.
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "missing, malformed, unknown or revoked API key"},
    403: {**_ERROR, "description": "the key lacks the scope (or writes another scorer)"},
    422: {**_ERROR, "description": "invalid parameters or input, with the reason"},
    429: {**_ERROR, "description": "per-key rate limit exceeded (see Retry-After)"},
    504: {**_ERROR, "description": "the computation exceeded the read timeout"},
}
INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **READ_RESPONSES,
    200: {"description": "the same body was already ingested: the original receipt"},
    201: {"description": "the batch was written: its receipt"},
    408: {**_ERROR, "description": "the body did not arrive within the body timeout"},
    409: {
        **_ERROR,
        "description": "an id already holds different content (frozen), or a request with "
        "this Idempotency-Key is still running",
    },
    413: {
        **_ERROR,
        "description": "more than 50,000 rows, 32 MiB, 64 segment names or 2,000 columns",
    },
    415: {**_ERROR, "description": "the body is neither NDJSON nor CSV"},
}


_LEAD = {
    "type": "object",
    "properties": {
        "entity_id": {"type": "string"},
        "prediction_id": {"type": "string"},
        "probability": {"type": ["number", "null"]},
        "lower": {"type": ["number", "null"]},
        "upper": {"type": ["number", "null"]},
        "status": {"type": "string"},
    },
}
_SERVED: dict[str, Any] = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "scorer": {"type": "string", "description": "VENDOR~honest"},
                    "map": {"type": "string", "description": "the map version's model ref"},
                    "map_version": {"type": "string", "description": "model version recorded"},
                    "built_as_of": {"type": "string", "format": "date-time"},
                    "new_leads": {
                        "type": "integer",
                        "description": "matured leads this request's map version added (0: "
                        "an existing version served)",
                    },
                    "evidence_leads": {"type": "integer"},
                    "counts": {
                        "type": "object",
                        "additionalProperties": {"type": "integer"},
                        "description": "leads per status: ok, not yet, out of range",
                    },
                    "leads": {"type": "array", "items": _LEAD},
                    "notes": {"type": "array", "items": {"type": "string"}},
                    "receipt": {"type": "object", "description": "the recorded batch"},
                },
                "required": ["scorer", "map_version", "built_as_of", "counts", "leads"],
            }
        }
    }
}
#: Documented responses of ``POST /v1/score`` (OpenAPI).
SCORE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **{code: READ_RESPONSES[code] for code in (401, 403, 422, 429)},
    200: {**_SERVED, "description": "served; every lead was already recorded so"},
    201: {**_SERVED, "description": "served and recorded: map version, counts, each lead"},
    403: {**_ERROR, "description": "the key lacks the scope, or is bound to another vendor"},
    404: {**_ERROR, "description": "the workspace holds no such scorer (close names given)"},
    408: INGEST_RESPONSES[408],
    409: {
        **_ERROR,
        "description": "not yet: the vendor has no matured outcomes; or a prediction_id "
        "already holds another score; or a request with this Idempotency-Key is still running",
    },
    413: {**_ERROR, "description": "more than 10,000 leads, 32 MiB or 64 segment names"},
    415: INGEST_RESPONSES[415],
    501: {**_ERROR, "description": "this store keeps no model registry (PostgreSQL)"},
}


def score_body() -> dict[str, Any]:
    """Declare the request body of ``POST /v1/score`` for OpenAPI.

    The prediction row schema (:func:`assay.ledger.columns.row_schema`) narrowed to the fields a
    lead may carry (:data:`assay.service.batches.FIELDS` ``["scores"]``), ``entity_id`` and
    ``score`` required.
    """
    row = row_schema("predictions")
    fields = FIELDS["scores"]
    declared = cast("dict[str, dict[str, Any]]", row["properties"])
    properties = {name: value for name, value in declared.items() if name in fields}
    properties["score"] = {
        **properties["score"],
        "description": "the vendor's raw score: a probability in [0, 1] (or 0-100 with "
        "score_kind=percent)",
    }
    lead = {**row, "properties": properties, "required": ["entity_id", "score"]}
    columns = ", ".join(f for f in fields if f != "segments")
    return _batch_body(
        lead,
        "one JSON object per lead",
        f"a header row naming some of {columns} (entity_id and score required) and "
        "segment:NAME columns, then one row per lead",
    )


def ingest_body(kind: str) -> dict[str, Any]:
    """Declare the request body of ``POST /v1/{kind}`` for OpenAPI.

    The body is NDJSON lines of the declared row schema
    (:func:`assay.ledger.columns.row_schema`), or a CSV with those columns as its header.
    """
    return _batch_body(
        row_schema(kind),
        "one JSON object per line",
        "a header row naming these columns, then one row each: " + ", ".join(client_columns(kind)),
    )


def _batch_body(item_schema: dict[str, Any], ndjson: str, csv: str) -> dict[str, Any]:
    """Declare a batch request body: NDJSON lines of ``item_schema``, or a CSV (OpenAPI)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string", "description": ndjson},
                    "x-item-schema": item_schema,
                },
                "text/csv": {"schema": {"type": "string", "description": csv}},
            },
        }
    }


@dataclass(frozen=True)
class Settings:
    """Limits of one server.

    Requests per second per key (and the burst), the time a read may compute, and how long a
    client may take to send its request (slow clients are cut off).
    """

    rate_per_second: float = 50.0
    burst: int = 100
    read_timeout_seconds: float = 120.0
    #: A request head (request line and headers) must arrive whole within this many seconds
    #: of the connection opening or of the previous response (else 408 and the connection is
    #: closed; ``assay serve`` only, see :mod:`assay.service.limits`).
    head_timeout_seconds: float = 10.0
    #: …and hold at most this many bytes (else 431).
    max_head_bytes: int = 64 * 1024
    #: The body must arrive whole within this many seconds of the head (else 408): 32 MiB
    #: in 30 s needs about 1.1 MB/s.
    body_timeout_seconds: float = 30.0
    #: An idle keep-alive connection is closed after this many seconds.
    keep_alive_seconds: int = 5
    #: ``POST /v1/score`` reuses a vendor's newest honest map built less than this many
    #: seconds ago, without reading the vendor's matured leads (``build_map``'s fresh_for).
    score_fresh_seconds: float = 600.0


class ApiError(Exception):
    """An HTTP error with a JSON body ``{"error": ..., "bad_rows": [...]}``."""

    def __init__(
        self,
        status: int,
        message: str,
        bad_rows: list[BadRow] | None = None,
        headers: dict[str, str] | None = None,
        total: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.bad_rows = status, message, bad_rows
        self.headers = headers or {}
        self.total = total

    def body(self) -> dict[str, Any]:
        """Return the JSON body: the message, the first MAX_BAD_ROWS bad rows and their total."""
        content: dict[str, Any] = {"error": self.message}
        if self.bad_rows is not None:
            content["bad_rows"] = [
                {"row": b.row, "field": b.column, "value": _cut(b.value), "reason": b.reason}
                for b in self.bad_rows[:MAX_BAD_ROWS]
            ]
            content["bad_rows_total"] = max(self.total or 0, len(self.bad_rows))
        return content


def _cut(value: str) -> str:
    return value if len(value) <= 200 else value[:200] + "…"


def json_response(content: Any, status: int = 200, **headers: str) -> Response:
    """Return ``content`` serialised by orjson (non-string keys, NumPy values) as a response."""
    return Response(
        orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
        headers=headers or None,
    )


class RateLimiter:
    """A token bucket per key: ``rate`` tokens a second, at most ``burst`` saved up."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key_id: str) -> float:
        """0 if the request may proceed, else the seconds until it could."""
        now = time.monotonic()
        tokens, last = self._buckets.get(key_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._buckets[key_id] = (tokens, now)
            return (1.0 - tokens) / self.rate
        self._buckets[key_id] = (tokens - 1.0, now)
        return 0.0


class ReplayRequest(BaseModel):
    """The body of ``POST /v1/replay``: what to re-run (``assay replay``'s options)."""

    model_config = ConfigDict(extra="forbid")

    scorer: str | None = Field(None, max_length=200)
    model_version: str | None = Field(None, max_length=200)
    sample: int = Field(MAX_REPLAY, ge=1, le=MAX_REPLAY, description="Predictions re-run.")
    as_of: str | None = Field(None, max_length=64, description="ISO 8601 with a zone.")
    seed: int = Field(0, ge=0, le=2**31, description="Seed of the sample.")
    tolerance: float = Field(1e-9, ge=0, le=1, description="|recomputed - stored| still equal.")


def _replay_request(raw: bytes) -> ReplayRequest:
    """Read the body of ``POST /v1/replay`` (empty: the defaults); refuse it naming the field."""
    try:
        return ReplayRequest.model_validate_json(raw or b"{}")
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise AssayInputError(
            f"replay request {where}: {first['msg']} ({error.error_count()} problem(s)); send "
            "a JSON object with scorer, model_version, sample (1 to 10,000), as_of, seed, "
            "tolerance"
        ) from None


def _receipt(receipt: IngestReceipt, batch: Batch) -> dict[str, Any]:
    content = {**asdict(receipt), "noop": receipt.noop, "message": receipt.describe()}
    content["notes"] = [*content.get("notes", ()), *batch.notes]
    return content


def _moment(as_of: str | None) -> dt.datetime:
    """Parse the as-of of a query (a date at the end of time is a 422, not an overflow)."""
    try:
        return to_utc(as_of)
    except OverflowError:
        raise AssayInputError(
            f"as_of {as_of!r} is outside the dates this server can hold (years 1 to 9999 UTC)"
        ) from None


#: The HTTP bearer scheme every protected operation declares (generated clients send it).
BEARER = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="ak_<id>_<secret>",
    description="An API key (`assay keys create`): `Authorization: Bearer ak_<id>_<secret>`.",
    auto_error=False,
)


def create_app(store: Store, keys: KeyStore, settings: Settings | None = None) -> FastAPI:
    """Create the service over ``store``, authenticating with ``keys``.

    The caller owns the store: ``assay serve`` closes it once uvicorn has drained in-flight
    requests, so queued batches finish before the process exits.
    """
    settings = settings or Settings()
    limiter = RateLimiter(settings.rate_per_second, settings.burst)

    app = FastAPIOffline(  # /docs and /redoc load their scripts and styles from DOCS_ASSETS
        title="assay",
        version=assay.__version__,
        summary="Does this score deserve belief? Push scores and outcomes; pull calibration.",
        static_url=DOCS_ASSETS,
        swagger_ui_parameters={"validatorUrl": None},  # no call to the online validator
    )
    app.add_middleware(BodyDeadline, seconds=settings.body_timeout_seconds)
    app.add_middleware(AccessLog)  # outermost: its time includes the body's arrival

    @app.exception_handler(RequestTimeout)
    async def body_too_slow(_: Request, error: RequestTimeout) -> Response:
        return json_response({"error": str(error)}, 408, Connection="close")

    @app.exception_handler(ClientDisconnect)
    async def client_gone(_: Request, __: ClientDisconnect) -> Response:
        return json_response({"error": "the client disconnected before sending its body"}, 400)

    @app.exception_handler(Exception)
    async def server_error(_: Request, __: Exception) -> Response:
        message = "internal error: the request was not completed (the server log has details)"
        return json_response({"error": message}, 500)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> Response:
        return json_response(error.body(), error.status, **error.headers)

    @app.exception_handler(Unsupported)
    async def unsupported(_: Request, error: Unsupported) -> Response:
        return json_response({"error": str(error)}, 501)

    @app.exception_handler(AssayInputError)
    async def input_error(_: Request, error: AssayInputError) -> Response:
        return json_response({"error": str(error)}, 422)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, error: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]), "reason": e["msg"]}
            for e in error.errors()
        ]
        return json_response({"error": "invalid request", "problems": problems}, 422)

    def principal(scope: str) -> Callable[..., Awaitable[ApiKey]]:
        async def check(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
        ) -> ApiKey:
            key = keys.authenticate(credentials.credentials) if credentials else None
            if key is None:
                raise ApiError(
                    401, "a valid API key is required (Authorization: Bearer ak_…)",
                    headers={"WWW-Authenticate": "Bearer"},
                )  # fmt: skip
            note_key(request, key.key_id)
            wait = limiter.take(key.key_id)
            if wait > 0:
                raise ApiError(
                    429,
                    "rate limit exceeded for this key",
                    headers={"Retry-After": f"{max(1, round(wait))}"},
                )
            if not key.allows(scope):
                raise ApiError(403, f"this key lacks the {scope!r} scope")
            return key

        return check

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BYTES:
            raise ApiError(413, f"a batch body holds at most {MAX_BYTES} bytes")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BYTES:
                raise ApiError(413, f"a batch body holds at most {MAX_BYTES} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def content_type_of(request: Request) -> str:
        return request.headers.get("content-type", "").split(";")[0].strip().lower()

    async def idempotent(
        key: ApiKey,
        idempotency_key: str | None,
        request_sha: str,
        run: Callable[[], Awaitable[Response]],
    ) -> Response:
        """Answer ``run()``; with an Idempotency-Key, once: later the stored response.

        The key is claimed first (module docstring); a refusal releases it.
        """
        if idempotency_key is None:
            return await run()
        scope = (key.workspace, key.key_id, idempotency_key)
        claimed = store.claim(*scope, request_sha)
        if claimed is not None:
            stored_sha, status, stored = claimed
            if stored_sha != request_sha:
                raise ApiError(
                    422,
                    "Idempotency-Key reused with a different request body; send a new batch "
                    "under a new key",
                )
            if status == 0:
                raise ApiError(
                    409,
                    "a request with this Idempotency-Key is still running; retry when it is done",
                    headers={"Retry-After": "1"},
                )
            return Response(
                stored, status, media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )  # fmt: skip
        try:
            response = await run()
        except BaseException:
            store.release(*scope)  # a refusal stores nothing: the key may be used again
            raise
        store.remember(*scope, response.status_code, bytes(response.body))
        return response

    async def ingest(
        kind: str, request: Request, key: ApiKey, idempotency_key: str | None
    ) -> Response:
        body = await read_body(request)
        content_type = content_type_of(request)
        request_sha = hashlib.sha256(f"{kind}\n{content_type}\n".encode() + body).hexdigest()
        return await idempotent(
            key, idempotency_key, request_sha,
            lambda: _ingest(request, kind, body, content_type, request_sha, key),
        )  # fmt: skip

    async def parse_body(
        request: Request, body: bytes, content_type: str, kind: str, max_rows: int = MAX_ROWS
    ) -> Batch:
        """Parse an NDJSON or CSV body into a batch of ``kind``; note its rows for the log."""
        try:
            if content_type in NDJSON_TYPES:
                batch = await asyncio.to_thread(parse_ndjson, body, kind, max_rows)
            elif content_type == "text/csv":
                batch = await asyncio.to_thread(parse_csv, body, kind, max_rows)
            else:
                raise ApiError(
                    415,
                    f"send NDJSON ({NDJSON_TYPES[0]}) or CSV (text/csv), not "
                    f"{content_type[:100] or 'no type'}",
                )
        except BatchRejected as rejected:
            raise ApiError(
                rejected.status,
                rejected.message or "batch refused, nothing was written",
                rejected.bad_rows or None,
                total=rejected.total,
            ) from None
        note_rows(request, batch.table.num_rows)
        return batch

    async def _ingest(
        request: Request, kind: str, body: bytes, content_type: str, request_sha: str, key: ApiKey
    ) -> Response:
        batch = await parse_body(request, body, content_type, kind)
        if key.scorer is not None and kind == "predictions":
            others = (
                [
                    BadRow(i + 1, "scorer", str(s), f"this key writes only scorer {key.scorer!r}")
                    for i, s in enumerate(batch.table["scorer"].to_pylist())
                    if s != key.scorer
                ]
                if "scorer" in batch.table.column_names
                else []
            )
            if others:
                raise ApiError(403, "batch refused: rows for another scorer", others)
        # The same body again: its receipt (looked up after the scorer check, so a restricted
        # key learns nothing about another scorer's batches).
        original = store.receipt(key.workspace, kind, request_sha)
        if original is not None:
            return Response(
                original, 200, media_type="application/json", headers={"Assay-Replayed": "true"}
            )
        try:
            receipt = await store.ingest(key.workspace, kind, batch)
        except LedgerIngestError as error:
            frozen = all(b.reason.startswith("frozen") for b in error.bad_rows)
            raise ApiError(
                409 if frozen else 422, "batch refused, nothing was written", error.bad_rows
            ) from None
        content = orjson.dumps(_receipt(receipt, batch))
        store.save_receipt(key.workspace, kind, request_sha, content.decode())
        return Response(content, 200 if receipt.noop else 201, media_type="application/json")

    IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]

    ingest_route: dict[str, Any] = {
        "status_code": 201, "tags": ["ingest"], "responses": INGEST_RESPONSES,
    }  # fmt: skip
    read_route: dict[str, Any] = {"tags": ["reports"], "responses": READ_RESPONSES}

    @app.post("/v1/predictions", **ingest_route, openapi_extra=ingest_body("predictions"))
    async def post_predictions(
        request: Request,
        key: Annotated[ApiKey, Depends(principal("predictions:write"))],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response:
        """Append predictions (NDJSON or CSV, ≤ 50,000 rows, ≤ 32 MiB), all or nothing."""
        return await ingest("predictions", request, key, idempotency_key)

    @app.post("/v1/outcomes", **ingest_route, openapi_extra=ingest_body("outcomes"))
    async def post_outcomes(
        request: Request,
        key: Annotated[ApiKey, Depends(principal("outcomes:write"))],
        idempotency_key: IdempotencyHeader = None,
    ) -> Response:
        """Append a batch of observed outcomes (NDJSON or CSV), all or nothing."""
        return await ingest("outcomes", request, key, idempotency_key)

    fresh_for = dt.timedelta(seconds=settings.score_fresh_seconds)

    @app.post(
        "/v1/score", tags=["scores"], status_code=201, responses=SCORE_RESPONSES,
        openapi_extra=score_body(),
    )  # fmt: skip
    async def score(
        request: Request,
        key: Annotated[ApiKey, Depends(principal("scores:write"))],
        scorer: Annotated[
            str,
            Query(
                min_length=1, max_length=200, description="The vendor whose raw scores these are."
            ),
        ],
        segment_by: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=64,
                description="The segment attribute a vendor's first map is built by (an existing "
                "map keeps its own).",
            ),
        ] = None,
        score_kind: Annotated[
            str,
            Query(pattern=f"^({'|'.join(SCORE_RANGE)})$", description="How to read the raw score."),
        ] = "probability",
        idempotency_key: IdempotencyHeader = None,
    ) -> Response:
        """Serve the vendor's honest score of each lead (≤ 10,000, NDJSON or CSV) and record it.

        Each lead is answered with the probability the workspace's own outcomes support for
        its raw score (and segment), the 90% interval and a status ("ok", "not yet: …", "out
        of range: …"), from the vendor's newest honest map (built or updated first from its
        matured leads). Every lead is recorded as a prediction of ``VENDOR~honest`` with the
        map version as model version ("not yet" and "out of range" as abstentions), so the
        honest score is audited like any vendor. A refusal writes nothing.
        """
        if key.scorer is not None and key.scorer != scorer:
            raise ApiError(403, f"this key serves only scorer {key.scorer!r}'s honest score")
        body = await read_body(request)
        content_type = content_type_of(request)
        asked = f"scores\n{content_type}\n{scorer}\n{segment_by or ''}\n{score_kind}\n"
        request_sha = hashlib.sha256(asked.encode() + body).hexdigest()

        async def run() -> Response:
            batch = await parse_body(request, body, content_type, "scores", MAX_LEADS)
            try:
                leads = await asyncio.to_thread(checked_leads, batch.table, score_kind)
                served = await store.write(
                    key.workspace,
                    lambda ledger: serve(
                        ledger, scorer, leads, segment_by=segment_by,
                        score_kind=score_kind, fresh_for=fresh_for,
                        name_scorers=key.scorer is None,
                    ),
                )  # fmt: skip
            except ScoreRefused as refused:
                raise ApiError(refused.status, refused.message, refused.bad_rows) from None
            content = {
                **answer(served, batch.segments),
                "receipt": _receipt(served.receipt, batch),
            }
            return json_response(content, 200 if served.receipt.noop else 201)

        return await idempotent(key, idempotency_key, request_sha, run)

    async def read(key: ApiKey, task: Callable[[Ledger], Any]) -> Any:
        try:
            return await asyncio.wait_for(
                store.read(key.workspace, task), settings.read_timeout_seconds
            )
        except TimeoutError:
            raise ApiError(
                504, "the computation took too long; narrow it (scorer, as_of)"
            ) from None

    Reader = Annotated[ApiKey, Depends(principal("reports:read"))]
    AsOf = Annotated[
        str | None,
        Query(description="Cut-off, ISO 8601 with a zone (default: now).", max_length=64),
    ]
    Scorer = Annotated[str | None, Query(max_length=200)]
    Policy = Annotated[str, Query(pattern="^(first|last|all)$")]
    ToleranceQuery = Annotated[
        str | None,
        Query(
            description="What still counts as calibrated, e.g. ratio=1.25,slope=1.25,curve=0.25 "
            "(observed/expected, slope, ECE relative to the mean score; these are the defaults).",
            max_length=120,
        ),
    ]

    def tolerance_of(text: str | None) -> Tolerance:
        return Tolerance() if text is None else Tolerance.parse(text)

    @app.get("/v1/status", **read_route)
    async def status(key: Reader) -> Response:
        """Scorers and versions with rows, pending share and abstentions; the last batch."""

        def task(ledger: Ledger) -> dict[str, Any]:
            found = ledger.status()
            last = found["last_batch"]
            return {
                "workspace": key.workspace,
                "scorers": found["scorers"].to_pylist(),
                "outcomes": found["outcomes"],
                "last_batch": None
                if last is None
                else dict(
                    zip(("batch_id", "kind", "rows", "ingested_at", "source"), last, strict=True)
                ),
                "schema_version": found["schema_version"],
            }

        return json_response(await read(key, task))

    def _names(ledger: Ledger, scorer: str | None) -> list[str]:
        names = [scorer] if scorer else ledger.scorers()
        if not names:
            raise AssayInputError("the workspace holds no predictions yet; ingest some first")
        return names

    def report_config(
        seed: Annotated[int, Query(ge=0, le=2**31)] = 0,
        tolerance: ToleranceQuery = None,
        target_precision: Annotated[
            float | None,
            Query(gt=0, lt=1, description="Also certify an action threshold at this precision."),
        ] = None,
        delta: Annotated[float, Query(gt=0, lt=1)] = 0.05,
        value: Annotated[float | None, Query(ge=0, description="Value per conversion.")] = None,
        cost: Annotated[float | None, Query(ge=0, description="Cost per automated action.")] = None,
        segment_by: Annotated[
            str | None, Query(max_length=200, description="Add segment rates for this attribute.")
        ] = None,
    ) -> AuditConfig:
        """Read the report's settings, the options of ``assay report``."""
        return AuditConfig(
            seed=seed, tolerance=tolerance_of(tolerance), target_precision=target_precision,
            delta=delta, value_per_conversion=value, cost_per_action=cost, segment_by=segment_by,
        )  # fmt: skip

    ReportSettings = Annotated[AuditConfig, Depends(report_config)]

    def report_of(
        ledger: Ledger, workspace: str, scorer: str | None, as_of: str | None, policy: str,
        config: AuditConfig,
    ) -> Report:  # fmt: skip
        """Build the report through the one seam (the CLI's, the demo's), naming the workspace."""
        built = build_report(
            ledger, as_of=_moment(as_of), scorers=_names(ledger, scorer), policy=policy,
            config=config,
        )  # fmt: skip
        for item in built.audits:
            item.reproducibility["ledger"] = workspace  # never reveal server paths
        return built

    @app.get("/v1/audit", **read_route)
    async def audit(
        key: Reader,
        config: ReportSettings,
        scorer: Scorer = None,
        as_of: AsOf = None,
        policy: Policy = "first",
    ) -> Response:
        """Return the report as JSON (``assay report --json``).

        Each scorer's (or one scorer's) audit with verdict, ECE with interval, buckets and
        cohorts; the comparison of two scorers or more; decisions and segments when asked for;
        each scorer's stored monitors. The as-of may not be later than now (a report is frozen).
        """

        def task(ledger: Ledger) -> dict[str, Any]:
            return report_document(report_of(ledger, key.workspace, scorer, as_of, policy, config))

        return json_response(await read(key, task))

    def per_scorer(
        scorer: str | None,
        moment: dt.datetime,
        policy: str,
        compute: Callable[[Evidence], dict[str, Any]],
    ) -> Callable[[Ledger], dict[str, Any]]:
        """Make a read task: ``compute`` on each scorer's (or one scorer's) evidence as of T."""

        def task(ledger: Ledger) -> dict[str, Any]:
            return {
                name: compute(find_evidence(ledger, scorer=name, as_of=moment, policy=policy))
                for name in _names(ledger, scorer)
            }

        return task

    @app.get("/v1/segments", **read_route)
    async def segments(
        key: Reader,
        by: Annotated[str, Query(max_length=200)],
        scorer: Scorer = None,
        as_of: AsOf = None,
        policy: Policy = "first",
    ) -> Response:
        """Conversion rate per segment: raw beside shrunken toward the overall rate."""
        moment = _moment(as_of)

        def rates(found: Evidence) -> dict[str, Any]:
            return segment_rates(found.labels, found.segment(by)).to_dict()

        result = await read(key, per_scorer(scorer, moment, policy, rates))
        return json_response({"as_of": moment.isoformat(), "by": by, "scorers": result})

    @app.get("/v1/threshold", **read_route)
    async def threshold(
        key: Reader,
        target_precision: Annotated[float, Query(gt=0, lt=1)],
        scorer: Scorer = None,
        delta: Annotated[float, Query(gt=0, lt=1)] = 0.05,
        as_of: AsOf = None,
        policy: Policy = "first",
    ) -> Response:
        """Find the score above which an action may fire on its own, with its guarantee."""
        moment = _moment(as_of)

        def certified(found: Evidence) -> dict[str, Any]:
            return certify_threshold(
                found.labels, found.prob, target_precision=target_precision, delta=delta
            ).to_dict()

        result = await read(key, per_scorer(scorer, moment, policy, certified))
        return json_response({"as_of": moment.isoformat(), "scorers": result})

    @app.get("/v1/compare", **read_route)
    async def comparison(
        key: Reader, as_of: AsOf = None, policy: Policy = "first", tolerance: ToleranceQuery = None
    ) -> Response:
        """Scorers side by side on the leads they all scored."""
        moment = _moment(as_of)
        band = tolerance_of(tolerance)
        result = await read(
            key,
            lambda ledger: compare(ledger, as_of=moment, policy=policy, tolerance=band).to_dict(),
        )
        return json_response(result)

    @app.get("/v1/report.html", response_class=HTMLResponse, **read_route)
    async def report(
        key: Reader, config: ReportSettings, as_of: AsOf = None, policy: Policy = "first"
    ) -> HTMLResponse:
        """Return the self-contained HTML report (``assay report --html``).

        One file, no script, no external request. The as-of may not be later than now (a
        report is frozen).
        """

        def task(ledger: Ledger) -> str:
            return render_html(report_of(ledger, key.workspace, None, as_of, policy, config))

        return HTMLResponse(await read(key, task))

    @app.get("/v1/models", **read_route)
    async def models(key: Reader) -> Response:
        """List registered model versions: name, version, fingerprint, format, registered_at.

        A workspace on the PostgreSQL store lists none: that store keeps no model registry
        (models are registered in a DuckDB ledger with ``assay models register``).
        """
        return json_response(
            await read(key, lambda ledger: [r.to_dict() for r in list_models(ledger)])
        )

    @app.post("/v1/export", tags=["admin"], status_code=201, responses=READ_RESPONSES)
    async def export(key: Annotated[ApiKey, Depends(principal("admin"))]) -> Response:
        """Write the workspace's tables as Parquet on the server (a consistent backup).

        The paths answered are relative to the server's export directory.
        """
        return json_response(await store.export(key.workspace), 201)

    @app.post(
        "/v1/replay",
        tags=["admin"],
        responses={
            **READ_RESPONSES,
            408: INGEST_RESPONSES[408],
            413: {**_ERROR, "description": "a body over 32 MiB"},
        },
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": ReplayRequest.model_json_schema()}},
            }
        },
    )
    async def replay_predictions(
        request: Request, key: Annotated[ApiKey, Depends(principal("admin"))]
    ) -> Response:
        """Re-run stored inputs through the registered models (``assay replay``), bounded.

        At most ``sample`` predictions (default and maximum 10,000), drawn at random with
        ``seed``; the answer counts identical, within tolerance and different per model version.
        A body that is not such a JSON object is a 422 naming the field.
        """
        body = _replay_request(await read_body(request))
        moment = _moment(body.as_of)

        def task(ledger: Ledger) -> dict[str, Any]:
            return replay(
                ledger, scorer=body.scorer, model_version=body.model_version,
                sample=body.sample, as_of=moment, seed=body.seed, tolerance=body.tolerance,
            ).to_dict()  # fmt: skip

        return json_response(await read(key, task))

    @app.get("/v1/health", tags=["admin"])
    async def health() -> dict[str, str]:
        """Liveness (no key needed)."""
        return {"status": "ok", "version": assay.__version__}

    return app
