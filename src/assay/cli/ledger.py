"""``assay ingest`` and ``assay ledger``: parse options, call the ledger, print with Rich.

Only what Typer needs to build the commands (option types, help text) is imported at the top;
the ledger (DuckDB) and the statistics load inside the command that uses them, so ``assay
--help`` starts in a fraction of a second.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.table import Table
from rich.text import Text

from assay._validation import AssayInputError
from assay.ledger.columns import SCORE_KINDS, help_text
from assay.report.safe_text import csv_cell, terminal_text

if TYPE_CHECKING:
    from assay.ledger import IngestReceipt

#: Columns of a console that is not a terminal: more than any line assay prints, so no line is
#: wrapped or cut (:class:`OutputConsole`).
UNBOUNDED = 100_000


class OutputConsole(Console):
    """The console every ``assay`` command prints to: a terminal's width, unbounded elsewhere.

    Rich lays out for 80 columns when it writes to a pipe, a file or a CI log, and cuts table
    cells to fit (``6.4%–7.…``). Off a terminal this console is :data:`UNBOUNDED` columns wide,
    so every table prints whole and each sentence on one line (the viewer wraps it); on a
    terminal it is Rich's console as it is. The check runs at each print, so the one console
    created at import serves a terminal, a pipe and a test runner's captured output alike.
    """

    @property
    def size(self) -> ConsoleDimensions:
        """Return the terminal's size; off a terminal, :data:`UNBOUNDED` columns."""
        measured = super().size
        return measured if self.is_terminal else ConsoleDimensions(UNBOUNDED, measured.height)

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        self.width, self.height = new_size


