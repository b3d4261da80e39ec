"""The ``assay`` command line (Typer): parse, call the library, print with Rich.

The top-level imports are what Typer needs to build the commands (option types and help);
each command imports the ledger, statistics and renderers it uses, so ``assay --help`` loads
neither DuckDB, Ibis, SciPy's optimisers, scikit-learn nor matplotlib (``tests/test_entry.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

import assay
from assay._validation import to_utc
from assay.cli.ledger import LedgerOption, console, ingest_app, ledger_app, user_errors
from assay.cli.models import models_app
from assay.cli.remote import audit_command, sql_command
from assay.cli.replay import replay_command, score_command
from assay.cli.service import keys_app, serve_command
from assay.report.safe_text import terminal_text

if TYPE_CHECKING:
    from assay.audit.scorer import Evidence
    from assay.stats.tolerance import Tolerance

ScorersOption = Annotated[
    list[str] | None, typer.Option("--scorer", help="Scorer (repeatable; default: all).")
]
AsOfOption = Annotated[
    str | None, typer.Option(help="Cut-off, ISO 8601 with a zone (default: now).")
]
PolicyOption = Annotated[str, typer.Option(help="Emission per lead: first, last or all.")]
TargetOption = Annotated[
    float | None, typer.Option(help="Also certify an action threshold at this precision.")
]
DeltaOption = Annotated[float, typer.Option(help="Error level of the guarantee.")]
CostOption = Annotated[float | None, typer.Option("--cost", help="Cost per automated action.")]
ValueOption = Annotated[float | None, typer.Option("--value", help="Value per conversion.")]
ToleranceOption = Annotated[
    str | None,
    typer.Option(
        help="What still counts as calibrated, e.g. 'ratio=1.25,slope=1.25,curve=0.25,floor=0.005,"
        "cap=0.05': observed/expected within [1/ratio, ratio], slope within [1/slope, slope], "
        "ECE at most curve x mean score, clipped to \\[floor, cap] (these are the defaults)."
    ),
]


def _tolerance(text: str | None) -> Tolerance:
    from assay.stats.tolerance import Tolerance

    return Tolerance() if text is None else Tolerance.parse(text)


app = typer.Typer(help="assay: does this score deserve belief?", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
app.add_typer(ledger_app, name="ledger")
app.command("audit")(audit_command)
app.command("sql")(sql_command)
app.command("serve")(serve_command)
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.command("score")(score_command)
app.command("replay")(replay_command)


def _evidence_per_scorer(
    ledger: Path | None, scorers: list[str] | None, as_of: str | None, policy: str
) -> Iterator[tuple[str, Evidence]]:
    from assay.audit.scorer import evidence
    from assay.ledger import Ledger

    with Ledger(ledger, read_only=True) as store:
        moment = to_utc(as_of)
        for name in scorers or store.scorers():
            yield name, evidence(store, scorer=name, as_of=moment, policy=policy)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"assay {assay.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Measure whether probability scores deserve belief, and keep the evidence."""


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Directory for the ledger and the report.")] = Path(
        "assay-demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed for the simulated outcome delays.")] = 0,
    synthetic: Annotated[
        bool, typer.Option(help="Simulate a CRM with known true calibration instead.")
    ] = False,
) -> None:
    """Build a ledger from real bank-marketing calls, audit two scorers, write the report."""
    from assay.demo.build import build_demo, build_synthetic_demo
    from assay.report.terminal import print_report

    started = time.perf_counter()
    with console.status("building the ledger and auditing"):
        result = (build_synthetic_demo if synthetic else build_demo)(out, seed=seed)
    print_report(console, result.report)
    compared = (
        ""
        if result.compare_html is None
        else f"[bold]Comparison:[/] {result.compare_html.resolve()}\n"
    )
    console.print(
        f"\n[bold]Report:[/] {result.html.resolve()}\n[bold]JSON:[/] {result.json.resolve()}\n"
        f"{compared}[bold]Ledger:[/] {result.ledger.resolve()} (try: assay report --ledger "
        f"{result.ledger} --as-of {result.report.as_of})\n"
        f"Done in {time.perf_counter() - started:.1f} s."
    )


