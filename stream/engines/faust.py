"""The stateful stage on faust-streaming (the alternative engine).

A faust Table (RocksDB through rocksdict, under `state.dir`, backed by the changelog
topic `{group}-{clicks topic}-visitors-changelog`) holds the visitor states; one agent folds clicks
into it with `StatefulStep`. faust is an asyncio application normally started by its
CLI; here a `faust.Worker` runs it on a private event loop so it can live in any thread
and be stopped through the caller's `threading.Event`.

Topics use raw codecs (the step already speaks bytes); the Table stores the state dicts as JSON.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from typing import Any

import faust
from faust.worker import Worker

from streamrec.config import Settings
from streamrec.stream.admin import topic_config
from streamrec.stream.engines.common import stateful_group, stop_when_set
from streamrec.stream.stateful import StatefulStep

_LOGLEVEL = "WARNING"


class _Worker(Worker):
    """faust's worker installs loop signal handlers, which asyncio allows on the main thread only."""

    def install_signal_handlers(self) -> None:
        if threading.current_thread() is threading.main_thread():
            super().install_signal_handlers()


def _raw_schema() -> faust.Schema:
    """Bytes in, bytes out (a fresh instance each time: faust updates the schemas it is given)."""
    return faust.Schema(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")


def _broker_urls(bootstrap_servers: str) -> str:
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap_servers.split(","))


def build_app(settings: Settings) -> faust.App:
    """The faust app of the stateful stage: clicks -> Table -> scoring requests | DLQ."""
    kafka = settings.kafka
    session_timeout_s = kafka.session_timeout_ms / 1000
    app = faust.App(
        stateful_group(settings),
        broker=_broker_urls(kafka.bootstrap_servers),
        store="rocksdb://",
        datadir=str(settings.state.dir),
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        topic_disable_leader=True,
        broker_session_timeout=session_timeout_s,
        broker_heartbeat_interval=session_timeout_s / 3,
        consumer_auto_offset_reset="earliest",
        producer_linger=kafka.linger_ms / 1000,
        # aiokafka closes a batch once it is full but always takes a first record: size 1 = one record per batch.
        producer_max_batch_size=1 if kafka.single_record_batches else 16384,
        web_enabled=False,
        autodiscover=False,
    )
    step = StatefulStep(settings)
    table = app.Table(f"{step.topics.clicks}-visitors", default=None, partitions=kafka.partitions,
                      key_type=bytes, extra_topic_configs=topic_config(settings))

    def raw_topic(name: str) -> Any:
        return app.topic(name, schema=_raw_schema(), partitions=kafka.partitions, config=topic_config(settings))

    clicks = raw_topic(step.topics.clicks)
    outputs = {name: raw_topic(name) for name in (step.topics.scoring_requests, step.topics.dlq)}

    @app.agent(clicks)
    async def fold_clicks(stream: Any) -> None:
        async for event in stream.events():
            key, value, message = event.key, event.value, event.message
            stored = table.get(key) if key is not None else None
            result = step(key, value, stored, time.time(), partition=message.partition, offset=message.offset)
            if result.state is not None:
                table[key] = result.state
            await outputs[result.output.topic].send(key=result.output.key, value=result.output.value)

    return app


def run_stateful_stage(settings: Settings, stop: threading.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT when on the main thread); faust commits on the way out."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
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