#: The one console of the command line (``main``, ``remote`` and ``service`` print to it too).
console = OutputConsole()
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
    """Show a transient progress display for inputs big enough to take a while."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if file.stat().st_size < PROGRESS_BYTES:
        yield None
        return
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task(f"{file.name}: starting", total=None)
        yield lambda stage: progress.update(task, description=f"{file.name}: {stage}")


def _message(error: Exception, style: str = "") -> Text:
    """Quote stored values in a message, line by line as data (never Rich markup)."""
    return Text("\n").join(terminal_text(line, style) for line in str(error).splitlines())


@contextmanager
def user_errors() -> Iterator[None]:
    """Print an AssayInputError as a one-line error and exit 1 (no traceback)."""
    try:
        yield
    except AssayInputError as exc:
        console.print(Text.assemble(("error:", "red"), " ", _message(exc)))
        raise typer.Exit(1) from None


def _report(
    file: Path, errors_file: Path | None, run: Callable[[], IngestReceipt]
) -> IngestReceipt:
    from assay.ledger import LedgerIngestError

    try:
        receipt = run()
    except LedgerIngestError as exc:
        target = errors_file or file.with_name(file.name + ".errors.csv")
        with target.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", "column", "value", "reason"])
            for bad in exc.bad_rows:  # cells that could be spreadsheet formulas start with '
                writer.writerow([csv_cell(v) for v in (bad.row, bad.column, bad.value, bad.reason)])
        console.print(_message(exc, style="red"))
        console.print(f"All {len(exc.bad_rows)} problems are listed in {target}.")
        raise typer.Exit(1) from None
    console.print(receipt.describe())
    for note in receipt.notes:
        console.print(Text.assemble("note: ", terminal_text(note)))
    console.print(f"file sha256 {receipt.file_sha256}")
    return receipt


@contextmanager
def _nothing_left_behind(path: Path) -> Iterator[None]:
    """Remove the ledger file again when a command that created it fails (no empty ledgers)."""
    existed = path.exists()
    try:
        yield
    except BaseException:
        if not existed:
            for leftover in (path, path.with_name(path.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise


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
    """Open the ledger and ingest ``file`` as ``kind`` with a progress display.

    Then report the result and what the ledger now holds that no label can use (never a
    silent zero).
    """
    from assay.ledger.store import Ledger, ledger_path

    path = ledger_path(ledger)
    mapping, defaults = _pairs(map_, "--map"), _pairs(default, "--default")
    with user_errors(), _nothing_left_behind(path), Ledger(path) as store:
        with _progress(file) as progress:
            ingest = store.ingest_predictions if kind == "predictions" else store.ingest_outcomes
            _report(
                file,
                errors_file,
                lambda: ingest(
                    file, mapping=mapping, defaults=defaults, progress=progress, **options
                ),
            )
        for warning in store.evidence_warnings():
            console.print(Text.assemble(("warning:", "yellow"), " ", terminal_text(warning)))


def _shorthands(default: list[str] | None, **values: str | None) -> list[str]:
    """``--scored-at X`` and ``--score-kind Y`` are ``--default scored_at=X`` and so on."""
    given = [f"{name}={value}" for name, value in values.items() if value is not None]
    return [*(default or []), *given]


BackfillOption = Annotated[
    bool,
    typer.Option(
        "--backfill",
        help="Load history: rows count as recorded when they were scored (or occurred), so "
        "past as-ofs see them; every report discloses them as loaded after the fact.",
    ),
]
DateFormatOption = Annotated[
    str | None,
    typer.Option(
        help="strptime format for timestamps that are not ISO 8601, e.g. '%d.%m.%Y %H:%M'."
    ),
]


@ingest_app.command("predictions", epilog=help_text("predictions"))
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
    scored_at: Annotated[
        str | None,
        typer.Option(
            help="Scoring time of every row, for score snapshots (the export time), "
            "e.g. 2024-06-30T18:00:00Z."
        ),
    ] = None,
    score_kind: Annotated[
        str | None,
        typer.Option(help=f"How to read every score: {', '.join(SCORE_KINDS)} (0-100)."),
    ] = None,
    backfill: BackfillOption = False,
    date_format: DateFormatOption = None,
    inputs: Annotated[
        str | None,
        typer.Option(
            help="The model's input columns, stored content-addressed with each prediction "
            "(replayable): col1,col2,... or one pattern such as 'x_*'."
        ),
    ] = None,
) -> None:
    """Append score emissions; identical rows are no-ops, changed ones are refused."""
    from assay.ledger.store import ABSTENTION_TOKENS

    default = _shorthands(default, scored_at=scored_at, score_kind=score_kind)
    _ingest(
        "predictions", file, ledger, errors_file, map_=map_, default=default, preset=preset,
        assume_timezone=assume_timezone, segments=segment or (), backfill=backfill,
        date_format=date_format,
        abstention_tokens=tuple(abstain) if abstain else ABSTENTION_TOKENS,
        inputs=None if inputs is None else [n.strip() for n in inputs.split(",") if n.strip()],
    )  # fmt: skip


@ingest_app.command("outcomes", epilog=help_text("outcomes"))
def ingest_outcomes(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet.")],
    ledger: LedgerOption = None,
    map_: MapOption = None,
    default: DefaultOption = None,
    preset: PresetOption = None,
    assume_timezone: TimezoneOption = None,
    errors_file: ErrorsOption = None,
    backfill: BackfillOption = False,
    date_format: DateFormatOption = None,
) -> None:
    """Append observed events (conversions); labels are derived from them as of a date."""
    _ingest(
        "outcomes", file, ledger, errors_file, map_=map_, default=default, preset=preset,
        assume_timezone=assume_timezone, backfill=backfill, date_format=date_format,
    )  # fmt: skip


@ingest_app.command("apply-calibrator")
def apply_calibrator_command(
    calibrator_json: Annotated[Path, typer.Argument(exists=True, help="From assay recalibrate.")],
    scorer: Annotated[str, typer.Option(help="The scorer whose predictions to calibrate.")],
    ledger: LedgerOption = None,
) -> None:
    """Record calibrated predictions as the derived scorer NAME+METHOD (auditable later)."""
    from assay.audit.derive import apply_calibrator
    from assay.ledger import Ledger
    from assay.stats.recalibration import load_calibrator

    with user_errors():
        calibrator = load_calibrator(calibrator_json.read_text())
        with Ledger(ledger, existing=True) as store:
            receipt = apply_calibrator(store, calibrator, scorer=scorer)
    console.print(receipt.describe())
    console.print(
        f"audits judge it only on leads scored after {calibrator.fitted_as_of_:%Y-%m-%d %H:%M} "
        "UTC: the calibrator was fitted on the outcomes of the leads scored until then"
    )


@ledger_app.command("status")
def status(ledger: LedgerOption = None) -> None:
    """Scorers, model versions, rows, pending share, the last batch and the chain head."""
    from assay.ledger import Ledger

    with user_errors(), Ledger(ledger, read_only=True) as store:
        info = store.status()
        head = store.chain_head()
    table = Table(title=terminal_text(f"Ledger {info['path']} (schema v{info['schema_version']})"))
    for column in ("scorer", "model version", "predictions", "pending", "abstentions", "scored"):
        table.add_column(
            column,
            justify="right" if column in ("predictions", "pending", "abstentions") else "left",
        )
    for row in info["scorers"].to_pylist():
        table.add_row(  # stored names are data: terminal_text, never Rich markup
            terminal_text(row["scorer"]), terminal_text(row["model_version"] or "—"),
            f"{row['rows']:,}",
            f"{row['pending_share']:.0%}", f"{row['abstentions']:,}",
            f"{row['first_scored']:%Y-%m-%d} → {row['last_scored']:%Y-%m-%d}",
        )  # fmt: skip
    console.print(table)
    console.print(f"outcomes: {info['outcomes']:,}")
    last = info["last_batch"]
    if last:
        console.print(
            terminal_text(
                f"last batch: #{last[0]} ({last[1]}, {last[2]:,} rows) at {last[3]} from {last[4]}"
            )
        )
    console.print(
        f"chain head: {head} (note it: `assay ledger verify --expect HEAD` proves later "
        "that this history was neither cut short nor rewritten)",
        soft_wrap=True,
    )


@ledger_app.command("verify")
def verify(
    ledger: LedgerOption = None,
    expect: Annotated[
        str | None,
        typer.Option(
            help="A chain head noted earlier (N:HASH, as status and verify print it): fail "
            "unless the ledger still holds that history (batch N with that chain hash)."
        ),
    ] = None,
) -> None:
    """Recompute every row hash, batch digest, metadata hash and the hash chain.

    Print the chain head.
    """
    from assay.ledger import Ledger
    from assay.ledger.integrity import ChainHead

    with user_errors():
        expected = None if expect is None else ChainHead.parse(expect)
        with Ledger(ledger, read_only=True) as store:
            result = store.verify(expect=expected)
    if result.ok:
        holds = f", holds {expected}" if expected else ""
        console.print(
            f"[green]ok[/]: {result.batches} batches, hash chain intact{holds}; "
            f"chain head {result.head}",
            soft_wrap=True,
        )
        return
    console.print(
        Text.assemble(("TAMPERED", "red"), ": ", terminal_text(result.problem)), soft_wrap=True
    )
    raise typer.Exit(1)
