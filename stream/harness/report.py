"""What a replay measured, and the files that show it: report.json, report.md and PNG plots.

The report is a plain pydantic model so the JSON is the single source every other view
(markdown, plots, the console table, docs/benchmarks.md) is rendered from. Latencies are
summarised (percentiles + a log-binned histogram) rather than stored raw, so a report of a
million clicks stays small.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: workers, CI and containers have no display

import matplotlib.pyplot as plt
import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.table import Table

from streamrec.models.evaluate import paired_table
from streamrec.state.paired import PairedDifference

HEADLINE_METRICS = ("HR@10", "HR@20", "MRR@20")
"""The prequential metrics every view shows, in this order."""

HISTOGRAM_EDGES_MS = tuple(float(x) for x in np.geomspace(0.1, 100_000.0, 61))
"""Log-spaced latency bins, 0.1 ms .. 100 s: 10 bins per decade."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LatencySummary(_Model):
    """End-to-end latency, produce -> recommendation received by the replay, in milliseconds."""

    count: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None

    @classmethod
    def of(cls, latencies_ms: Sequence[float]) -> LatencySummary:
        if len(latencies_ms) == 0:
            return cls(count=0, p50_ms=None, p95_ms=None, p99_ms=None, mean_ms=None, max_ms=None)
        a = np.asarray(latencies_ms, dtype=np.float64)
        p50, p95, p99 = np.percentile(a, [50, 95, 99])
        return cls(count=a.size, p50_ms=p50, p95_ms=p95, p99_ms=p99, mean_ms=a.mean(), max_ms=a.max())


class LatencyHistogram(_Model):
    edges_ms: list[float]
    counts: list[int]

    @classmethod
    def of(cls, latencies_ms: Sequence[float]) -> LatencyHistogram:
        edges = np.asarray(HISTOGRAM_EDGES_MS)
        clipped = np.clip(np.asarray(latencies_ms, dtype=np.float64), edges[0], edges[-1])
        counts, _ = np.histogram(clipped, bins=edges)
        return cls(edges_ms=list(HISTOGRAM_EDGES_MS), counts=counts.tolist())


class TimelineWindow(_Model):
    """One slice of the main log, in send order: how quality, latency and rate evolved."""

    clicks_sent: int = Field(description="Clicks sent up to the end of this window (x axis of the plots).")
    ts_event_end: float = Field(description="Event time of the window's last click (unix seconds).")
    judged: int
    metrics: dict[str, float]
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    throughput_eps: float | None = Field(
        description="Answers to this window's clicks per second of their arrival span.")


MISSING_IDS_LISTED = 100
"""Missing event ids a scorer report lists at most (the count is always whole)."""


class ScorerReport(_Model):
    """Everything measured for one scorer serving the replayed stream."""

    scorer: str
    first_model_version: str = Field(description="model_version stamped on the first answer received.")
    last_model_version: str = Field(description="model_version of the last answer received (online learning moves it "
                                    "on).")
    model_versions_seen: int = Field(description="Distinct model_version stamps among the answers.")
    model_versions: list[str] = Field(default_factory=list,
                                      description="Those stamps, in the order they first answered.")
    answers_trained_on_later_clicks: int = Field(
        0, description="Answers made by a model version that had trained on a later request of the same partition "
        "(a prequential leak; the hot-swap guard keeps it at 0)."
    )
    recommended: int = Field(description="Distinct clicks of the main log this scorer answered.")
    duplicates: int = Field(description="Extra recommendations for an already answered click (redelivery).")
    missing: int = Field(description="Clicks neither answered by this scorer nor dead-lettered.")
    missing_event_ids: list[str] = Field(default_factory=list, description="Their event ids (the first "
                                         "MISSING_IDS_LISTED), to look them up in the topics and the worker's log.")
    judged: int = Field(description="Answered clicks that have a next click in their session (the prequential target).")
    metrics: dict[str, float]
    latency: LatencySummary
    latency_histogram: LatencyHistogram
    throughput_eps: float | None = Field(description="Recommendations / (last received - first sent), wall clock.")
    timeline: list[TimelineWindow]


class ReplayCounts(_Model):
    sent: int
    dlq: int
    warm_sent: int
    warm_dlq: int
    undelivered: int = Field(0, description="Clicks (warm-up included) the broker did not acknowledge.")
    unexpected: int = Field(0, description="Records on the output topics that could not be decoded.")


class ReplayReport(_Model):
    """The outcome of one `streamrec replay`: counts, then one section per scorer that answered."""

    dataset: str
    fmt: str
    warm_dataset: str | None
    bootstrap_servers: str
    topic_prefix: str
    speed: float = Field(description="Event-time speed-up (0: as fast as possible).")
    rate_eps: float | None = Field(description="Fixed send rate, when the replay was rate limited.")
    started_at: str = Field(description="ISO-8601 wall clock of the first main-log click.")
    send_duration_s: float
    total_duration_s: float = Field(description="First main-log click sent -> drain finished.")
    send_rate_eps: float
    counts: ReplayCounts
    scorers: list[ScorerReport]
    paired: list[PairedDifference] = Field(
        default_factory=list, description="Every pair of scorers on HR@20 and MRR@20 (state/paired.PAIRED_METRICS).")

    def scorer(self, name: str) -> ScorerReport:
        return next(s for s in self.scorers if s.scorer == name)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _scorer_rows(report: ReplayReport) -> list[list[str]]:
    rows = []
    for s in report.scorers:
        quality = [f"{s.metrics.get(m, float('nan')):.4f}" for m in HEADLINE_METRICS]
        latency = [_fmt(s.latency.p50_ms), _fmt(s.latency.p95_ms), _fmt(s.latency.p99_ms)]
        counts = [f"{s.recommended:,}", f"{s.judged:,}", f"{s.missing:,}"]
        rows.append([s.scorer, *quality, *latency, _fmt(s.throughput_eps, 0), *counts])
    return rows


QUEUEING_RATIO = 0.9
"""Answers arriving at under this fraction of the send rate mean a queue built up (sent faster than answered)."""
QUEUEING_GROWTH = 3.0
"""Median latency of the last timeline window this many times the first (and >= 100 ms): a growing queue."""


def latency_verdict(report: ReplayReport, s: ScorerReport) -> str:
    """Say plainly whether `s`'s latency is service latency or time spent queueing behind earlier clicks."""
    paced = report.rate_eps is not None or report.speed > 0
    if not paced:
        return (f"{s.scorer}: QUEUEING: clicks were sent as fast as possible ({report.send_rate_eps:,.0f}/s), so the "
                "latency above is mostly time waiting behind earlier clicks, not service latency; "
                "replay with --rate (clicks/s) or --speed to measure service latency")
    reasons = []
    if s.throughput_eps is not None and s.throughput_eps < QUEUEING_RATIO * report.send_rate_eps:
        reasons.append(f"answered {s.throughput_eps:,.0f}/s < sent {report.send_rate_eps:,.0f}/s")
    windows = [w.latency_p50_ms for w in s.timeline if w.latency_p50_ms is not None]
    if len(windows) >= 2 and windows[-1] >= max(100.0, QUEUEING_GROWTH * windows[0]):
        reasons.append(f"median latency grew {windows[0]:,.0f} -> {windows[-1]:,.0f} ms over the run")
    if reasons:
        return (f"{s.scorer}: QUEUEING: {'; '.join(reasons)}: the pipeline could not keep up, so the latency above "
                "is mostly queueing, not service latency; replay at a lower --rate")
    return f"{s.scorer}: service latency: answers kept up with the send rate ({report.send_rate_eps:,.0f}/s)"


_COLUMNS = [
    "scorer", *HEADLINE_METRICS, "p50 ms", "p95 ms", "p99 ms", "recs/s", "answered", "judged", "missing",
]


def to_markdown(report: ReplayReport) -> str:
    """report.md: the headline table first, then the run's facts."""
    c = report.counts
    lines = [
        f"# Replay of `{report.dataset}` ({report.fmt})",
        "",
        f"Prequential evaluation: the list emitted after click *t* of a session is judged against click *t+1*. "
        f"Latency is produce -> recommendation received. Warm-up log: `{report.warm_dataset or 'none'}` "
        f"({c.warm_sent:,} clicks, not judged).",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "---|" * len(_COLUMNS),
        *("| " + " | ".join(row) + " |" for row in _scorer_rows(report)),
        "",
        f"- clicks sent: {c.sent:,} in {report.send_duration_s:.1f} s ({report.send_rate_eps:,.0f}/s); "
        f"dead-lettered: {c.dlq:,}; not delivered to the broker: {c.undelivered:,}; "
        f"undecodable output records: {c.unexpected:,}",
        f"- started {report.started_at}; drained after {report.total_duration_s:.1f} s; "
        f"speed {report.speed:g}; rate limit {_fmt(report.rate_eps, 0)} events/s",
        f"- broker `{report.bootstrap_servers}`, topic prefix `{report.topic_prefix}`",
        *(f"- {s.scorer}: model version `{s.first_model_version}` to `{s.last_model_version}` "
          f"({s.model_versions_seen:,} distinct; answers by a version trained on a later click: "
          f"{s.answers_trained_on_later_clicks:,})" for s in report.scorers),
        *(f"- {latency_verdict(report, s)}" for s in report.scorers),
        "",
        *paired_markdown(report.paired),
        "![metrics over time](timeline.png)",
        "",
        "![latency histogram](latency.png)",
        "",
    ]
    return "\n".join(lines)


