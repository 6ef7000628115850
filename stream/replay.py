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

import base64
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from time import perf_counter, sleep, time

import orjson
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from streamrec.config.settings import Settings, load_settings
from streamrec.state.clicklog.types import LoggedClick
from streamrec.stream.engines.common import consumer_config
from streamrec.stream.prequential import PhaseTally
from streamrec.stream.producer import ClickProducer
from streamrec.stream.report import ReplayCounts, ReplayReport, print_report, write_report
from streamrec.stream.topics import Answer, DeadLetter, Topics, read_answer

_PUMP_INTERVAL_S = 0.002
"""Longest gap between two reads of the output topics while sending (answers are timed on arrival)."""
_MIN_POLL_S = 0.001
"""Shortest wait handed to librdkafka (it rounds down to whole milliseconds)."""


_CONSUME_BATCH = 1000
_METADATA_TIMEOUT_S = 30.0


class OutputCollector:
    """Reads `recommendations` and the DLQ from the moment it opens and routes each record to its phase.

    It assigns partitions itself (no consumer group: no join delay, no committed offsets)
    starting at the first offset written after it opened. Records of other traffic on the
    same topics are skipped by event id; undecodable ones are counted, never fatal.
    """

    def __init__(self, settings: Settings, phases: Sequence[PhaseTally]) -> None:
        self.topics = Topics(settings.kafka.topic_prefix)
        self.phases = phases
        self.undecodable = 0
        self.last_arrival = perf_counter()
        self._consumer = Consumer({
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"{settings.kafka.consumer_group}-replay-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
            # Should a start offset be refused as out of range (Tansu does so on a partition that is
            # still empty), re-read from the start rather than jump to the end past early answers:
            # records of other runs are dropped by event id anyway.
            "auto.offset.reset": "earliest",
            **consumer_config(settings),
        })

    def __enter__(self) -> OutputCollector:
        self._consumer.assign(self._start_offsets(int(time() * 1000)))
        return self

    def __exit__(self, *exc: object) -> None:
        self._consumer.close()

    def _start_offsets(self, since_ms: int) -> list[TopicPartition]:
        """First offset at/after `since_ms` per partition; where none yet, the high watermark.

        A concrete offset (not the logical END) leaves no window in which an early answer
        could be skipped. Brokers that under-report the watermark (Tansu) only make us read
        a few older records, which the event-id filter drops.
        """
        names = (self.topics.recommendations, self.topics.dlq)
        metadata = self._consumer.list_topics(timeout=_METADATA_TIMEOUT_S).topics
        wanted = [TopicPartition(t, p, since_ms) for t in names for p in (metadata[t].partitions if t in metadata else {})]
        if len(wanted) == 0:
            raise RuntimeError(f"topics {names} do not exist on the broker (start a worker first, it creates them)")
        offsets = self._consumer.offsets_for_times(wanted, timeout=_METADATA_TIMEOUT_S)
        for tp in offsets:
            if tp.offset < 0:
                tp.offset = self._consumer.get_watermark_offsets(tp, timeout=_METADATA_TIMEOUT_S)[1]
        return offsets

    def pump(self, until: float) -> None:
        """Handle every record that arrives before perf_counter() reaches `until` (0: only what is queued).

        librdkafka counts timeouts in whole milliseconds, so a wait under 1 ms would return at
        once and spin: it is slept instead (the harness shares the CPU with the pipeline it measures).
        """
        while True:
            batch = self._consumer.consume(_CONSUME_BATCH, timeout=0)
            if batch:
                self._handle(batch, perf_counter())
                continue
            remaining = until - perf_counter()
            if remaining <= 0:
                return
            if remaining < _MIN_POLL_S:
                sleep(remaining)
                return
            message = self._consumer.poll(remaining)  # returns at the first record: its arrival time is exact
            if message is not None:
                self._handle([message], perf_counter())

    def _handle(self, messages: list[Message], received_at: float) -> None:
        self.last_arrival = received_at
        for message in messages:
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    self.undecodable += 1
                continue
            try:
                if message.topic() == self.topics.dlq:
                    self._on_dead_letter(DeadLetter.model_validate_json(message.value() or b""))
                else:
                    self._on_recommendation(read_answer(message.value()), received_at)
            except ValueError:  # pydantic's ValidationError is a ValueError too
                self.undecodable += 1

    def _locate(self, event_id: str) -> tuple[PhaseTally, int] | None:
        for phase in self.phases:
            index = phase.index_of(event_id)
            if index is not None:
                return phase, index
        return None

    def _on_recommendation(self, answer: Answer, received_at: float) -> None:
        found = self._locate(answer.event_id)
        if found is not None:
            found[0].on_recommendation(found[1], answer, received_at)

    def _on_dead_letter(self, dead: DeadLetter) -> None:
        """Attribute a dead letter to its click through the event id inside the original bytes."""
        try:
            original = orjson.loads(base64.b64decode(dead.original_b64))
        except (ValueError, orjson.JSONDecodeError):
            return  # not one of ours: our clicks are always valid JSON
        event_id = original.get("event_id") if isinstance(original, dict) else None
        found = self._locate(event_id) if isinstance(event_id, str) else None
        if found is not None:
            found[0].on_dead_letter(found[1])


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


