"""The ``assay`` command line (Typer): parse, call the library, print with Rich."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

import assay
from assay.cli_ledger import ingest_app, ledger_app
from assay.datasets import score_bank_calls

app = typer.Typer(help="assay: does this score deserve belief?", no_args_is_help=True)
console = Console()
app.add_typer(ingest_app, name="ingest")
app.add_typer(ledger_app, name="ledger")


def _percent(value: float) -> str:
    return "—" if value != value else f"{100 * value:.1f}%"


@app.callback()
def main() -> None:
    """Measure whether probability scores deserve belief, and keep the evidence."""


@app.command()
def demo(
    n_bins: int = typer.Option(10, help="Equal-width buckets in the reliability table."),
) -> None:
    """Score later bank-marketing calls with models trained on earlier ones and audit them."""
    scored = score_bank_calls()
    console.print(
        f"[bold]Bank marketing[/] (UCI, CC BY 4.0): {len(scored.y):,} later calls scored by "
        f"models trained on the earlier half; {int(scored.y.sum()):,} subscribed "
        f"({_percent(float(scored.y.mean()))})."
    )
    for name, prob in scored.scores.items():
        table = assay.reliability_table(scored.y, prob, n_bins=n_bins)
        rich_table = Table(title=f"Scorer '{name}': when it says X, how many convert?")
        for column in ("bucket", "calls", "promised", "observed", "gap"):
            rich_table.add_column(column, justify="right")
        for i in range(len(table)):
            if table.n[i] == 0:
                continue
            rich_table.add_row(
                f"[{table.lower[i]:.1f}, {table.upper[i]:.1f}{']' if i == len(table) - 1 else ')'}",
                f"{table.n[i]:,}",
                _percent(table.mean_score[i]),
                _percent(table.observed_rate[i]),
                f"{100 * table.gap[i]:+.1f} pts",
            )
        console.print(rich_table)
        corp = assay.corp_decomposition(scored.y, prob)
        report = assay.calibration(scored.y, prob)
        posterior = report.posterior
        colour = {"calibrated": "green", "miscalibrated": "red"}.get(report.verdict, "yellow")
        console.print(f"  [bold {colour}]{report.verdict.upper()}[/] — {report.reason}")
        if posterior is not None:
            console.print(
                f"  ECE {report.ece:.4f} on {report.stats.n_bins} equal-mass bins; posterior "
                f"median {posterior.median:.4f}, {posterior.credibility:.0%} credible interval "
                f"[{posterior.lower:.4f}, {posterior.upper:.4f}]; a perfectly calibrated score "
                f"would show {report.noise_floor.median:.4f} "
                f"(90% band {report.noise_floor.lower:.4f}–{report.noise_floor.upper:.4f})"
            )
        console.print(
            f"  smooth ECE {assay.smooth_calibration_error(scored.y, prob):.4f}  "
            f"Brier {corp.score:.4f} (MCB {corp.mcb:.4f}, DSC {corp.dsc:.4f}, UNC {corp.unc:.4f})  "
            f"log loss {assay.log_loss(scored.y, prob):.4f}  "
            f"AUC {assay.roc_auc(scored.y, prob):.3f}\n"
        )
