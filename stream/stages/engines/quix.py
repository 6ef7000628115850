"""The stateful stage on Quix Streams (the default engine).

Quix keeps the visitor states in RocksDB under `state.dir`, backs every store up to a
changelog topic and, on a fresh or wiped state directory, replays that changelog
before processing. Offsets, changelog writes and output records are committed together
at each checkpoint (at least once): every `state.commit_every_clicks` clicks or 5 s, whichever
comes first, because a checkpoint holds every state it changed in memory until it commits. The
RocksDB and librdkafka memory knobs come from settings too (docs/deployment.md, memory).
All per-click logic is in `StatefulStep`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from confluent_kafka import TopicPartition
from quixstreams import Application, message_context
from quixstreams.models import SerializationContext, Serializer, Topic, TopicConfig
from quixstreams.state import State
from quixstreams.state.rocksdb import RocksDBOptions

from streamrec.config import Settings
from streamrec.stream.admin import topic_config
from streamrec.stream.clients.gaps import GapGuard
from streamrec.stream.kafka import quix_clients, stateful_group
from streamrec.stream.observability.lag import lag_config
from streamrec.stream.stages.engines.common import rocksdb_memory, stop_when_set
from streamrec.stream.stages.stateful import Output, StatefulStep
from streamrec.stream.topics import Topics

_STATE_KEY = "visitor"
STATEFUL_STAGE = "stateful"
"""Label of the stateful stage in `streamrec_offset_gaps_total`."""


class _OutputBytes(Serializer):
    """`Output` records arrive encoded by `StatefulStep`; Quix only forwards their bytes."""

    def __call__(self, value: Output, ctx: SerializationContext) -> bytes:
        return value.value


class _Application(Application):
    """Quix installs SIGINT/SIGTERM handlers in `run()`, which Python allows on the main thread only.

    Off the main thread (tests, benches) the caller's `stop` event is the only way to stop it.
    """

    offset_watch: GapGuard | None = None
    """Notices offset gaps in the clicks it processes (detection only: Quix's checkpoint cannot go back)."""

    def _setup_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            super()._setup_signal_handlers()

    def _on_assign(self, consumer: Any, topic_partitions: list[TopicPartition]) -> None:
        if self.offset_watch is not None:  # a partition (re)assigned starts where the group committed: no gap
            self.offset_watch.forget((tp.topic, tp.partition) for tp in topic_partitions)
        super()._on_assign(consumer, topic_partitions)


def rocksdb_options(settings: Settings) -> RocksDBOptions:
    """Quix's RocksDB options with the memory knobs from settings (its block cache is one per process)."""
    memory = rocksdb_memory(settings)
    return RocksDBOptions(
        block_cache_size=memory.block_cache_bytes,
        write_buffer_size=memory.write_buffer_bytes,
        max_write_buffer_number=memory.max_write_buffers,
    )


def build_application(settings: Settings) -> tuple[Application, StatefulStep]:
    """The Quix application of the stateful stage: clicks -> state -> scoring requests | DLQ."""
    kafka = settings.kafka
    app = _Application(
        **quix_clients(settings, lag_config("stateful", (Topics(kafka.topic_prefix).clicks,),
                                            settings.health.lag_interval_ms)),
        consumer_group=stateful_group(settings),
        auto_offset_reset="earliest",
        state_dir=settings.state.dir,
        rocksdb_options=rocksdb_options(settings),
        commit_every=settings.state.commit_every_clicks,
        loglevel="WARNING",
    )
    step = StatefulStep(settings)
    app.offset_watch = watch = GapGuard(STATEFUL_STAGE)
    config = TopicConfig(
        num_partitions=kafka.partitions, replication_factor=kafka.replication_factor,
        extra_config=topic_config(settings),
    )
    clicks = app.topic(step.topics.clicks, value_deserializer="bytes", key_deserializer="bytes", config=config)
    outputs: dict[str, Topic] = {
        name: app.topic(name, value_serializer=_OutputBytes(), key_serializer="bytes", config=config)
        for name in (step.topics.scoring_requests, step.topics.dlq)
    }

    def process(value: bytes | None, key: bytes | None, ts_ms: int, _headers: Any, state: State[str, Any]) -> Output:
        context = message_context()
        watch.see(step.topics.clicks, context.partition, context.offset)
        ts_produced = ts_ms / 1000 if ts_ms and ts_ms > 0 else None
        result = step.record(step.step(key, value, state.get(_STATE_KEY), time.time(), partition=context.partition,
                                       offset=context.offset, ts_produced=ts_produced))
        if result.state is not None:
            state.set(_STATE_KEY, result.state)
        return result.output

    sdf = app.dataframe(clicks)
    sdf = sdf.apply(process, stateful=True, metadata=True)
    sdf.to_topic(lambda out, *_: outputs[out.topic], key=lambda out: out.key)
    return app, step


def run_stateful_stage(settings: Settings, stop: threading.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT when on the main thread); commits on the way out."""
    app, _ = build_application(settings)
    with stop_when_set(stop, app.stop):
        app.run()
