"""``assay ingest`` and ``assay ledger``: parse options, call the ledger, print with Rich."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from assay._validation import AssayInputError
from assay.derive import apply_calibrator
from assay.ledger import IngestReceipt, Ledger, LedgerIngestError
from assay.ledger.store import ABSTENTION_TOKENS
from assay.recalibration import load_calibrator

console = Console()
ingest_app = typer.Typer(help="Append predictions or outcomes to the ledger (all or nothing).")
ledger_app = typer.Typer(help="Inspect and verify the ledger.")

#: Inputs larger than this show a progress display (about a second of work).
PROGRESS_BYTES = 2_000_000

LedgerOption = Annotated[
    Path | None,
    typer.Option("--ledger", envvar="ASSAY_LEDGER", help="Ledger file (default ./assay.duckdb)."),
]
MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="Rename a source column: SOURCE=LEDGER_NAME (repeatable)."),
]
DefaultOption = Annotated[
    list[str] | None,
    typer.Option("--default", help="Constant for a missing column: NAME=VALUE (repeatable)."),
]
PresetOption = Annotated[str | None, typer.Option(help="Column preset: hubspot or salesforce.")]
TimezoneOption = Annotated[
    str | None,
    typer.Option(help="Zone for timestamps written without one (e.g. UTC, Europe/Berlin)."),
]
ErrorsOption = Annotated[
    Path | None, typer.Option(help="Where to write every bad row (default FILE.errors.csv).")
]


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        key, sep, target = value.partition("=")
        if not sep or not key or not target:
            raise typer.BadParameter(f"{option} expects NAME=VALUE, got {value!r}")
        pairs[key.strip()] = target.strip()
    return pairs


@contextmanager
def _progress(file: Path) -> Iterator[Callable[[str], None] | None]:
    """A transient progress display for inputs big enough to take a while."""
    if file.stat().st_size < PROGRESS_BYTES:
        yield None
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task(f"{file.name}: starting", total=None)
        yield lambda stage: progress.update(task, description=f"{file.name}: {stage}")


@contextmanager
def user_errors() -> Iterator[None]:
    """Print an AssayInputError as a one-line error and exit 1 (no traceback)."""
    try:
        yield
    except AssayInputError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from None


def _report(
    file: Path, errors_file: Path | None, run: Callable[[], IngestReceipt]
) -> IngestReceipt:
    try:
        receipt = run()
    except LedgerIngestError as exc:
        target = errors_file or file.with_name(file.name + ".errors.csv")
        with target.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", "column", "value", "reason"])
            for bad in exc.bad_rows:
                writer.writerow([bad.row, bad.column, bad.value, bad.reason])
        console.print(f"[red]{exc}[/]")
        console.print(f"All {len(exc.bad_rows)} problems are listed in {target}.")
        raise typer.Exit(1) from None
    console.print(receipt.describe())
    console.print(f"file sha256 {receipt.file_sha256}")
    return receipt


def _ingest(
    kind: str,
    file: Path,
    ledger: Path | None,
    errors_file: Path | None,
    *,
    map_: list[str] | None,
    default: list[str] | None,
    **options: Any,
) -> None:
    """Open the ledger, ingest ``file`` as ``kind`` with a progress display, report the result."""
    with user_errors(), Ledger(ledger) as store, _progress(file) as progress:
        ingest = store.ingest_predictions if kind == "predictions" else store.ingest_outcomes
        _report(
            file,
            errors_file,
            lambda: ingest(
                file,
                mapping=_pairs(map_, "--map"),
                defaults=_pairs(default, "--default"),
                progress=progress,
                **options,
            ),
        )


@ingest_app.command("predictions")
def ingest_predictions(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet.")],
    ledger: LedgerOption = None,
    map_: MapOption = None,
    default: DefaultOption = None,
    preset: PresetOption = None,
    segment: Annotated[
        list[str] | None, typer.Option(help="Column to keep as a segment attribute (repeatable).")
    ] = None,
    assume_timezone: TimezoneOption = None,
    abstain: Annotated[
        list[str] | None,
        typer.Option(
            help="Score text meaning the scorer abstained (repeatable; replaces the defaults)."
        ),
    ] = None,
    errors_file: ErrorsOption = None,
) -> None:
    """Append score emissions; identical rows are no-ops, changed ones are refused."""
    _ingest(
        "predictions", file, ledger, errors_file, map_=map_, default=default, preset=preset,
        assume_timezone=assume_timezone, segments=segment or (),
        abstention_tokens=tuple(abstain) if abstain else ABSTENTION_TOKENS,
    )  # fmt: skip


@ingest_app.command("outcomes")
def ingest_outcomes(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet.")],
    ledger: LedgerOption = None,
    map_: MapOption = None,
    default: DefaultOption = None,
    preset: PresetOption = None,
    assume_timezone: TimezoneOption = None,
    errors_file: ErrorsOption = None,
) -> None:
    """Append observed events (conversions); labels are derived from them as of a date."""
    _ingest(
        "outcomes", file, ledger, errors_file, map_=map_, default=default, preset=preset,
        assume_timezone=assume_timezone,
    )  # fmt: skip


@ingest_app.command("apply-calibrator")
def apply_calibrator_command(
    calibrator_json: Annotated[Path, typer.Argument(exists=True, help="From assay recalibrate.")],
    scorer: Annotated[str, typer.Option(help="The scorer whose predictions to calibrate.")],
    ledger: LedgerOption = None,
) -> None:
    """Record calibrated predictions as the derived scorer NAME+METHOD (auditable later)."""
    with user_errors():
        calibrator = load_calibrator(calibrator_json.read_text())
        with Ledger(ledger) as store:
            receipt = apply_calibrator(store, calibrator, scorer=scorer)
    console.print(receipt.describe())
    console.print(
        f"audits judge it only on leads scored after {calibrator.fitted_as_of_:%Y-%m-%d %H:%M} "
        "UTC: the calibrator was fitted on the outcomes of the leads scored until then"
    )


@ledger_app.command("status")
def status(ledger: LedgerOption = None) -> None:
    """Scorers, model versions, rows, pending share and the last batch."""
    with user_errors(), Ledger(ledger, read_only=True) as store:
        info = store.status()
    table = Table(title=f"Ledger {info['path']} (schema v{info['schema_version']})")
    for column in ("scorer", "model version", "predictions", "pending", "abstentions", "scored"):
        table.add_column(
            column,
            justify="right" if column in ("predictions", "pending", "abstentions") else "left",
        )
    for row in info["scorers"].to_pylist():
        table.add_row(
            row["scorer"], row["model_version"] or "—", f"{row['rows']:,}",
            f"{row['pending_share']:.0%}", f"{row['abstentions']:,}",
            f"{row['first_scored']:%Y-%m-%d} → {row['last_scored']:%Y-%m-%d}",
        )  # fmt: skip
    console.print(table)
    console.print(f"outcomes: {info['outcomes']:,}")
    last = info["last_batch"]
    if last:
        console.print(
            f"last batch: #{last[0]} ({last[1]}, {last[2]:,} rows) at {last[3]} from {last[4]}"
        )


@ledger_app.command("verify")
def verify(ledger: LedgerOption = None) -> None:
    """Recompute every row hash, batch digest and the hash chain."""
    with user_errors(), Ledger(ledger, read_only=True) as store:
        result = store.verify()
    if result.ok:
        console.print(f"[green]ok[/]: {result.batches} batches, hash chain intact")
        return
    console.print(f"[red]TAMPERED[/]: {result.problem}")
    raise typer.Exit(1)
