"""The stateful stage on faust-streaming (the alternative engine).

A faust Table (RocksDB through rocksdict, under `state.dir`, backed by the changelog
topic `{group}-{clicks topic}-visitors-changelog`) holds the visitor states; one agent folds clicks
into it with `StatefulStep`. faust is an asyncio application normally started by its
CLI; here a `faust.Worker` runs it on a private event loop so it can live in any thread
and be stopped through the caller's `threading.Event`.

Topics use raw codecs (the step already speaks bytes); the Table stores the state dicts as JSON.

Input offsets are committed by this module (`_Checkpoints`), not by faust: faust's own
bookkeeping treats any jump in the offsets it reads as a "gap" that is safe to commit, and
around a restart (changelog recovery, then the seek to the committed offsets) its fetcher
can skip records it never hands to the agent, so it committed clicks nobody processed;
its pre-commit flush also gives up on the changelog buffer after 0.1 s. See `_Checkpoints`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, cast

import aiokafka
import faust
from faust.types import TP
from faust.worker import Worker

from streamrec.config import Settings
from streamrec.stream.admin import topic_config
from streamrec.stream.kafka import Cluster, build_aiokafka_consumer, faust_broker, stateful_group
from streamrec.stream.observability.lag import GroupLagPoller
from streamrec.stream.stages.engines.common import rocksdb_memory, stop_when_set
from streamrec.stream.stages.stateful import StatefulStep
from streamrec.stream.topics import Topics

_LOGLEVEL = "WARNING"
_READ_SKIPPED_TIMEOUT_S = 30.0
_FINAL_CHECKPOINT_TIMEOUT_S = 10.0

log = logging.getLogger(__name__)


class _Worker(Worker):
    """faust's worker installs loop signal handlers, which asyncio allows on the main thread only."""

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            super().install_signal_handlers()


class _Checkpoints:
    """At-least-once bookkeeping of the clicks topic, which faust does not commit (the topic has acks off).

    Why: faust 0.15 commits an offset once the clicks below it are acked *or* fall in a "gap"
    of the offsets it read. After a crash with a wiped state dir, the restarted worker reads
    the changelog, then seeks the clicks partitions to their committed offsets; records fetched
    around that seek can be dropped before they reach the agent (seen: offsets 97..100 of a
    partition never handed to the agent, the first record read 101), and the gap logic then
    commits past them: those clicks never got a scoring request and never reached the state.
    Seeking faust's consumer back does not help (its fetch loop moves its read offset forward
    again on records fetched before the seek, then drops the re-read ones). Its pre-commit
    `producer.flush()` also returns once the changelog buffer makes no progress for 0.1 s.

    So here, per partition, `expected` is the next offset to process: the agent drops an earlier
    one (processed already), fills a jump by reading the skipped records itself (`_read_skipped`),
    and an offset is committed only once every click below it was processed and every record
    those clicks produced (scoring request or dead letter, changelog entry) is acknowledged.
    """

    def __init__(self, committed_offset: Callable[[TP], int | None]) -> None:
        self._committed_offset = committed_offset
        self._next: dict[TP, int] = {}
        self._committed: dict[TP, int] = {}
        self._pending: list[Awaitable[Any]] = []
        self._lock = asyncio.Lock()
        self.epoch = 0
        """Bumped when partitions are revoked: a click that started before must not move a position."""

    def expected(self, tp: TP, offset: int) -> int:
        """The next offset of `tp` to process: the committed one at first (`offset` if there is none)."""
        if tp not in self._next:
            committed = self._committed_offset(tp)
            self._next[tp] = offset if committed is None else committed
        return self._next[tp]

    def processed(self, tp: TP, offset: int, epoch: int, sent: list[Awaitable[Any]]) -> None:
        """The click at `offset` (and whatever lies below it) is folded in; `sent`: what it produced."""
        self._pending.extend(sent)
        if epoch == self.epoch and offset >= self._next.get(tp, offset + 1):
            self._next[tp] = offset + 1

    def forget(self, tps: set[TP]) -> None:
        """Partitions revoked: faust seeks them to the committed offsets if they come back."""
        self.epoch += 1
        for tp in tps:
            self._next.pop(tp, None)
            self._committed.pop(tp, None)

    async def checkpoint(self, commit: Callable[[Mapping[TP, int]], Awaitable[bool]],
                         timeout_s: float | None = None) -> None:
        """Wait for every record produced so far to be acknowledged, then commit the positions reached before."""
        async with self._lock:
            offsets = {tp: n for tp, n in self._next.items() if n > self._committed.get(tp, -1)}
            pending, self._pending = self._pending, []
            try:
                # A failed delivery raises here: nothing is committed and the stage crashes (and is restarted).
                await asyncio.wait_for(asyncio.gather(*pending), timeout_s)
            except TimeoutError:
                log.warning("records still unacknowledged after %.0f s; offsets left uncommitted", timeout_s)
                return
            if offsets and await commit(offsets):
                self._committed.update(offsets)


