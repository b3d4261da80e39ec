"""The Rich terminal summary of a report: what the audit layer computed, printed."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from assay.audit.answer import reason_detail
from assay.audit.monitor import format_e
from assay.report.formatting import (
    decimal,
    decimal_range,
    p_value,
    pct,
    pct_range,
    pts,
    pts_range,
    signed_pts,
    utc_time,
)
from assay.report.glossary import GLOSSARY
from assay.report.safe_text import terminal_text

if TYPE_CHECKING:  # what is printed; importing it here would load what printing never needs
    from rich.console import Console

    from assay.audit.answer import Answer
    from assay.audit.honest import HonestScore
    from assay.audit.monitor import Monitor
    from assay.audit.report import Report
    from assay.audit.scorer import Audit, Bucket
    from assay.stats.calibration import CalibrationReport
    from assay.stats.compare import Comparison
    from assay.stats.decisions import CertifiedThreshold
    from assay.stats.recalibration import Recalibration
    from assay.stats.segments import SegmentRates

COLOURS = {"calibrated": "green", "miscalibrated": "red"}

#: A section heading's rule is this wide (a table's width), wider only for a title that needs
#: it, on a terminal or off it.
HEADING_WIDTH = 80


def heading(console: Console, title: str) -> None:
    """Print a section heading: ``title`` (plain text, never markup) in a rule."""
    text = terminal_text(title, style="rule.text")
    console.print(Rule(text), width=max(HEADING_WIDTH, text.cell_len + 6))


def verdict_line(verdict: str, colour: str, reason: str) -> Text:
    """Return "VERDICT — reason", the reason without the verdict word it repeats."""
    return Text.assemble(
        (verdict.upper(), f"bold {colour}"), " — ", terminal_text(reason_detail(verdict, reason))
    )


def _table(title: str | Text | None, columns: tuple[str, ...], left: tuple[str, ...] = ()) -> Table:
    """Return a table with these columns, right-aligned but for ``left``.

    A cell too wide for a narrow terminal folds onto the next line: it is never cut.
    """
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column in left else "right", overflow="fold")
    return table


def bucket_table(title: str, rows: list[Bucket]) -> Table:
    """Return a table of the non-empty buckets: promised vs observed rate, interval and gap."""
    table = _table(title, ("bucket", "leads", "promised", "observed", "interval", "gap"))
    for row in rows:
        if row.n == 0:
            continue
        bucket = pct_range(row.lower, row.upper)
        if row.thin:
            table.add_row(bucket, f"{row.n:,}", pct(row.mean_score), "[dim]not yet[/]", "", "")
            continue
        table.add_row(
            bucket, f"{row.n:,}", pct(row.mean_score), pct(row.observed_rate),
            pct_range(row.rate_lower, row.rate_upper), signed_pts(row.gap),
        )  # fmt: skip
    return table


def print_calibration(console: Console, report: CalibrationReport) -> None:
    """Print the verdict with its reason and tolerance, then the ECE.

    The ECE (posterior median headline, plug-in labelled) beside its interval and the noise floor.
    """
    console.print(
        verdict_line(report.verdict, COLOURS.get(report.verdict, "yellow"), report.reason)
    )
    console.print(f"[dim]{report.tolerance_words}[/]")
    posterior, floor = report.posterior, report.noise_floor
    headline = (
        f"ECE {pts(posterior.median)} ({report.credibility:.0%} credible interval "
        f"{pts_range(posterior.lower, posterior.upper)}; plug-in {pts(report.ece)})"
        if posterior is not None
        else f"ECE plug-in {pts(report.ece)} (no interval yet)"
    )
    console.print(
        f"{headline}; a perfectly calibrated score would show {pts(floor.median)} "
        f"(90% band {pts_range(floor.lower, floor.upper)})"
    )


def print_verdict(console: Console, title: str, report: CalibrationReport) -> None:
    """Print a heading ``title`` (plain text, never markup), then :func:`print_calibration`."""
    heading(console, title)
    print_calibration(console, report)


def print_audit(console: Console, audit: Audit) -> None:
    """Print one scorer's section: heading, verdict, counts and AUC, notes, the deciles table."""
    heading(console, f"scorer {audit.scorer}")
    print_calibration(console, audit.calibration)
    counts = audit.counts
    console.print(
        f"{counts.resolved:,} resolved ({counts.positives:,} converted), {counts.pending:,} "
        f"pending, {counts.abstained:,} abstentions; AUC "
        f"{'—' if audit.scores['auc'] is None else format(audit.scores['auc'], '.3f')}"
    )
    for note in audit.notes:
        console.print(Text.assemble(("note:", "yellow"), " ", terminal_text(note)))
    print_replay_record(console, audit)
    console.print(bucket_table("When it says X, how many convert? (deciles)", audit.deciles))