@app.command()
def report(
    scorer: ScorersOption = None,
    as_of: AsOfOption = None,
    model_version: Annotated[str | None, typer.Option(help="Only this model version.")] = None,
    policy: PolicyOption = "first",
    html: Annotated[Path | None, typer.Option(help="Write the HTML report here.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the JSON here.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the posterior and noise floor.")] = 0,
    target_precision: TargetOption = None,
    delta: DeltaOption = 0.05,
    cost: CostOption = None,
    value: ValueOption = None,
    segment_by: Annotated[
        str | None, typer.Option(help="Add segment rates for this segment attribute.")
    ] = None,
    tolerance: ToleranceOption = None,
    ledger: LedgerOption = None,
) -> None:
    """Audit scorers from the ledger: verdict, ECE with interval and noise floor, buckets.

    With two scorers or more, their comparison; each scorer's stored monitors, replayed.
    """
    from assay.audit.document import dumps, report_document
    from assay.audit.report import build_report
    from assay.audit.scorer import AuditConfig
    from assay.ledger import Ledger
    from assay.report.html import render_html
    from assay.report.terminal import print_report

    with user_errors(), Ledger(ledger, read_only=True) as store:
        config = AuditConfig(
            tolerance=_tolerance(tolerance),
            seed=seed,
            target_precision=target_precision,
            delta=delta,
            value_per_conversion=value,
            cost_per_action=cost,
            segment_by=segment_by,
        )
        built = build_report(
            store, as_of=as_of, scorers=scorer, model_version=model_version, policy=policy,
            config=config,
        )  # fmt: skip
    print_report(console, built)
    if html:
        html.write_text(render_html(built, json_path=None if json_out is None else str(json_out)))
        console.print(f"HTML report: {html}")
    if json_out:
        json_out.write_text(dumps(report_document(built)))
        console.print(f"JSON report: {json_out}")


@app.command()
def threshold(
    target_precision: Annotated[
        float, typer.Option(help="Precision the automated action must keep, e.g. 0.5.")
    ],
    scorer: ScorersOption = None,
    delta: DeltaOption = 0.05,
    cost: CostOption = None,
    value: ValueOption = None,
    as_of: AsOfOption = None,
    policy: PolicyOption = "first",
    ledger: LedgerOption = None,
) -> None:
    """Find the score above which an action may fire on its own, with a stated guarantee."""
    from assay.report.terminal import print_threshold
    from assay.stats.decisions import certify_threshold

    with user_errors():
        for name, found in _evidence_per_scorer(ledger, scorer, as_of, policy):
            result = certify_threshold(
                found.labels,
                found.prob,
                target_precision=target_precision,
                delta=delta,
                value_per_conversion=value,
                cost_per_action=cost,
            )
            print_threshold(console, name, result)


@app.command()
def segments(
    by: Annotated[str, typer.Option(help="Segment attribute stored with the predictions.")],
    scorer: ScorersOption = None,
    as_of: AsOfOption = None,
    method: Annotated[str, typer.Option(help="grid (full Bayes), mle or moments.")] = "grid",
    min_size: Annotated[int, typer.Option(help="Pool smaller segments into 'other'.")] = 10,
    policy: PolicyOption = "first",
    tolerance: ToleranceOption = None,
    ledger: LedgerOption = None,
) -> None:
    """Show the conversion rate per segment: raw (optimistic) beside shrunken (action-ready).

    A segment is "in line" when its rate is within the O/E tolerance (ratio) of the overall
    rate.
    """
    from assay.report.terminal import print_segments
    from assay.stats.segments import segment_rates

    with user_errors():
        band = _tolerance(tolerance)
        for name, found in _evidence_per_scorer(ledger, scorer, as_of, policy):
            rates = segment_rates(
                found.labels, found.segment(by), min_size=min_size, method=method, tolerance=band
            )
            print_segments(console, name, by, rates)


@app.command("compare")
def compare_command(
    scorers: Annotated[
        str | None, typer.Option(help="Comma-separated scorers (default: all).")
    ] = None,
    as_of: AsOfOption = None,
    segment_by: Annotated[
        str | None, typer.Option(help="Segment attribute for the honesty (abstention) rates.")
    ] = None,
    html: Annotated[Path | None, typer.Option(help="Write the comparison page here.")] = None,
    policy: PolicyOption = "first",
    tolerance: ToleranceOption = None,
    ledger: LedgerOption = None,
) -> None:
    """Compare scorers on the leads they all scored: calibration, discrimination, honesty."""
    from assay.audit.report import comparison_view
    from assay.ledger import Ledger
    from assay.report.html import render_comparison_html
    from assay.report.terminal import print_comparison
    from assay.stats.compare import compare

    names = [s.strip() for s in scorers.split(",")] if scorers else None
    with user_errors(), Ledger(ledger, read_only=True) as store:
        moment = to_utc(as_of)
        result = compare(
            store, scorers=names, as_of=moment, policy=policy, segment_by=segment_by,
            tolerance=_tolerance(tolerance),
        )  # fmt: skip
    print_comparison(console, result)
    if html:
        html.write_text(render_comparison_html(comparison_view(result), as_of=moment.isoformat()))
        console.print(f"comparison page: {html}")


