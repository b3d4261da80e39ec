"""``assay serve`` and ``assay keys``: run the HTTP service and manage its API keys."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from assay._validation import AssayInputError
from assay.cli.ledger import console, user_errors
from assay.report.safe_text import terminal_text
from assay.service.keys import SCOPES, KeyStore

if TYPE_CHECKING:
    from assay.service.store import Store

keys_app = typer.Typer(help="Create, list and revoke the service's API keys.")

StoreOption = Annotated[
    str,
    typer.Option(
        "--store",
        envvar="ASSAY_STORE",
        help="duckdb:DIRECTORY (one ledger file per workspace) or postgresql://USER@HOST/DB.",
    ),
]
KeysOption = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        envvar="ASSAY_KEYS",
        help="API key file (default: DIRECTORY/keys.sqlite, or ./assay-keys.sqlite).",
    ),
]
DEFAULT_STORE = "duckdb:assay-server"


def _is_postgres(store: str) -> bool:
    return store.startswith(("postgresql://", "postgres://"))


def _duckdb_root(store: str) -> Path:
    kind, _, where = store.partition(":")
    if kind != "duckdb" or not where:
        raise AssayInputError(f"--store {store!r} is neither duckdb:DIRECTORY nor postgresql://…")
    return Path(where)


def open_store(store: str, query_threads: int | None = None) -> Store:
    """Open the store a ``--store`` value names (``query_threads``: a DuckDB store's)."""
    if _is_postgres(store):
        from assay.service.pgstore import PostgresStore

        return PostgresStore(store)
    from assay.service.store import DuckDBStore

    return DuckDBStore(_duckdb_root(store), threads=query_threads)


def keystore(store: str, keys: Path | None) -> KeyStore:
    """Open the key file: ``--keys``, else beside a DuckDB store, else ./assay-keys.sqlite."""
    if keys is not None:
        return KeyStore(keys)
    if _is_postgres(store):
        return KeyStore("assay-keys.sqlite")
    return KeyStore(_duckdb_root(store) / "keys.sqlite")


@keys_app.command("create")
def create_key(
    workspace: Annotated[str, typer.Option(help="Workspace the key belongs to.")],
    scope: Annotated[list[str], typer.Option("--scope", help=f"Repeatable: {', '.join(SCOPES)}.")],
    scorer: Annotated[
        str | None,
        typer.Option(help="Only this scorer's writes and scores (a vendor's key)."),
    ] = None,
    label: Annotated[str | None, typer.Option(help="A note: who holds the key.")] = None,
    store: StoreOption = DEFAULT_STORE,
    keys: KeysOption = None,
) -> None:
    """Create a key; the token is printed once and only its hash is kept."""
    with user_errors():
        token, key = keystore(store, keys).create(workspace, scope, scorer=scorer, label=label)
    console.print(
        terminal_text(f"key {key.key_id} for workspace {key.workspace} ({' '.join(key.scopes)})")
    )
    typer.echo(token)


@keys_app.command("list")
def list_keys(
    workspace: Annotated[str | None, typer.Option(help="Only this workspace.")] = None,
    store: StoreOption = DEFAULT_STORE,
    keys: KeysOption = None,
) -> None:
    """Every key (never its secret): workspace, scopes, scorer, created, revoked."""
    with user_errors():
        found = keystore(store, keys).list(workspace)
    table = Table(title="API keys")
    table.add_column("id", no_wrap=True, min_width=12)
    for column in ("workspace", "scopes", "scorer", "label", "created", "revoked"):
        table.add_column(column, overflow="fold")
    for key in found:
        table.add_row(  # stored names are data, never Rich markup
            *map(terminal_text, (
                key.key_id, key.workspace, " ".join(key.scopes), key.scorer or "",
                key.label or "", key.created_at[:10], (key.revoked_at or "")[:10],
            ))
        )  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key's id (the hex after ak_).")],
    store: StoreOption = DEFAULT_STORE,
    keys: KeysOption = None,
) -> None:
    """Revoke a key; the running server refuses it from its next request."""
    with user_errors():
        key = keystore(store, keys).revoke(key_id)
    console.print(terminal_text(f"revoked {key.key_id} ({key.workspace}) at {key.revoked_at}"))


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    store: StoreOption = DEFAULT_STORE,
    keys: KeysOption = None,
    rate: Annotated[float, typer.Option(help="Requests per second per key.")] = 50.0,
    head_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Seconds a client has to send a request's head (line and headers) once "
            "connected or answered; then 408 and the connection is closed.",
        ),
    ] = 10.0,
    body_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Seconds a client has to send a request's whole body after its head; then 408 "
            "(32 MiB in 30 s needs about 1.1 MB/s).",
        ),
    ] = 30.0,
    keep_alive_timeout: Annotated[
        int, typer.Option(min=1, help="Seconds an idle keep-alive connection stays open.")
    ] = 5,
    query_threads: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="DuckDB threads per workspace (a DuckDB store); default half the cores: "
            "requests run side by side. More makes a big report faster, writes slower.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI at /docs); Ctrl-C or SIGTERM finishes queued batches first.

    Slow clients are cut off: a request head must arrive within --head-timeout seconds (and
    hold at most 64 KiB), its body within --body-timeout seconds after it. Each request is
    logged on stderr in one line: method, path, status, rows, milliseconds, key id.
    """
    with user_errors():
        try:
            import uvicorn

            from assay.service.access_log import log_to_stderr
            from assay.service.app import Settings, create_app
            from assay.service.limits import bounded_http
        except ModuleNotFoundError as missing:  # a `pip install -e .` without the extra
            raise AssayInputError(
                f"assay serve needs the service extra ({missing.name} is not installed): "
                "pip install 'assay[service]'"
            ) from None
        ledgers = open_store(store, query_threads)
        settings = Settings(
            rate_per_second=rate,
            burst=int(2 * rate),
            head_timeout_seconds=head_timeout,
            body_timeout_seconds=body_timeout,
            keep_alive_seconds=keep_alive_timeout,
        )
        app = create_app(ledgers, keystore(store, keys), settings)
    where = store.split("@")[-1]  # never print a password
    console.print(f"assay serving {where} on http://{host}:{port} (OpenAPI: /docs)")
    log_to_stderr()  # one line per request; uvicorn's own access log is off
    # uvicorn drains requests on SIGTERM, then re-raises it to the handler it found: make that
    # a clean exit so the store below is closed (queued batches finished) before we go.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=30,
            timeout_keep_alive=settings.keep_alive_seconds,
            http=bounded_http(settings.head_timeout_seconds, settings.max_head_bytes),
        )
    finally:
        ledgers.close()  # after uvicorn has drained requests: finish queued batches, close files
