"""``assay models``: register a model version's artefact in the ledger, list the versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from assay.cli.ledger import LedgerOption, console, user_errors
from assay.report.safe_text import terminal_text

models_app = typer.Typer(help="Register model versions by their artefact's fingerprint; list them.")


@models_app.command("register")
def register_command(
    name: Annotated[str, typer.Argument(help="Model name (no '@', no whitespace).")],
    version: Annotated[str, typer.Argument(help="Version (frozen once registered).")],
    artefact: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="A .skops, .onnx or calibrator .json."),
    ],
    ledger: LedgerOption = None,
    format: Annotated[
        str | None, typer.Option("--format", help="skops, onnx or calibrator (default: detected).")
    ] = None,
    trust: Annotated[
        list[str] | None,
        typer.Option(
            "--trust",
            help="A skops type to trust beyond the default list, fully qualified (repeatable).",
        ),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(help="Input columns in order (a,b,c), for a model that does not name them."),
    ] = None,
) -> None:
    """Check the artefact (none of its code runs) and record it as NAME@VERSION."""
    from assay.ledger import Ledger
    from assay.models.registry import register_model

    columns = [c.strip() for c in features.split(",") if c.strip()] if features else []
    with user_errors(), Ledger(ledger) as store:
        before = store.chain_head().batches
        record = register_model(
            store, name, version, artefact, format=format, trusted=trust or (), features=columns
        )
        after = store.chain_head().batches
    batch = f"batch {after}" if after > before else "already registered with these bytes (no-op)"
    console.print(terminal_text(f"{record.ref}: {record.format}, fingerprint {record.fingerprint}"))
    console.print(terminal_text(f"features: {', '.join(record.details.get('features', []))}"))
    console.print(batch)


@models_app.command("list")
def list_command(
    ledger: LedgerOption = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (full fingerprints).")
    ] = False,
) -> None:
    """List registered model versions: name, version, fingerprint, format, registered at."""
    from assay.ledger import Ledger
    from assay.models.registry import list_models

    with user_errors(), Ledger(ledger, read_only=True) as store:
        records = list_models(store)
    if as_json:  # plain text on stdout, for scripts (no Rich markup or wrapping)
        typer.echo(json.dumps([r.to_dict() for r in records], indent=2))
        return
    table = Table(title="Registered models")
    for column in ("name", "version", "fingerprint", "format", "registered at (UTC)"):
        table.add_column(column)
    for r in records:  # stored names are data: terminal_text, never Rich markup
        table.add_row(
            terminal_text(r.name), terminal_text(r.version), r.fingerprint[:16],
            terminal_text(r.format), f"{r.registered_at:%Y-%m-%d %H:%M:%S}",
        )  # fmt: skip
    console.print(table)
    if not records:
        console.print("no model is registered yet: assay models register NAME VERSION ARTEFACT")
