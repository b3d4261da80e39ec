"""schemathesis against the service's own OpenAPI: no server error, every answer documented.

The ingest bodies are declared as strings (NDJSON or CSV text); which strings are valid
batches is decided row by row, beyond what OpenAPI can say, so the "schema-valid data must be
accepted" check is the one left out. Runs are bounded (15 examples per operation, seeded).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from assay.service.app import create_app
from assay.service.keys import SCOPES, KeyStore
from assay.service.store import DuckDBStore

ROOT = Path(tempfile.mkdtemp(prefix="assay-openapi-"))
KEYS = KeyStore(ROOT / "keys.sqlite")
TOKEN, _ = KEYS.create("fuzz", list(SCOPES))
APP = create_app(DuckDBStore(ROOT), KEYS)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_honours_its_own_openapi(case: schemathesis.Case) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {TOKEN}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )
