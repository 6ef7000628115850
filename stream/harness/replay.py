"""`streamrec replay`: stream a click log through a running pipeline and judge what comes back.

Prequential protocol: every click is sent to `clicks` in event-time order; the list the
pipeline emits after click t of a session is judged against click t+1 of that session
(HR@10, HR@20, MRR@20). Each recommendation carries the name of the scorer that made it,
so when several scoring stages serve the same stream (a primary plus shadow scorers in
their own consumer groups, see docs/deployment.md) one replay judges all of them on the
very same clicks, state and timing: that is how kNN and popularity are compared honestly.

An optional warm-up log is replayed first, unjudged, and drained completely before the
main log starts, so the report covers only the main log.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter, time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streamrec.config.settings import Settings, load_settings
from streamrec.state.clicklog.types import LoggedClick
from streamrec.stream.admin import ensure_topics
from streamrec.stream.clients.producer import ClickProducer
from streamrec.stream.harness.collector import OutputCollector
from streamrec.stream.harness.prequential import PhaseTally
from streamrec.stream.harness.report import ReplayCounts, ReplayReport, print_report, write_report

log = logging.getLogger(__name__)

_PUMP_INTERVAL_S = 0.002
"""Longest gap between two reads of the output topics while sending (answers are timed on arrival)."""
_EARLY_S = 0.001
"""A click due within this is sent at once: a sub-millisecond sleep before each of thousands of clicks a second
costs the harness CPU taken from the pipeline it measures (bench/broker_growth.py's per-process shares:
docs/benchmarks.md, "End-to-end throughput and latency"). Latency is timed from the actual send, so sending
slightly early changes nothing measured."""


@dataclass(frozen=True)
class Pacing:
    """When each click is due, in wall seconds after the first: event time / speed, or a fixed rate."""

    speed: float = 0.0
    """Event-time speed-up (2.0: twice as fast as the log happened); 0: no event-time pacing."""
    rate_eps: float | None = None
    """Fixed send rate in clicks per second (benchmarks); overrides `speed`."""

    def due_s(self, index: int, ts: float, first_ts: float) -> float:
        if self.rate_eps:
            return index / self.rate_eps
        if self.speed > 0:
            return (ts - first_ts) / self.speed
        return 0.0


@dataclass(frozen=True)
class DrainPolicy:
    """How long to keep reading after the last click was sent."""

    idle_s: float = 15.0
    """Give up when nothing new arrived for this long (the rest is reported missing)."""
    max_s: float = 600.0
    scorers: int = 1
    """Scorers expected to answer (the primary plus shadows): draining goes on until that many were seen,
    so a slower shadow is not left out because the primary finished first."""


def _progress(console: Console, enabled: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(), console=console, disable=not enabled, transient=False,
    )


class Replayer:
    """A replay session: one producer and one output reader, connected once, for any number of replays.

    Like a web app's long-lived clients, they stay connected between replays, so a replay that
    follows a warm-up or another replay does not time connection set-up as pipeline latency
    (the first second of a run on fresh clients did). Each `judge` call is one judged replay
    with its own report.

    >>> from streamrec.config import load_settings
    >>> from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
    >>> clicks = sorted(generate(SyntheticSpec(users=20, sessions=80, items=60, days=2.0)), key=lambda c: c.ts)
    >>> with Replayer(load_settings(), progress=False) as replayer:  # a worker answers the clicks
    ...     replayer.warm_up(clicks[:200])
    ...     report = replayer.judge(clicks[200:400], pacing=Pacing(rate_eps=2500))
    >>> report.counts.sent, [(s.scorer, s.recommended, s.missing) for s in report.scorers]
    (200, [('sknn', 200, 0)])
    """

    def __init__(self, settings: Settings, *, drain: DrainPolicy = DrainPolicy(), progress: bool = True,
                 console: Console | None = None) -> None:
        self.settings = settings
        self.drain_policy = drain
        self.run_id = uuid.uuid4().hex[:10]
        self.console = console or Console()
        self._stack = ExitStack()
        self._bar = _progress(self.console, progress)
        self._phases = 0
        self.latest: PhaseTally | None = None
        """The latest judged phase, per click: send time and each scorer's latency (bench/latency_ab.py reads it)."""
        self._warm_sent = self._warm_dlq = 0
        self._warm_dataset: str | None = None
        self.collector: OutputCollector
        self.producer: ClickProducer

    def __enter__(self) -> Replayer:
        ensure_topics(self.settings)  # before the first produce, or the broker may auto-create clicks without config
        with ExitStack() as opening:  # what opened is closed again if a later client fails to open
            self.collector = opening.enter_context(OutputCollector(self.settings))
            self.producer = opening.enter_context(ClickProducer.from_settings(self.settings))
            opening.enter_context(self._bar)
            self._stack = opening.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _phase(self, kind: str, clicks: Sequence[LoggedClick]) -> PhaseTally:
        """A phase with event ids `<run id>-<kind><phase number>-<index>`, unique per run and phase."""
        self._phases += 1
        phase = PhaseTally(f"{self.run_id}-{kind}{self._phases}-", clicks)
        self.collector.follow(phase)
        return phase

    def warm_up(self, clicks: Sequence[LoggedClick], dataset: str | None = None) -> None:
        """Replay `clicks` flat out, unjudged, and drain them: state, statistics and clients are warm after."""
        if not clicks:
            return
        phase = self._phase("w", clicks)
        self._send(phase, clicks, Pacing(), "warm-up")
        self._drain(phase, "warm-up")
        self._warm_sent, self._warm_dlq, self._warm_dataset = len(clicks), phase.dlq, dataset

    def judge(self, clicks: Sequence[LoggedClick], *, pacing: Pacing = Pacing(), dataset: str = "synthetic",
              fmt: str = "synthetic", label: str = "replay") -> ReplayReport:
        """Replay `clicks` (in event-time order) at `pacing`, drain, and judge every answer prequentially."""
        phase = self.latest = self._phase("m", clicks)
        failed_before, undecodable_before = self.producer.failed, self.collector.undecodable
        started_wall = time()
        start = self._send(phase, clicks, pacing, label)
        send_s = perf_counter() - start
        self._drain(phase, label)
        total_s = perf_counter() - start
        return ReplayReport(
            dataset=dataset, fmt=fmt, warm_dataset=self._warm_dataset,
            bootstrap_servers=self.settings.kafka.bootstrap_servers, topic_prefix=self.settings.kafka.topic_prefix,
            speed=pacing.speed, rate_eps=pacing.rate_eps,
            started_at=datetime.fromtimestamp(started_wall, tz=UTC).isoformat(timespec="seconds"),
            send_duration_s=send_s, total_duration_s=total_s,
            send_rate_eps=len(clicks) / send_s if send_s > 0 else 0.0,
            counts=ReplayCounts(sent=len(clicks), dlq=phase.dlq, warm_sent=self._warm_sent, warm_dlq=self._warm_dlq,
                                undelivered=self.producer.failed - failed_before,
                                unexpected=self.collector.undecodable - undecodable_before),
            scorers=phase.scorer_reports(),
            paired=phase.paired(),
        )

    def _send(self, phase: PhaseTally, clicks: Sequence[LoggedClick], pacing: Pacing, label: str) -> float:
        """Produce every click of `phase` on schedule, reading answers while it paces; returns the start time."""
        task = self._bar.add_task(f"{label}: sent", total=len(clicks), rate="")
        start = perf_counter()
        first_ts = clicks[0].ts if clicks else 0.0
        next_pump = start
        for index, click in enumerate(clicks):
            due = start + pacing.due_s(index, click.ts, first_ts)
            now = perf_counter()
            if due - now > _EARLY_S:
                self.collector.pump(until=due)
            elif now >= next_pump:  # behind schedule or flat out: still read answers as they come
                self.collector.pump(until=0.0)
                next_pump = now + _PUMP_INTERVAL_S
            event = phase.event(index, click)
            phase.mark_sent(index, perf_counter())
            self.producer.send(event)
            if index % 1000 == 999:
                elapsed = perf_counter() - start
                self._bar.update(task, completed=index + 1, rate=f"{(index + 1) / elapsed:,.0f} clicks/s")
        self.producer.flush()
        self._bar.update(task, completed=len(clicks))
        return start

    def _drain(self, phase: PhaseTally, label: str) -> None:
        """Read outputs until every scorer seen answered (or dead-lettered) every click, or idle."""
        policy = self.drain_policy
        task = self._bar.add_task(f"{label}: answered", total=phase.size, rate="")
        started = perf_counter()
        while not phase.complete(policy.scorers) and perf_counter() - started < policy.max_s:
            if (perf_counter() - self.collector.last_arrival > policy.idle_s
                    and perf_counter() - started > policy.idle_s):
                break
            self.collector.pump(until=perf_counter() + 0.25)
            self._bar.update(task, completed=phase.answered_by_all(), rate=", ".join(phase.scorer_names()))
        self._bar.update(task, completed=phase.answered_by_all())