def print_replay_record(console: Console, audit: Audit) -> None:
    """Print the replay summary of the reproducibility record: share replayable, each re-run."""
    from assay.audit.report import ReplayRecord

    record = audit.reproducibility.get("replay")
    if record is None:
        return
    for i, sentence in enumerate(ReplayRecord(record).sentences()):
        label = "inputs:" if i == 0 else "replay:"
        style = "red" if "DIFFERENT" in sentence else "cyan"
        console.print(Text.assemble((label, style), " ", terminal_text(sentence)))


def print_threshold(console: Console, scorer: str, result: CertifiedThreshold) -> None:
    """Print the certified threshold's verdict and rule, then its fixed-sequence test table."""
    colour = {"certified": "green", "cannot reach": "red"}.get(result.verdict, "yellow")
    heading(console, f"scorer {scorer}: target precision {result.target_precision:.0%}")
    console.print(verdict_line(result.verdict, colour, result.reason))
    console.print(terminal_text(f"Rule: {result.rule}."))
    table = _table(
        "Fixed-sequence test, from the top down",
        ("score ≥", "leads", "converted", "precision", "p-value", "lower bound", "certified"),
    )
    for row in [r for r in result.rows if r.pvalue is not None][:15]:
        table.add_row(
            f"{row.threshold:.4g}", f"{row.n:,}", f"{row.conversions:,}", pct(row.precision),
            p_value(row.pvalue), pct(row.lower_bound), "yes" if row.certified else "no",
        )  # fmt: skip
    console.print(table)


def print_segments(console: Console, scorer: str, by: str, rates: SegmentRates) -> None:
    """Print the segment rates by ``by``: reference band, raw and shrunken rates, verdicts.

    Below the table, the reason of each segment that is not "in line".
    """
    heading(console, f"scorer {scorer}: conversion by {by}")
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
    table = _table(
        None,
        ("segment", "leads", "raw", "shrunken", "interval", "shrinkage", "verdict"),
        left=("segment", "verdict"),
    )
    for row in rates.rows:
        table.add_row(
            terminal_text(row.segment), f"{row.n:,}", pct(row.raw_rate),
            pct(row.shrunken_rate), pct_range(row.lower, row.upper),
            "—" if row.shrinkage is None else f"{row.shrinkage:.3f}", row.verdict,
        )  # fmt: skip
    console.print(table)
    for row in rates.rows:
        if row.verdict != "in line":  # each reason starts with its verdict, said once
            console.print(terminal_text(f"{row.segment}: {row.reason}"))


