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


def test_the_ingest_bodies_declare_the_one_ingest_schema() -> None:
    """The OpenAPI row schema, the service's field allow-list and the ledger's validation all
    come from assay.ledger.columns: every declared column but recorded_at, required alike."""
    from assay.ledger.columns import INPUT
    from assay.service.batches import FIELDS

    document = APP.openapi()
    for kind, declared in INPUT.items():
        body = document["paths"][f"/v1/{kind}"]["post"]["requestBody"]["content"]
        rows = body["application/x-ndjson"]["x-item-schema"]
        client = [c for c in declared if c.name != "recorded_at"]
        assert set(rows["properties"]) - {"inputs"} == set(FIELDS[kind])
        assert set(FIELDS[kind]) - {"segments"} == {c.name for c in client}
        assert rows["required"] == [c.name for c in client if c.required]
        assert rows["properties"]["entity_id"]["maxLength"] == 512
    horizon = document["paths"]["/v1/predictions"]["post"]["requestBody"]["content"][
        "application/x-ndjson"
    ]["x-item-schema"]["properties"]["horizon_days"]["anyOf"][0]
    assert (horizon["minimum"], horizon["maximum"]) == (1, 3650)