def replay(
    settings: Settings,
    clicks: Sequence[LoggedClick],
    *,
    warm: Sequence[LoggedClick] = (),
    pacing: Pacing = Pacing(),
    drain: DrainPolicy = DrainPolicy(),
    dataset: str = "synthetic",
    fmt: str = "synthetic",
    warm_dataset: str | None = None,
    progress: bool = True,
    console: Console | None = None,
) -> ReplayReport:
    """Replay `warm` (unjudged, drained) then `clicks` through the pipeline at `settings`; judge the answers.

    Clicks must already be in event-time order. Event ids are unique per run and phase,
    so outputs of other traffic on the same topics are ignored.
    """
    with Replayer(settings, drain=drain, progress=progress, console=console) as replayer:
        replayer.warm_up(warm, warm_dataset)
        return replayer.judge(clicks, pacing=pacing, dataset=dataset, fmt=fmt)


def load_clicks(dataset: Path | None, fmt: str, limit: int | None = None) -> list[LoggedClick]:
    """The log at `dataset` in event-time order (the synthetic stream when none), at most `limit` clicks."""
    if dataset is None or fmt == "synthetic":
        from streamrec.state.clicklog.synthetic import SyntheticSpec, generate

        clicks = list(generate(SyntheticSpec()))
    else:
        from streamrec.state.clicklog.sniff import read_checked

        clicks, read = read_checked(dataset, fmt)  # refuses a file in another format instead of misreading it
        if read.bad_rows:
            log.warning(read.summary())
    ordered = sorted(clicks, key=lambda c: c.ts)  # stable: equal times keep the log's order
    return ordered[:limit] if limit is not None else ordered


def replay_command(
    dataset: Path | None, fmt: str, warm: Path | None, speed: float, report_dir: Path, limit: int | None,
    rate_eps: float | None = None,
) -> ReplayReport:
    """`streamrec replay`: replay through the worker(s) the settings point at; print and write the report."""
    from streamrec.stream.observability.health import require_broker

    settings = load_settings()
    require_broker(settings)
    console = Console()
    clicks = load_clicks(dataset, fmt, limit)
    warm_clicks = load_clicks(warm, fmt) if warm is not None else []
    console.print(f"replaying {len(clicks):,} clicks ({len(warm_clicks):,} warm-up) via "
                  f"{settings.kafka.bootstrap_servers}")
    report = replay(
        settings, clicks, warm=warm_clicks, pacing=Pacing(speed=speed, rate_eps=rate_eps), console=console,
        dataset=str(dataset or "synthetic"), fmt=fmt, warm_dataset=str(warm) if warm else None,
    )
    print_report(report, console)
    if not report.scorers:
        console.print(f"[red]no recommendation came back: is `streamrec worker` running against "
                      f"{settings.kafka.bootstrap_servers} (topic prefix '{settings.kafka.topic_prefix}')?")
    paths = write_report(report, report_dir)
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return report
