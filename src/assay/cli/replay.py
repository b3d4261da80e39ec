"""``assay score`` and ``assay replay``: score through the ledger, re-run what was scored.

``assay score --model NAME@VERSION leads.csv`` takes the options of ``assay ingest
predictions`` that apply to computed scores (``--map``, ``--default``, ``--segment``,
``--scored-at``, ``--assume-timezone``, ``--date-format``, ``--errors-file``).
``assay replay`` prints one row per model version and a one-line verdict; it exits 0 when every
replayed prediction is identical or within the tolerance, 1 when one differs, 2 on bad input
(an unknown scorer, a malformed option), 3 when nothing could be replayed (no prediction has both
stored inputs and a registered model: nothing was proved), so a script can tell a difference
from a mistake and from an empty proof.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from assay._validation import AssayInputError
from assay.cli.ledger import (
    DateFormatOption,
    DefaultOption,
    ErrorsOption,
    LedgerOption,
    MapOption,
    TimezoneOption,
    _message,
    _nothing_left_behind,
    _pairs,
    _progress,
    _report,
    _shorthands,
    console,
    user_errors,
)
from assay.report.safe_text import terminal_text

if TYPE_CHECKING:
    from assay.ledger import Ledger
    from assay.models.replay import ReplayResult

#: Exit status of ``assay replay`` when no prediction could be re-run (nothing was proved).
NOTHING_REPLAYED = 3
#: Exit status of ``assay replay`` on bad input (1 means a prediction differs).
BAD_INPUT = 2


def score_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV or Parquet.")],
    model: Annotated[
        str | None, typer.Option(help="The registered model that scores: NAME@VERSION.")
    ] = None,
    honest: Annotated[
        bool,
        typer.Option(
            "--honest",
            help="Serve the honest score of --scorer's raw scores (calibrated on this ledger's "
            "outcomes, with a 90% interval or 'not yet').",
        ),
    ] = False,
    scorer: Annotated[
        str | None, typer.Option(help="With --honest: the vendor whose raw scores these are.")
    ] = None,
    score_column: Annotated[
        str, typer.Option(help="With --honest: the column holding the raw score.")
    ] = "score",
    score_kind: Annotated[
        str | None,
        typer.Option(
            help="With --honest: probability or percent (default: as the vendor's stored scores)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="With --honest: the per-lead CSV (default: <file>.honest.csv)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed set on the model's random_state and stored with each score."),
    ] = None,
    id_column: Annotated[
        str, typer.Option(help="Column holding the prediction ids (default: derived).")
    ] = "prediction_id",
    ledger: LedgerOption = None,
    map_: MapOption = None,
    default: DefaultOption = None,
    segment: Annotated[
        list[str] | None,
        typer.Option(
            help="Column to keep as a segment attribute (repeatable); with --honest, the one "
            "segment the honest map shrinks offsets for."
        ),
    ] = None,
    scored_at: Annotated[
        str | None, typer.Option(help="Scoring time of every row (default: now).")
    ] = None,
    assume_timezone: TimezoneOption = None,
    errors_file: ErrorsOption = None,
    date_format: DateFormatOption = None,
) -> None:
    """Score leads with a registered model, or serve the honest score of a vendor's leads.

    With --model: one all-or-nothing ingest of the inputs and the predictions (scorer NAME,
    model version VERSION); `assay replay` re-runs them later. With --honest --scorer VENDOR:
    the honest map is built or updated from VENDOR's matured leads, and each lead is recorded as
    a prediction of VENDOR~honest (an abstention where the map says "not yet").
    """
    from assay.ledger.store import Ledger, ledger_path
    from assay.models.registry import parse_model_ref
    from assay.models.scoring import score_leads

    path = ledger_path(ledger)
    mapping = _pairs(map_, "--map")
    defaults = _pairs(_shorthands(default, scored_at=scored_at), "--default")
    with user_errors():
        _check_score_options(model, honest, scorer, segment or [])
        name, version = parse_model_ref(model) if model is not None else ("", "")
    if honest:
        from assay.cli.honest import serve_honestly

        assert scorer is not None
        with user_errors(), Ledger(path) as store:
            served = serve_honestly(
                store, scorer, file, score_column=score_column, score_kind=score_kind,
                segment_key=segment[0] if segment else None, mapping=mapping, defaults=defaults,
                out=out,
            )  # fmt: skip
        console.print(
            terminal_text(
                f"re-run them any time: assay replay --scorer {served.version.record.name} "
                f"--model-version {served.version.record.version}"
            ),
            soft_wrap=True,
        )
        return
    with (
        user_errors(),
        _nothing_left_behind(path),
        Ledger(path) as store,
        _progress(file) as progress,
    ):
        _report(
            file,
            errors_file,
            lambda: score_leads(
                store, str(model), file, seed=seed, id_column=id_column, mapping=mapping,
                defaults=defaults, segments=segment or (), assume_timezone=assume_timezone,
                date_format=date_format, progress=progress,
            ),
        )  # fmt: skip
    console.print(
        terminal_text(
            f"re-run them any time: assay replay --scorer {name} --model-version {version}"
        ),
        soft_wrap=True,
    )


def _check_score_options(
    model: str | None, honest: bool, scorer: str | None, segment: list[str]
) -> None:
    """Refuse a mix of --model and --honest, or --honest without --scorer."""
    if honest and model is not None:
        raise AssayInputError(
            "--honest serves a vendor's calibrated score, --model runs a registered model: "
            "give one of them"
        )
    if honest and scorer is None:
        raise AssayInputError("--honest needs --scorer VENDOR: whose raw scores these are")
    if honest and len(segment) > 1:
        raise AssayInputError("--honest takes at most one --segment: the map's segment column")
    if not honest and model is None:
        raise AssayInputError(
            "give --model NAME@VERSION (a registered model) or --honest --scorer VENDOR"
        )


@contextmanager
def _bad_input() -> Iterator[None]:
    """Print an AssayInputError in one line and exit :data:`BAD_INPUT` (never 1: a difference)."""
    try:
        yield
    except AssayInputError as exc:
        console.print(Text.assemble(("error:", "red"), " ", _message(exc)))
        raise typer.Exit(BAD_INPUT) from None


def replay_command(
    scorer: Annotated[str | None, typer.Option(help="Only this scorer.")] = None,
    model_version: Annotated[str | None, typer.Option(help="Only this model version.")] = None,
    sample: Annotated[
        int | None,
        typer.Option(min=1, help="Replay this many predictions, drawn at random (--seed)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    as_of: Annotated[
        str | None,
        typer.Option(help="The ledger as of then: predictions and models recorded by it."),
    ] = None,
    tolerance: Annotated[
        float, typer.Option(min=0.0, help="|recomputed - stored| that still counts as the same.")
    ] = 1e-9,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the result as JSON here.")
    ] = None,
    ledger: LedgerOption = None,
) -> None:
    """Re-run stored inputs through the registered models: identical, within tolerance, different.

    Exits 1 when a replayed prediction differs beyond the tolerance, 2 on bad input, 3 when
    nothing could be replayed.
    """
    from assay.audit.document import dumps
    from assay.ledger import Ledger
    from assay.models.replay import replay

    with _bad_input(), Ledger(ledger, read_only=True) as store:
        if model_version is not None:
            _require_version(store, scorer, model_version)
        result = replay(
            store, scorer=scorer, model_version=model_version, sample=sample, as_of=as_of,
            seed=seed, tolerance=tolerance,
        )  # fmt: skip
    print_replay(result)
    if json_out:
        json_out.write_text(dumps(result.to_dict()))
        console.print(f"JSON: {json_out}")
    if not result.ok:
        raise typer.Exit(1)
    if result.replayed == 0:
        raise typer.Exit(NOTHING_REPLAYED)


def _require_version(store: Ledger, scorer: str | None, model_version: str) -> None:
    """Refuse a model version no prediction (of the scorer) carries, naming those that do.

    Otherwise a mistyped ``--model-version`` replays nothing and exits 0, as if reproduced.
    """
    if scorer is not None:
        store.require_scorer(scorer)
    rows = store.con.execute(
        "SELECT DISTINCT model_version FROM predictions WHERE model_version IS NOT NULL "
        "AND (? IS NULL OR scorer = ?) ORDER BY model_version",
        [scorer, scorer],
    ).fetchall()
    known = [str(row[0]) for row in rows]
    if model_version not in known:
        whose = f" of scorer {scorer!r}" if scorer is not None else ""
        raise AssayInputError(
            f"no prediction{whose} has model version {model_version!r}; versions: "
            f"{', '.join(known) or 'none (the predictions carry no model_version)'}"
        )


def print_replay(result: ReplayResult) -> None:
    """Print a row per model version, the predictions not replayable, and the verdict."""
    table = Table(title=f"Replay as of {result.as_of} (tolerance ±{result.tolerance:g})")
    for column in ("scorer", "model version", "artefact", "replayed", "identical",
                   "within", "different", "largest |Δ|", "first differing ids"):  # fmt: skip
        table.add_column(column, overflow="fold")
    for v in result.versions:
        largest = "—" if v.largest_difference == 0 else f"{v.largest_difference:.3g}"
        table.add_row(
            terminal_text(v.scorer), terminal_text(v.model_version),
            f"{v.format} {v.fingerprint[:12]}", f"{v.replayed:,} of {v.replayable:,}",
            f"{v.identical:,}", f"{v.within_tolerance:,}", f"{v.different:,}", largest,
            terminal_text(", ".join(v.first_different) or "—"),
        )  # fmt: skip
    console.print(table)
    for u in result.unreplayable:
        console.print(
            terminal_text(
                f"not replayable: {u.predictions:,} predictions of {u.scorer} "
                f"{u.model_version or '(no version)'}: {u.reason}"
            )
        )
    style = "green" if result.ok and result.versions else ("red" if not result.ok else "yellow")
    console.print(Text(result.verdict(), style=style), soft_wrap=True)