def paired_markdown(paired: Sequence[PairedDifference]) -> list[str]:
    """The paired table of report.md (nothing when fewer than two scorers answered)."""
    if not paired:
        return []
    return [
        "Paired differences on the clicks both scorers answered (95% bootstrap interval over sessions; "
        "\"beats\" only when it excludes 0):",
        "",
        "| a - b | metric | diff | 95% interval | verdict |",
        "|---|---|---:|---:|---|",
        *(f"| {p.a} - {p.b} | {p.metric} | {p.diff:+.4f} | {p.interval_text} | {p.verdict} |"
          for p in paired),
        "",
    ]


def print_report(report: ReplayReport, console: Console | None = None) -> None:
    """The console view of report.md's table, split in two so it fits an 80-column terminal."""
    console = console or Console()
    c = report.counts
    title = f"replay of {report.dataset}: {c.sent:,} clicks sent, {c.dlq:,} dead-lettered"
    quality = ["scorer", *HEADLINE_METRICS, "answered", "judged", "missing"]
    speed = ["scorer", *(c for c in _COLUMNS if c not in quality)]
    for caption, columns in ((title, quality), ("latency (produce -> received) and throughput", speed)):
        table = Table(title=caption)
        for column in columns:
            table.add_column(column, justify="left" if column == "scorer" else "right", no_wrap=True)
        for row in _scorer_rows(report):
            table.add_row(*(row[_COLUMNS.index(column)] for column in columns))
        console.print(table)
    for s in report.scorers:
        verdict = latency_verdict(report, s)
        console.print(f"[yellow]{verdict}" if "QUEUEING" in verdict else verdict)
        if s.missing_event_ids:
            more = f" (+{s.missing - len(s.missing_event_ids)} more)" if s.missing > len(s.missing_event_ids) else ""
            console.print(f"[yellow]{s.scorer}: unanswered {', '.join(s.missing_event_ids)}{more}")
    if report.paired:
        console.print(paired_table(report.paired, unit="sessions"))


def plot_timeline(report: ReplayReport, path: Path) -> None:
    """Three stacked panels over clicks sent: HR@20/MRR@20, latency p50/p99, throughput."""
    fig, (quality, latency, rate) = plt.subplots(3, 1, figsize=(9, 9), sharex=True)
    for s in report.scorers:
        x = [w.clicks_sent for w in s.timeline]
        for metric, style in (("HR@20", "-"), ("MRR@20", "--")):
            quality.plot(x, [w.metrics.get(metric, np.nan) for w in s.timeline], style, marker=".",
                         label=f"{s.scorer} {metric}")
        p50 = [np.nan if w.latency_p50_ms is None else w.latency_p50_ms for w in s.timeline]
        p99 = [np.nan if w.latency_p99_ms is None else w.latency_p99_ms for w in s.timeline]
        latency.plot(x, p50, "-", marker=".", label=f"{s.scorer} p50")
        latency.plot(x, p99, "--", marker=".", label=f"{s.scorer} p99")
        rate.plot(x, [np.nan if w.throughput_eps is None else w.throughput_eps for w in s.timeline], marker=".",
                  label=s.scorer)
    quality.set(ylabel="prequential metric", title=f"replay of {report.dataset}: metrics over the stream")
    latency.set(ylabel="latency (ms, log)", yscale="log")
    rate.set(ylabel="answers / s to the window's clicks", xlabel="clicks sent")
    rate.set_ylim(bottom=0)
    for ax in (quality, latency, rate):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_latency_histogram(report: ReplayReport, path: Path) -> None:
    """Per-scorer latency distribution on log bins; p50/p95/p99 as vertical lines in the scorer's colour."""
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for index, s in enumerate(report.scorers):
        colour = f"C{index}"
        ax.stairs(s.latency_histogram.counts, s.latency_histogram.edges_ms, color=colour, linewidth=1.5,
                  label=f"{s.scorer} (n={s.latency.count:,})")
        for name, value, style in (("p50", s.latency.p50_ms, ":"), ("p95", s.latency.p95_ms, "--"),
                                   ("p99", s.latency.p99_ms, "-.")):
            if value is not None:
                ax.axvline(value, linestyle=style, color=colour, linewidth=1,
                           label=f"{s.scorer} {name} = {value:,.1f} ms")
    used = [e for s in report.scorers for e, n in zip(s.latency_histogram.edges_ms, s.latency_histogram.counts) if n]
    if used:
        ax.set_xlim(min(used) / 2, max(used) * 4)
    ax.set(xscale="log", xlabel="produce -> recommendation received (ms, log)", ylabel="clicks",
           title="end-to-end latency")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(report: ReplayReport, folder: Path) -> list[Path]:
    """Write report.json, report.md, timeline.png and latency.png into `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / "report.json", folder / "report.md", folder / "timeline.png", folder / "latency.png"]
    paths[0].write_text(report.model_dump_json(indent=2))
    paths[1].write_text(to_markdown(report))
    plot_timeline(report, paths[2])
    plot_latency_histogram(report, paths[3])
    return paths


def read_report(path: Path) -> ReplayReport:
    return ReplayReport.model_validate_json(path.read_text())
