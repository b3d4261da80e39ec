"""The Rich terminal summary of a report: what the audit layer computed, printed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich.table import Table
from rich.text import Text

from assay.audit.monitor import format_e
from assay.report.safe_text import terminal_text

if TYPE_CHECKING:  # what is printed; importing it here would load what printing never needs
    from rich.console import Console

    from assay.audit.monitor import Monitor
    from assay.audit.report import Report
    from assay.audit.scorer import Audit, Bucket
    from assay.stats.calibration import CalibrationReport
    from assay.stats.compare import Comparison
    from assay.stats.decisions import CertifiedThreshold
    from assay.stats.recalibration import Recalibration
    from assay.stats.segments import SegmentRates

COLOURS = {"calibrated": "green", "miscalibrated": "red"}


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def bucket_table(title: str, rows: list[Bucket]) -> Table:
    """Return a table of the non-empty buckets: promised vs observed rate, interval and gap."""
    table = Table(title=title)
    for column in ("bucket", "leads", "promised", "observed", "interval", "gap"):
        table.add_column(column, justify="right")
    for row in rows:
        if row.n == 0:
            continue
        bucket = f"{_pct(row.lower)}–{_pct(row.upper)}"
        if row.thin:
            table.add_row(bucket, f"{row.n:,}", _pct(row.mean_score), "[dim]not yet[/]", "", "")
            continue
        gap = "—" if row.gap is None else f"{100 * row.gap:+.1f} pts"
        table.add_row(
            bucket, f"{row.n:,}", _pct(row.mean_score), _pct(row.observed_rate),
            f"{_pct(row.rate_lower)}–{_pct(row.rate_upper)}", gap,
        )  # fmt: skip
    return table


def print_verdict(console: Console, title: str, report: CalibrationReport) -> None:
    """Print the verdict with its reason and tolerance, then the ECE.

    The ECE (posterior median headline, plug-in labelled) beside its interval and the noise floor.
    ``title`` is plain text (it holds stored names), never markup.
    """
    colour = COLOURS.get(report.verdict, "yellow")
    console.rule(terminal_text(title, style="rule.text"))
    console.print(
        Text.assemble(
            (report.verdict.upper(), f"bold {colour}"), " — ", terminal_text(report.reason)
        )
    )
    console.print(f"[dim]{report.tolerance_words}[/]")
    posterior, floor = report.posterior, report.noise_floor
    headline = (
        f"ECE {100 * posterior.median:.1f} pts ({report.credibility:.0%} credible interval "
        f"{100 * posterior.lower:.1f}–{100 * posterior.upper:.1f} pts; plug-in "
        f"{100 * report.ece:.1f})"
        if posterior is not None
        else f"ECE plug-in {100 * report.ece:.1f} pts (no interval yet)"
    )
    console.print(
        f"{headline}; a perfectly calibrated score would show {100 * floor.median:.1f} pts "
        f"(90% band {100 * floor.lower:.1f}–{100 * floor.upper:.1f})"
    )


def print_audit(console: Console, audit: Audit) -> None:
    """Print one audit: its verdict, counts and AUC, its notes, then the deciles table."""
    print_verdict(console, f"scorer {audit.scorer}", audit.calibration)
    counts = audit.counts
    console.print(
        f"{counts.resolved:,} resolved ({counts.positives:,} converted), {counts.pending:,} "
        f"pending, {counts.abstained:,} abstentions; AUC "
        f"{'—' if audit.scores['auc'] is None else format(audit.scores['auc'], '.3f')}"
    )
    for note in audit.notes:
        console.print(Text.assemble(("note:", "yellow"), " ", terminal_text(note)))
    console.print(bucket_table("When it says X, how many convert? (deciles)", audit.deciles))


def print_threshold(console: Console, scorer: str, result: CertifiedThreshold) -> None:
    """Print the certified threshold's verdict and rule, then its fixed-sequence test table."""
    colour = {"certified": "green", "cannot reach": "red"}.get(result.verdict, "yellow")
    title = f"scorer {scorer}: target precision {result.target_precision:.0%}"
    console.rule(terminal_text(title, style="rule.text"))
    console.print(
        Text.assemble(
            (result.verdict.upper(), f"bold {colour}"), " — ", terminal_text(result.reason)
        )
    )
    console.print(terminal_text(f"Rule: {result.rule}."))
    table = Table(title="Fixed-sequence test, from the top down")
    for column in (
        "score ≥",
        "leads",
        "converted",
        "precision",
        "p-value",
        "lower bound",
        "certified",
    ):
        table.add_column(column, justify="right")
    for row in [r for r in result.rows if r.pvalue is not None][:15]:
        table.add_row(
            f"{row.threshold:.4g}", f"{row.n:,}", f"{row.conversions:,}", _pct(row.precision),
            f"{row.pvalue:.3g}", _pct(row.lower_bound), "yes" if row.certified else "no",
        )  # fmt: skip
    console.print(table)