class _Replayer:
    """Sends one phase's clicks, pumping the output topics while it paces, then drains."""

    def __init__(self, settings: Settings, collector: OutputCollector, producer: ClickProducer, progress: Progress) -> None:
        self.settings = settings
        self.collector = collector
        self.producer = producer
        self.progress = progress

    def send(self, phase: PhaseTally, clicks: Sequence[LoggedClick], pacing: Pacing, label: str) -> float:
        """Produce every click of `phase` on schedule; returns the wall time the first was sent."""
        task = self.progress.add_task(f"{label}: sent", total=len(clicks), rate="")
        start = perf_counter()
        first_ts = clicks[0].ts if clicks else 0.0
        next_pump = start
        for index, click in enumerate(clicks):
            due = start + pacing.due_s(index, click.ts, first_ts)
            now = perf_counter()
            if due > now:
                self.collector.pump(until=due)
            elif now >= next_pump:  # behind schedule or flat out: still read answers as they come
                self.collector.pump(until=0.0)
                next_pump = now + _PUMP_INTERVAL_S
            event = phase.event(index, click)
            phase.mark_sent(index, perf_counter())
            self.producer.send(event)
            if index % 1000 == 999:
                elapsed = perf_counter() - start
                self.progress.update(task, completed=index + 1, rate=f"{(index + 1) / elapsed:,.0f} clicks/s")
        self.producer.flush()
        self.progress.update(task, completed=len(clicks))
        return start

    def drain(self, phase: PhaseTally, label: str, policy: DrainPolicy) -> None:
        """Read outputs until every scorer seen answered (or dead-lettered) every click, or idle."""
        task = self.progress.add_task(f"{label}: answered", total=phase.size, rate="")
        started = perf_counter()
        while not phase.complete(policy.scorers) and perf_counter() - started < policy.max_s:
            if perf_counter() - self.collector.last_arrival > policy.idle_s and perf_counter() - started > policy.idle_s:
                break
            self.collector.pump(until=perf_counter() + 0.25)
            self.progress.update(task, completed=phase.answered_by_all(), rate=", ".join(phase.scorer_names()))
        self.progress.update(task, completed=phase.answered_by_all())


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

    Clicks must already be in event-time order. Event ids are `<run id>-<phase><index>`,
    unique per run, so outputs of other traffic on the same topics are ignored.
    """
    run_id = uuid.uuid4().hex[:10]
    warm_phase = PhaseTally(f"{run_id}-w", warm)
    main_phase = PhaseTally(f"{run_id}-m", clicks)
    console = console or Console()
    with OutputCollector(settings, (warm_phase, main_phase)) as collector, ClickProducer.from_settings(settings) as producer, \
            _progress(console, progress) as bar:
        replayer = _Replayer(settings, collector, producer, bar)
        if warm:
            replayer.send(warm_phase, warm, Pacing(), "warm-up")
            replayer.drain(warm_phase, "warm-up", drain)
        started_wall = time()
        start = replayer.send(main_phase, clicks, pacing, "replay")
        send_s = perf_counter() - start
        replayer.drain(main_phase, "replay", drain)
        total_s = perf_counter() - start
    return ReplayReport(
        dataset=dataset, fmt=fmt, warm_dataset=warm_dataset,
        bootstrap_servers=settings.kafka.bootstrap_servers, topic_prefix=settings.kafka.topic_prefix,
        speed=pacing.speed, rate_eps=pacing.rate_eps,
        started_at=datetime.fromtimestamp(started_wall, tz=timezone.utc).isoformat(timespec="seconds"),
        send_duration_s=send_s, total_duration_s=total_s, send_rate_eps=len(clicks) / send_s if send_s > 0 else 0.0,
        counts=ReplayCounts(sent=len(clicks), dlq=main_phase.dlq, warm_sent=len(warm), warm_dlq=warm_phase.dlq,
                            undelivered=producer.failed, unexpected=collector.undecodable),
        scorers=main_phase.scorer_reports(),
    )


def load_clicks(dataset: Path | None, fmt: str, limit: int | None = None) -> list[LoggedClick]:
    """The log at `dataset` in event-time order (the synthetic stream when none), at most `limit` clicks."""
    if dataset is None or fmt == "synthetic":
        from streamrec.state.clicklog.synthetic import SyntheticSpec, generate

        clicks = list(generate(SyntheticSpec()))
    else:
        from streamrec.state.clicklog.formats import read_log

        clicks = read_log(dataset, fmt)
    ordered = sorted(clicks, key=lambda c: c.ts)  # stable: equal times keep the log's order
    return ordered[:limit] if limit is not None else ordered


def replay_command(
    dataset: Path | None, fmt: str, warm: Path | None, speed: float, report_dir: Path, limit: int | None
) -> ReplayReport:
    """`streamrec replay`: replay through the worker(s) the settings point at; print and write the report."""
    settings = load_settings()
    console = Console()
    clicks = load_clicks(dataset, fmt, limit)
    warm_clicks = load_clicks(warm, fmt) if warm is not None else []
    console.print(f"replaying {len(clicks):,} clicks ({len(warm_clicks):,} warm-up) via {settings.kafka.bootstrap_servers}")
    report = replay(
        settings, clicks, warm=warm_clicks, pacing=Pacing(speed=speed), console=console,
        dataset=str(dataset or "synthetic"), fmt=fmt, warm_dataset=str(warm) if warm else None,
    )
    print_report(report, console)
    if not report.scorers:
        console.print(f"[red]no recommendation came back: is `streamrec worker` running against "
                      f"{settings.kafka.bootstrap_servers} (topic prefix '{settings.kafka.topic_prefix}')?")
    paths = write_report(report, report_dir)
    console.print("wrote " + ", ".join(str(p) for p in paths))
    return report
