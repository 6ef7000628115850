"""Throughput of the stateful stage alone: clicks -> validation -> RocksDB state -> scoring requests.

Pre-produces a synthetic click log (state.clicklog.synthetic, timestamps moved to the last
days so validation accepts them) to a fresh topic, then runs the engine's stateful stage in
this process and times how fast it works through the backlog (from its first processed click
to the last, so start-up and the group join are not counted). Also prints the pure
`StatefulStep` rate (no Kafka, an in-memory dict as the store) as the ceiling.

    .venv/bin/python bench/stateful_stage.py [--events 100000] [--engine quix] [--bootstrap HOST:PORT]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson
from confluent_kafka import Producer
from prometheus_client import REGISTRY
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from streamrec.config import Settings, load_settings
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker
from streamrec.stream.stateful import StatefulStep
from streamrec.stream.topics import Topics
from streamrec.stream.worker import stateful_runner

Record = tuple[bytes, bytes]
_PROCESSED_SAMPLES = ("streamrec_clicks_accepted_total", "streamrec_clicks_duplicate_total")


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
    """Clicks the stage has folded into state so far (from its own metrics)."""
    dead = sum(s.value for m in REGISTRY.collect() if m.name == "streamrec_clicks_dead_lettered"
               for s in m.samples if s.name.endswith("_total"))
    return dead + sum(REGISTRY.get_sample_value(name) or 0.0 for name in _PROCESSED_SAMPLES)


def stage_rate(settings: Settings, engine: str, total: int) -> float:
    """Run the engine's stage over the backlog; events/s from its first processed click to the last."""
    stop = threading.Event()
    stage = threading.Thread(target=stateful_runner(engine), args=(settings, stop), name="stateful-stage")
    start_count = processed()
    stage.start()
    first: tuple[float, float] | None = None
    with Progress(TextColumn("stateful stage"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total}"),
                  TextColumn("{task.fields[rate]}"), TimeElapsedColumn()) as bar:
        task = bar.add_task("", total=total, rate="")
        while (done := processed() - start_count) < total:
            if not stage.is_alive():
                raise SystemExit("the stateful stage stopped early")
            now = time.perf_counter()
            if first is None and done > 0:
                first = (now, done)
            rate = f"{(done - first[1]) / (now - first[0]):,.0f} events/s" if first and now > first[0] else ""
            bar.update(task, completed=done, rate=rate)
            time.sleep(0.05)
        end = time.perf_counter()
        bar.update(task, completed=total)
    stop.set()
    stage.join()
    assert first is not None
    return (total - first[1]) / (end - first[0])


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
    parser.add_argument("--engine", choices=("quix", "faust"), default=None, help="default: settings.state.engine")
    parser.add_argument("--bootstrap", default=None, help="an existing cluster (default: start the embedded broker)")
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
                       "single_record_batches": args.single_record_batches},
                state={"dir": Path(state_dir)},
            )
            engine = args.engine or settings.state.engine
            ensure_topics(settings)
            produce_backlog(settings, records)
            rate = stage_rate(settings, engine, len(records))
            print(f"stateful stage ({engine}, partitions={settings.kafka.partitions}, "
                  f"single_record_batches={args.single_record_batches}): {rate:,.0f} events/s")
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