def print_segments(console: Console, scorer: str, by: str, rates: SegmentRates) -> None:
    """Print the segment rates by ``by``: reference band, then raw and shrunken rates, verdicts."""
    console.rule(terminal_text(f"scorer {scorer}: conversion by {by}", style="rule.text"))
    strength = (
        "" if rates.concentration is None else f", prior strength M = {rates.concentration:.0f}"
    )
    lo, hi = rates.band
    console.print(
        f"verdicts compare with the reference {rates.reference:.1%}, the overall conversion rate "
        f"of all leads (in line: {lo:.1%}–{hi:.1%}); rates shrink toward the prior mean "
        f"{rates.mu:.1%}, the typical segment's rate ({rates.method}{strength})"
    )
    for note in ([rates.rule] if rates.rule else []) + rates.notes:
        console.print(terminal_text(note, style="dim"))
    table = Table()
    for column in ("segment", "leads", "raw", "shrunken", "interval", "shrinkage", "verdict"):
        table.add_column(column, justify="left" if column in ("segment", "verdict") else "right")
    for row in rates.rows:
        table.add_row(
            terminal_text(row.segment), f"{row.n:,}", _pct(row.raw_rate),
            _pct(row.shrunken_rate), f"{_pct(row.lower)}–{_pct(row.upper)}",
            "—" if row.shrinkage is None else f"{row.shrinkage:.3f}", row.verdict,
        )  # fmt: skip
    console.print(table)


def print_comparison(console: Console, comparison: Comparison) -> None:
    """Print the leaderboard on the common leads (by ECE) and each pair's verdict."""
    table = Table(title=f"Leaderboard on {comparison.n_common:,} leads every scorer scored")
    for column in ("scorer", "ECE", "interval", "verdict", "Brier", "AUC", "slope", "abstains"):
        table.add_column(
            column,
            justify="left" if column in ("scorer", "verdict") else "right",
            min_width=8 if column == "verdict" else None,
        )
    for s in sorted(comparison.common, key=lambda s: s.ece):
        interval = f"{_pct(s.ece_lower)}–{_pct(s.ece_upper)}" if s.ece_lower is not None else "—"
        table.add_row(
            terminal_text(s.scorer), f"{100 * s.ece:.1f} pts", interval, s.verdict,
            f"{s.brier:.4f}",
            "—" if s.auc is None else f"{s.auc:.3f}", "—" if s.slope is None else f"{s.slope:.2f}",
            _pct(s.abstention_rate),
        )  # fmt: skip
    console.print(table)
    for pair in comparison.pairs:
        console.print(
            terminal_text(
                f"{pair.a} vs {pair.b}: P({pair.a} closer to calibrated) = "
                f"{pair.prob_a_lower_ece:.3f}; "
                f"Brier difference {pair.brier_difference:+.4f} "
                f"({pair.brier_lower:+.4f} to {pair.brier_upper:+.4f}) → {pair.verdict}"
            )
        )


def print_recalibration(console: Console, scorer: str, result: Recalibration) -> None:
    """Print the out-of-fold comparison of the recalibration methods and the chosen one."""
    table = Table(
        title=terminal_text(
            f"Recalibrating {scorer}: out-of-fold comparison (chosen: {result.method})"
        )
    )
    for column in ("method", "log loss", "Brier", "ECE", "interval"):
        table.add_column(column, justify="right")
    for row in result.table:
        interval = "—" if row.ece_lower is None else f"{_pct(row.ece_lower)}–{_pct(row.ece_upper)}"
        table.add_row(
            row.method, f"{row.log_loss:.4f}", f"{row.brier:.4f}", _pct(row.ece), interval
        )
    console.print(table)


def evidence_bar(log_e: float, log_threshold: float, width: int = 30) -> str:
    """Draw a text meter: the share of the way from E = 1 to the alarm line, on the log scale."""
    filled = round(width * min(max(log_e / log_threshold, 0.0), 1.0))
    return "█" * filled + "░" * (width - filled)


def print_monitor(console: Console, monitor: Monitor, *, consumed: int | None = None) -> None:
    """Print the monitor's verdict, its evidence meter and its leads.

    ``consumed``: how many the last update fed it; None in a report, which replays the monitor.
    """
    threshold = 1 / monitor.config.alpha
    colour = {"drifted": "red", "miscalibrated": "red", "not yet": "yellow"}.get(
        monitor.verdict, "green"
    )
    console.print(
        Text.assemble(
            terminal_text(monitor.scorer, style="bold"),
            ": ",
            (monitor.verdict, colour),
            " — ",
            terminal_text(monitor.reason),
        )
    )
    console.print(
        f"  evidence E = {format_e(monitor.log_e_value)}  "
        f"{evidence_bar(monitor.log_e_value, float(np.log(threshold)))}  alarm at {threshold:.0f}"
    )
    new = "" if consumed is None else f" ({consumed:,} new)"
    console.print(
        f"  {monitor.matured:,} matured leads{new}, "
        f"{monitor.late_flips:,} late flips (recorded after maturity, not counted)"
    )


def print_report(console: Console, report: Report) -> None:
    """Each scorer's audit and its monitors, then the comparison when the report has one."""
    for audit in report.audits:
        print_audit(console, audit)
        for summary in report.monitors_of(audit.scorer):
            print_monitor(console, summary.monitor)
    if report.comparison is not None:
        print_comparison(console, report.comparison.comparison)
    for note in report.notes:
        console.print(Text.assemble(("note:", "yellow"), " ", terminal_text(note)))