def print_comparison(console: Console, comparison: Comparison) -> None:
    """Print the leaderboard on the common leads (by ECE) and each pair's verdict."""
    table = _table(
        f"Leaderboard on {comparison.n_common:,} leads every scorer scored",
        ("scorer", "ECE", "interval", "verdict", "Brier", "AUC", "slope", "abstains"),
        left=("scorer", "verdict"),
    )
    for s in sorted(comparison.common, key=lambda s: s.ece):
        table.add_row(
            terminal_text(s.scorer), pts(s.ece), pts_range(s.ece_lower, s.ece_upper),
            s.verdict,
            f"{s.brier:.4f}",
            "—" if s.auc is None else f"{s.auc:.3f}", "—" if s.slope is None else f"{s.slope:.2f}",
            pct(s.abstention_rate),
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


def print_honest(console: Console, honest: HonestScore) -> None:
    """Print one honest score beside its vendor: the summary, the two side by side, served.

    The summary sentences first; then, on the leads both judged, each score's calibration
    (verdict, error with interval, observed/expected, promised vs observed) and ranking (AUC
    with interval); then per map version the scores served and the "not yet" share.
    """
    heading(console, f"honest score {honest.scorer} beside the raw score of {honest.vendor}")
    for sentence in honest.sentences():
        console.print(terminal_text(f"{sentence}."))
    console.print(terminal_text(GLOSSARY["honest_score"].gloss, style="dim"))
    if honest.raw is not None and honest.honest is not None:
        table = _table(
            f"On {honest.n_judged:,} leads both judged ({pct(honest.observed_rate)} converted)",
            ("score", "verdict", "ECE", "interval", "obs/exp", "promised", "AUC", "interval"),
            left=("score", "verdict"),
        )
        for label, side in (("raw", honest.raw), ("honest", honest.honest)):
            s = side.summary
            table.add_row(
                terminal_text(f"{label} ({s.scorer})"),
                Text(s.verdict, style=COLOURS.get(s.verdict, "yellow")),
                pts(s.ece), pts_range(s.ece_lower, s.ece_upper),
                decimal(side.observed_expected, 2), pct(side.expected_rate),
                decimal(s.auc, 3), decimal_range(s.auc_lower, s.auc_upper, 3),
            )  # fmt: skip
        console.print(table)
    if honest.in_sample:
        console.print(
            terminal_text(
                f"{honest.in_sample:,} in-sample leads left out of {honest.scorer}'s judging "
                "(its map learned from their outcomes)",
                style="dim",
            )
        )
    served = _table(None, ("map version", "built", "served", "not yet / out of range", "share"))
    for v in honest.served:
        served.add_row(
            terminal_text(v.map_version or "—"),
            "—" if v.built_as_of is None else utc_time(v.built_as_of),
            f"{v.served:,}", f"{v.abstained:,}", pct(v.abstained / v.served),
        )  # fmt: skip
    console.print(served)


def print_recalibration(console: Console, scorer: str, result: Recalibration) -> None:
    """Print the out-of-fold comparison of the recalibration methods and the chosen one."""
    table = _table(
        terminal_text(f"Recalibrating {scorer}: out-of-fold comparison (chosen: {result.method})"),
        ("method", "log loss", "Brier", "ECE", "interval"),
    )
    for row in result.table:
        table.add_row(
            row.method, f"{row.log_loss:.4f}", f"{row.brier:.4f}", pts(row.ece),
            pts_range(row.ece_lower, row.ece_upper),
        )  # fmt: skip
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
            terminal_text(reason_detail(monitor.verdict, monitor.reason)),
        )
    )
    console.print(
        f"  evidence E = {format_e(monitor.log_e_value)}  "
        f"{evidence_bar(monitor.log_e_value, math.log(threshold))}  alarm at {threshold:.0f}"
    )
    new = "" if consumed is None else f" ({consumed:,} new)"
    console.print(
        f"  {monitor.matured:,} matured leads{new}, "
        f"{monitor.late_flips:,} late flips (recorded after maturity, not counted)"
    )


def print_answer(console: Console, answer: Answer) -> None:
    """Print one scorer's answer: verdict and sentence, ranking, the next step and its command."""
    console.print(
        Text.assemble(
            terminal_text(answer.scorer, style="bold"),
            ": ",
            (answer.verdict.upper(), COLOURS.get(answer.verdict, "yellow")),
            " — ",
            terminal_text(answer.sentence),
        )
    )
    console.print(Text.assemble("  ranking: ", terminal_text(answer.ranking)))
    for extreme in answer.extremes:
        console.print(Text.assemble("  ", ("contradicted certainty:", "yellow"), " ", extreme))
    console.print(Text.assemble("  next: ", answer.action))
    console.print(Text.assemble("    ", terminal_text(answer.command, style="bold")))


def print_report(console: Console, report: Report) -> None:
    """Print each scorer's audit and monitors, the comparison, the honest scores, the answers.

    The answers come last, where a terminal leaves the reader: each scorer's verdict in a
    sentence and the next step with its command.
    """
    for audit in report.audits:
        print_audit(console, audit)
        for summary in report.monitors_of(audit.scorer):
            print_monitor(console, summary.monitor)
    if report.comparison is not None:
        print_comparison(console, report.comparison.comparison)
    for honest in report.honest:
        print_honest(console, honest)
    for note in report.notes:
        console.print(Text.assemble(("note:", "yellow"), " ", terminal_text(note)))
    if report.answers:
        heading(console, "the answer")
        for answer in report.answers:
            print_answer(console, answer)