@app.command("recalibrate")
def recalibrate_command(
    scorer: Annotated[str, typer.Option(help="The scorer to recalibrate.")],
    out: Annotated[Path, typer.Option(help="Where to write the calibrator JSON.")],
    method: Annotated[
        str, typer.Option(help="auto, platt, isotonic, histogram, beta, venn-abers or temperature.")
    ] = "auto",
    as_of: AsOfOption = None,
    policy: PolicyOption = "first",
    seed: Annotated[int, typer.Option(help="Seed for the folds and intervals.")] = 0,
    ledger: LedgerOption = None,
) -> None:
    """Fit calibrators on matured outcomes, choose by out-of-fold log loss, save the winner."""
    from assay.report.terminal import print_recalibration
    from assay.stats.recalibration import recalibrate

    with user_errors():
        for _, found in _evidence_per_scorer(ledger, [scorer], as_of, policy):
            result = recalibrate(
                found.labels, found.prob, method=method, seed=seed, fitted_as_of=found.as_of
            )
            print_recalibration(console, scorer, result)
            out.write_text(result.calibrator.to_json())
            console.print(
                f"calibrator ({result.method}, {result.calibrator.fingerprint[:16]}): {out}"
            )


@app.command("monitor")
def monitor_command(
    scorer: ScorersOption = None,
    as_of: AsOfOption = None,
    model_version: Annotated[str | None, typer.Option(help="Only this model version.")] = None,
    alpha: Annotated[float, typer.Option(help="Error level of the audit alarm.")] = 0.05,
    grace_days: Annotated[
        float | None,
        typer.Option(
            help="Days after the horizon before a lead counts as matured "
            "(default: the recording lag measured from the ledger)."
        ),
    ] = None,
    replay: Annotated[
        bool, typer.Option(help="Rebuild the state from scratch instead of continuing it.")
    ] = False,
    tolerance: ToleranceOption = None,
    ledger: LedgerOption = None,
) -> None:
    """Feed each scorer's anytime-valid monitor the leads matured since its last update.

    The monitor tests "calibrated within tolerance" (the ratio and slope of --tolerance).
    """
    from assay.audit.monitor import Monitor
    from assay.ledger import Ledger
    from assay.report.terminal import print_monitor

    with user_errors(), Ledger(ledger, existing=True) as store:
        for name in scorer or store.scorers():
            monitor = Monitor(
                scorer=name, model_version=model_version, alpha=alpha, grace_days=grace_days,
                tolerance=_tolerance(tolerance),
            )  # fmt: skip
            stored = store.monitor_state(monitor.key)
            if stored is not None and not replay:
                monitor = Monitor.from_dict(json.loads(stored))
            path = (monitor.replay if replay else monitor.update)(store, as_of=as_of)
            store.save_monitor_state(monitor.key, monitor.to_json())
            print_monitor(console, monitor, consumed=len(path.times_us))


@app.command()
def verify(
    report_json: Annotated[Path, typer.Argument(exists=True, help="A report written by --json.")],
    ledger: LedgerOption = None,
) -> None:
    """Recompute a JSON report from the ledger: identical, or each field that differs.

    Refused in one line (exit 1): a setting out of bounds, an as-of later than now, or a ledger
    that no longer holds the history the report recorded (its ledger head).
    """
    from assay.audit.document import read_document, recorded_ledger, verify_document
    from assay.ledger import Ledger

    with user_errors():
        document = read_document(report_json)
        path = ledger or recorded_ledger(document)
        with Ledger(path, read_only=True) as store:
            differences = verify_document(document, store)
    if not differences:
        head = document.get("ledger_head")
        anchor = (
            f"; the ledger still holds its history (ledger head {head})"
            if head
            else " (the report records no ledger head, so it anchors no history)"
        )
        console.print(
            Text.assemble(
                ("identical", "green"),
                terminal_text(f": every number in {report_json} reproduces from {path}{anchor}"),
            )
        )
        return
    console.print(
        Text.assemble(
            (f"{len(differences)} numbers differ", "red"), terminal_text(f" from {report_json}:")
        )
    )
    for line in differences[:50]:
        console.print(terminal_text(f"  {line}"))  # the differences quote stored text
    raise typer.Exit(1)
