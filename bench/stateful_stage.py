"""Throughput of the stateful stage alone: clicks -> validation -> RocksDB state -> scoring requests.

Pre-produces a synthetic click log (state.clicklog.synthetic, timestamps moved to the last
days so validation accepts them) to a fresh topic, then runs the engine's stateful stage in
child processes and times how fast it works through the backlog (from its first processed click
to the last, so start-up and the group join are not counted). Also prints the pure
`StatefulStep` rate (no Kafka, an in-memory dict as the store) as the ceiling.

    .venv/bin/python bench/stateful_stage.py [--events 100000] [--processes 2] [--engine quix] [--bootstrap HOST:PORT]

With --processes N, N stage processes share the consumer group (the stage scales by partitions).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event as EventType
from pathlib import Path

import orjson
from confluent_kafka import Producer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from streamrec.config import Settings, load_settings
from streamrec.config.settings import SAFE_FETCH_WAIT_WITH_SINGLE_RECORD_BATCHES_MS
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.stream import metrics
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker
from streamrec.stream.stages.engines.registry import engine_names
from streamrec.stream.stages.stateful import StatefulStep
from streamrec.stream.topics import Topics
from streamrec.stream.worker import stateful_runner

Record = tuple[bytes, bytes]


def synthetic_records(events: int) -> list[Record]:
    """`events` keyed click records, the synthetic log shifted so its last click is an hour ago."""
    spec = SyntheticSpec(sessions=max(100, events // 6 + 1), users=max(50, events // 60))
    clicks = generate(spec)[:events]
    shift = time.time() - 3600 - clicks[-1].ts
    records = []
    for n, c in enumerate(clicks):
        body = {"event_id": f"e{n}", "session_id": c.session_id, "user_id": c.user_id, "item_id": c.item_id,
                "ts": c.ts + shift, "type": c.type}
        records.append(((c.user_id or c.session_id).encode(), orjson.dumps(body)))
    return records


def produce_backlog(settings: Settings, records: list[Record]) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "linger.ms": 20})
    topic = Topics(settings.kafka.topic_prefix).clicks
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)


def processed() -> float:
    """Clicks this process's stage has handled so far (from its own counters).

    Read counter by counter: collecting the whole registry costs ~0.5 ms, which the stage
    being measured would pay 50 times a second.
    """
    counters = (metrics.CLICKS_ACCEPTED, metrics.CLICKS_DUPLICATE, metrics.CLICKS_DEAD_LETTERED)
    return sum(s.value for counter in counters for m in counter.collect() for s in m.samples
               if s.name.endswith("_total"))


def run_stage_process(settings: Settings, engine: str, progress: Synchronized, cpu_s: Synchronized,
                      stop: EventType) -> None:
    """One stage process: the engine on a thread; publishes clicks handled and CPU seconds since its first click.

    CPU time (all threads, librdkafka's included) is what other jobs on a shared machine cannot inflate.
    """
    stage_stop = threading.Event()
    stage = threading.Thread(target=stateful_runner(engine), args=(settings, stage_stop), name="stateful-stage")
    stage.start()
    cpu_at_first: float | None = None
    while not stop.wait(0.02) and stage.is_alive():
        done = processed()
        if cpu_at_first is None and done > 0:
            cpu_at_first = time.process_time()
        if cpu_at_first is not None:
            cpu_s.value = time.process_time() - cpu_at_first
        progress.value = done
    stage_stop.set()
    stage.join()


def stage_rate(settings: Settings, engine: str, total: int, processes: int) -> tuple[float, float]:
    """Run `processes` stage processes (one consumer group) over the backlog.

    Events/s counted from the moment every process has handled its first click (start-up,
    group joins and the first rebalance are not counted) to the last click; and clicks per
    CPU-second of the stage processes (what one free core would do).
    """
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    counters = [context.Value("d", 0.0) for _ in range(processes)]
    cpu = [context.Value("d", 0.0) for _ in range(processes)]
    workers = [context.Process(target=run_stage_process, args=(settings, engine, c, s, stop))
               for c, s in zip(counters, cpu)]
    for worker in workers:
        worker.start()
    start: tuple[float, float] | None = None
    with Progress(TextColumn(f"stateful stage x{processes}"), BarColumn(),
                  TextColumn("{task.completed:.0f}/{task.total}"), TextColumn("{task.fields[rate]}"),
                  TimeElapsedColumn()) as bar:
        task = bar.add_task("", total=total, rate="")
        while (done := sum(c.value for c in counters)) < total:
            if not all(w.is_alive() for w in workers):
                raise SystemExit("a stateful stage process stopped early")
            now = time.perf_counter()
            if start is None and all(c.value > 0 for c in counters):
                start = (now, done)
            rate = f"{(done - start[1]) / (now - start[0]):,.0f} events/s" if start and now > start[0] else ""
            bar.update(task, completed=done, rate=rate)
            time.sleep(0.02)
        end = time.perf_counter()
        cpu_used = sum(c.value for c in cpu)
        bar.update(task, completed=total)
    stop.set()
    for worker in workers:
        worker.join()
    if start is None:
        raise SystemExit("the backlog was drained before every process started; use more --events")
    return (total - start[1]) / (end - start[0]), total / cpu_used


def step_rate(settings: Settings, records: list[Record]) -> float:
    """The pure per-click step over an in-memory store: what the engine's overhead is added to."""
    step = StatefulStep(settings)
    store: dict[bytes, dict] = {}
    started = time.perf_counter()
    for key, value in records:
        result = step.step(key, value, store.get(key), time.time())
        if result.state is not None:
            store[key] = orjson.loads(orjson.dumps(result.state))  # what a store's serialisation costs
    return len(records) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--engine", choices=engine_names(), default=None, help="default: settings.state.engine")
    parser.add_argument("--bootstrap", default=None, help="an existing cluster (default: start the embedded broker)")
    parser.add_argument("--processes", type=int, default=1, help="stage processes in one consumer group")
    parser.add_argument("--single-record-batches", action="store_true", help="as the test suite runs on Tansu")
    args = parser.parse_args()

    records = synthetic_records(args.events)
    print(f"{len(records):,} synthetic clicks, pure StatefulStep: {step_rate(load_settings(), records):,.0f} events/s")
    broker = None if args.bootstrap else EmbeddedBroker().start()
    try:
        with tempfile.TemporaryDirectory() as state_dir:
            tag = uuid.uuid4().hex[:8]
            settings = load_settings(
                kafka={"bootstrap_servers": args.bootstrap or broker.bootstrap_servers, "topic_prefix": f"bench{tag}.",
                       "consumer_group": f"bench{tag}", "session_timeout_ms": 2000,
                       "single_record_batches": args.single_record_batches,
                       **({"fetch_wait_max_ms": SAFE_FETCH_WAIT_WITH_SINGLE_RECORD_BATCHES_MS}
                          if args.single_record_batches else {})},
                state={"dir": Path(state_dir)},
            )
            engine = args.engine or settings.state.engine
            ensure_topics(settings)
            produce_backlog(settings, records)
            rate, per_cpu_s = stage_rate(settings, engine, len(records), args.processes)
            print(f"stateful stage ({engine}, processes={args.processes}, partitions={settings.kafka.partitions}, "
                  f"single_record_batches={args.single_record_batches}): {rate:,.0f} events/s, "
                  f"{per_cpu_s:,.0f} events per CPU-second; load average {os.getloadavg()[0]:.1f}")
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