async def _read_skipped(cluster: Cluster, tp: TP, start: int, end: int) -> list[tuple[int, Any, Any]]:
    """(offset, key, value) of the records of `tp` in [start, end), read with a throwaway consumer.

    Offsets that are not in the log (transaction markers, records past retention) are passed over.
    """
    consumer = build_aiokafka_consumer(cluster, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    partition = aiokafka.TopicPartition(tp.topic, tp.partition)
    records: list[tuple[int, Any, Any]] = []
    await consumer.start()
    try:
        consumer.assign([partition])
        consumer.seek(partition, start)
        async with asyncio.timeout(_READ_SKIPPED_TIMEOUT_S):
            while await consumer.position(partition) < end:
                batch = await consumer.getmany(partition, timeout_ms=500, max_records=end - start)
                records += [(r.offset, r.key, r.value) for r in batch.get(partition, []) if r.offset < end]
    finally:
        await consumer.stop()
    return records


class _Table(faust.Table[bytes, Any]):
    """A Table that hands each changelog record's delivery future to `on_changelog_sent`."""

    on_changelog_sent: Callable[[Awaitable[Any]], None] | None = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        future = super().send_changelog(*args, **kwargs)
        if self.on_changelog_sent is not None:
            self.on_changelog_sent(future)
        return future


def _raw_schema() -> faust.Schema[bytes, bytes]:
    """Bytes in, bytes out (a fresh instance each time: faust updates the schemas it is given)."""
    return faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def table_options(settings: Settings) -> dict[str, int]:
    """faust's RocksDB options with the memory knobs from settings (faust opens one block cache per partition)."""
    memory = rocksdb_memory(settings)
    return {
        "block_cache_size": memory.block_cache_bytes,
        "block_cache_compressed_size": memory.block_cache_bytes,  # python-rocksdb driver only
        "write_buffer_size": memory.write_buffer_bytes,
        "max_write_buffer_number": memory.max_write_buffers,
    }


def build_app(settings: Settings) -> faust.App:
    """The faust app of the stateful stage: clicks -> Table -> scoring requests | DLQ."""
    kafka = settings.kafka
    app = faust.App(
        stateful_group(settings),
        **faust_broker(settings),
        store="rocksdb://",
        datadir=str(settings.state.dir),
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        autodiscover=False,
        Table=_Table,
    )
    step = StatefulStep(settings)
    table = cast(_Table, app.Table(f"{step.topics.clicks}-visitors", default=None, partitions=kafka.partitions,
                                   key_type=bytes, extra_topic_configs=topic_config(settings),
                                   options=table_options(settings)))  # a _Table: the app's Table class
    # faust's own view of the committed offsets, read from the broker when partitions are assigned.
    checkpoints = _Checkpoints(lambda tp: app.consumer._committed_offset.get(tp))  # type: ignore[attr-defined]
    produced: list[Awaitable[Any]] = []
    """Delivery futures of the records the current click produced (its changelog entry, then its output)."""
    table.on_changelog_sent = produced.append

    def raw_topic(name: str, acks: bool = True) -> Any:
        return app.topic(name, schema=_raw_schema(), partitions=kafka.partitions, config=topic_config(settings),
                         acks=acks)

    clicks = raw_topic(step.topics.clicks, acks=False)  # committed by `checkpoints`, never by faust
    outputs = {name: raw_topic(name) for name in (step.topics.scoring_requests, step.topics.dlq)}

    async def fold(tp: TP, offset: int, key: bytes | None, value: bytes | None, epoch: int,
                   ts_produced: float | None = None) -> None:
        stored = table.get(key) if key is not None else None
        result = step.record(step.step(key, value, stored, time.time(), partition=tp.partition, offset=offset,
                                       ts_produced=ts_produced))
        if result.state is not None:
            assert key is not None  # a click without a key is refused (stream/validate.py): it has no state
            table[key] = result.state
        produced.append(await outputs[result.output.topic].send(key=result.output.key, value=result.output.value))
        checkpoints.processed(tp, offset, epoch, produced)
        produced.clear()

    @app.agent(clicks)
    async def fold_clicks(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            tp, offset, epoch = message.tp, message.offset, checkpoints.epoch
            expected = checkpoints.expected(tp, offset)
            if offset < expected:  # processed already
                continue
            if offset > expected:  # faust skipped records: fold them in first, in order
                skipped = await _read_skipped(kafka, tp, expected, offset)
                log.warning("clicks %s: faust skipped offsets %d..%d; read %d of them directly",
                            tp, expected, offset - 1, len(skipped))
                for skipped_offset, skipped_key, skipped_value in skipped:
                    await fold(tp, skipped_offset, skipped_key, skipped_value, epoch)
            await fold(tp, offset, event.key, event.value, epoch, message.timestamp or None)

    @app.timer(app.conf.broker_commit_interval)
    async def commit_clicks() -> None:
        await checkpoints.checkpoint(app.consumer._commit)  # type: ignore[attr-defined]

    # faust types a receiver as taking (sender, *args, signal=..., **kwargs), not the arguments it is sent
    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_revoked(app: faust.App, revoked: set[TP], **_: Any) -> None:
        checkpoints.forget(revoked)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def final_checkpoint(app: faust.App, **_: Any) -> None:
        await checkpoints.checkpoint(app.consumer._commit, timeout_s=_FINAL_CHECKPOINT_TIMEOUT_S)  # type: ignore[attr-defined]

    return app


def run_stateful_stage(settings: Settings, stop: threading.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT when on the main thread); a last checkpoint commits on the way out."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    if settings.health.lag_interval_ms and stop is not None:  # aiokafka reports no lag itself
        GroupLagPoller(settings.kafka, stateful_group(settings), "stateful",
                       (Topics(settings.kafka.topic_prefix).clicks,), settings.health.lag_interval_ms).start(stop)
    worker = _Worker(build_app(settings), loop=loop, loglevel=_LOGLEVEL, quiet=True, redirect_stdouts=False,
                     override_logging=False)

    def request_shutdown() -> None:
        # What the worker's own SIGTERM handler does; it must run on the worker's loop.
        loop.call_soon_threadsafe(worker._schedule_shutdown, signal.SIGTERM)

    with stop_when_set(stop, request_shutdown):
        try:
            worker.execute_from_commandline()
        except SystemExit as exc:  # mode's worker always exits through SystemExit
            if exc.code not in (0, None):
                raise RuntimeError(f"faust worker exited with status {exc.code}") from exc
