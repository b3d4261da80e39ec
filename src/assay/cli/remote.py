"""``assay audit --source`` and ``assay sql``: calibration computed where the data lives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from assay._validation import AssayInputError, to_utc
from assay.cli.ledger import console, user_errors
from assay.pushdown import DIALECTS

EdgesOption = Annotated[
    str | None,
    typer.Option(help="Comma-separated bin edges from 0 to 1 (default: equal-mass bins)."),
]


def _edges(text: str | None) -> Any:
    from assay.stats.binning import explicit_edges

    if text is None:
        return None
    return explicit_edges([float(v) for v in text.split(",") if v.strip()])


def _read_rows(path: Path) -> list[dict[str, Any]]:
    """Per-bin sum rows as a JSON array of objects or as NDJSON."""
    text = path.read_text(errors="replace")
    try:
        if text.lstrip().startswith("["):
            rows = json.loads(text)
        else:
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as error:
        raise AssayInputError(f"{path} is not JSON or NDJSON: {error}") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise typer.BadParameter(f"{path} must hold a JSON array of objects or NDJSON rows")
    return rows


def audit_command(
    source: Annotated[
        str | None,
        typer.Option(
            help="Ibis URL (duckdb://x.db, postgres://…) or a Parquet glob of predictions."
        ),
    ] = None,
    outcomes: Annotated[
        str | None, typer.Option(help="Parquet glob of outcomes (with a Parquet --source).")
    ] = None,
    sums: Annotated[
        Path | None,
        typer.Option(help="Per-bin sums your engine returned for `assay sql` (JSON or NDJSON)."),
    ] = None,
    edges: EdgesOption = None,
    bins: Annotated[
        int | None, typer.Option(help="Equal-mass bins (default: the audit rule).")
    ] = None,
    scorer: Annotated[
        list[str] | None, typer.Option("--scorer", help="Scorer (repeatable; default: all).")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Cut-off, ISO 8601 with a zone (default: now).")
    ] = None,
    policy: Annotated[str, typer.Option(help="Emission per lead: first, last or all.")] = "first",
    predictions_table: Annotated[
        str, typer.Option(help="Predictions table (URL sources).")
    ] = "predictions",
    outcomes_table: Annotated[str, typer.Option(help="Outcomes table (URL sources).")] = "outcomes",
    seed: Annotated[int, typer.Option(help="Seed for the posterior and noise floor.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON here.")] = None,
) -> None:
    """Audit a Parquet lake or a warehouse table in place: only per-bin sums leave the engine."""
    from assay.audit.remote import audit_source, remote_document
    from assay.audit.scorer import AuditConfig, bucket_rows
    from assay.pushdown.sources import open_source
    from assay.pushdown.stats import stats_from_rows
    from assay.report.terminal import bucket_table, print_verdict
    from assay.stats.calibration import calibration_from_stats

    config = AuditConfig(n_bins=bins, seed=seed)
    with user_errors():
        fixed = _edges(edges)
        if sums is not None:
            if fixed is None:
                raise typer.BadParameter("--sums needs the --edges the SQL was compiled with")
            stats = stats_from_rows(_read_rows(sums), fixed)
            report = calibration_from_stats(stats, seed=seed)
            print_verdict(console, f"per-bin sums from {sums}", report)
            console.print(
                bucket_table(
                    "Buckets", bucket_rows(report.table, config.credibility, config.thin_bucket)
                )
            )
            if json_out:
                json_out.write_text(
                    json.dumps(
                        {"binstats": stats.to_dict(), "calibration": report.to_dict()}, indent=2
                    )
                    + "\n"
                )
            return
        if source is None:
            raise typer.BadParameter("give --source (an Ibis URL or a Parquet glob) or --sums")
        moment = to_utc(as_of)
        found = open_source(
            source,
            outcomes=outcomes,
            predictions_table=predictions_table,
            outcomes_table=outcomes_table,
        )
        with console.status("labelling and binning in the engine"):
            audits = audit_source(
                found, as_of=moment, scorers=scorer, policy=policy, edges=fixed, config=config
            )
    for audit in audits:
        print_verdict(console, f"scorer {audit.scorer}", audit.calibration)
        counts = audit.labels
        console.print(
            f"{counts['positive'] + counts['negative']:,} resolved ({counts['positive']:,} "
            f"converted), {counts['pending']:,} pending; {audit.stats.total_count:,} matured "
            "and scored entered the bins"
        )
        console.print(bucket_table("When it says X, how many convert?", audit.buckets))
    if json_out:
        document = remote_document(audits, source=found, as_of=moment, policy=policy)
        json_out.write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"JSON: {json_out}")


def sql_command(
    dialect: Annotated[str, typer.Option(help=f"One of {', '.join(DIALECTS)}.")],
    as_of: Annotated[
        str | None, typer.Option(help="Cut-off, ISO 8601 with a zone (default: now).")
    ] = None,
    edges: EdgesOption = None,
    bins: Annotated[int, typer.Option(help="Equal-width bins when --edges is not given.")] = 10,
    scorer: Annotated[str | None, typer.Option(help="Only this scorer.")] = None,
    policy: Annotated[str, typer.Option(help="Emission per lead: first, last or all.")] = "first",
    segment: Annotated[
        str | None, typer.Option(help="Also group by this segment attribute.")
    ] = None,
) -> None:
    """Print the SQL of the label join and per-bin sums, to run in your own warehouse."""
    from assay.pushdown.expressions import bin_sums_sql
    from assay.stats.binning import uniform_edges

    with user_errors():
        fixed = _edges(edges)
        text = bin_sums_sql(
            dialect, as_of=to_utc(as_of), edges=uniform_edges(bins) if fixed is None else fixed,
            scorer=scorer, policy=policy, segment=segment,
        )  # fmt: skip
    typer.echo(text, nl=False)
