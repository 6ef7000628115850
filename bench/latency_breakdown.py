"""Where end-to-end latency goes, hop by hop, at a fixed click rate.

Starts an embedded broker and `streamrec worker --role all`, sends synthetic clicks at
`--rate` clicks/s for `--seconds`, and reads back the internal scoring requests and the
recommendations. Every record carries enough clocks to split each click's latency:

    send      harness produce() call              (kept by the harness, wall clock)
    accepted  stateful stage took the click       (ScoringRequest.ts_received)
    emitted   scoring stage answered              (Recommendation.ts_emitted)
    answered  recommendation written              (Kafka CreateTime of the recommendation)

and prints p50/p90/p99 of each hop. All processes share this machine's clock. This tool reads
the internal requests topic only for `accepted`, after the fact: its own lag does not count.

    .venv/bin/python bench/latency_breakdown.py [--rate 2000] [--seconds 8] [--engine quix] [--warm 20000]
        [--out clocks.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
from confluent_kafka import Consumer, Producer
from rich.console import Console
from rich.table import Table

from streamrec.config import load_settings
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker
from streamrec.stream.harness.demo import wait_for_groups, worker_process
from streamrec.stream.kafka import consumer_config, producer_config, scoring_group, stateful_group
from streamrec.stream.stages.engines.registry import engine_names
from streamrec.stream.topics import Topics

HOPS = (("send -> accepted", "send", "accepted"), ("accepted -> emitted", "accepted", "emitted"),
        ("emitted -> answered", "emitted", "answered"), ("send -> answered", "send", "answered"))


def _clicks(count: int, seed: int, tag: str) -> list[tuple[bytes, dict[str, object]]]:
    """`count` synthetic clicks (event time shifted to the last hours, so validation accepts them)."""
    clicks = sorted(generate(SyntheticSpec(seed=seed)), key=lambda c: c.ts)[:count]
    if not clicks:
        return []
    shift = time.time() - 3600 * (2 if tag == "warm" else 1) - clicks[-1].ts
    return [((c.user_id or c.session_id).encode(),
             {"event_id": f"{tag}{n}", "session_id": f"{tag}-{c.session_id}", "user_id": c.user_id,
              "item_id": c.item_id, "ts": c.ts + shift, "type": c.type}) for n, c in enumerate(clicks)]


def _tail(bootstrap: str, settings_consumer: dict[str, object], topics: list[str]) -> Consumer:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"lat-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False, **settings_consumer})
    consumer.subscribe(topics)
    return consumer


def measure(rate: float, seconds: float, engine: str, warm: int) -> dict[str, dict[str, float]]:
    clock: dict[str, dict[str, float]] = {}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="latency-") as state_dir:
        settings = load_settings(
            kafka={"bootstrap_servers": broker.bootstrap_servers, "topic_prefix": f"lat-{uuid.uuid4().hex[:6]}-",
                   "session_timeout_ms": 2000},
            state={"dir": Path(state_dir), "engine": engine})
        ensure_topics(settings)
        topics = Topics(settings.kafka.topic_prefix)
        with worker_process("worker", "all", engine, settings, Path(state_dir) / "logs") as worker:
            wait_for_groups(settings, [stateful_group(settings), scoring_group(settings)], [worker])
            tail = _tail(broker.bootstrap_servers, consumer_config(settings),
                         [topics.scoring_requests, topics.recommendations])
            producer = Producer({"bootstrap.servers": broker.bootstrap_servers, **producer_config(settings)})
            for key, body in _clicks(warm, seed=7, tag="warm"):  # state and statistics as after a busy spell
                producer.produce(topics.clicks, key=key, value=orjson.dumps(body))
                producer.poll(0)
            producer.flush()
            _drain(tail, topics.recommendations, f"warm{warm - 1}" if warm else None)
            clicks = _clicks(int(rate * seconds), seed=0, tag="lat")
            start = time.perf_counter()
            for n, (key, body) in enumerate(clicks):
                while time.perf_counter() < start + n / rate:
                    time.sleep(0.0005)
                clock[str(body["event_id"])] = {"send": time.time()}
                producer.produce(topics.clicks, key=key, value=orjson.dumps(body))
                producer.poll(0)
            producer.flush()
            deadline = time.monotonic() + 120
            answered = 0
            while answered < len(clicks) and time.monotonic() < deadline:
                for message in tail.consume(1000, 0.2):
                    if message.error() is not None:
                        continue
                    doc = orjson.loads(message.value())
                    stamps = clock.get(doc["event_id"])
                    if stamps is None:
                        continue
                    created_s = message.timestamp()[1] / 1000
                    if message.topic() == topics.scoring_requests:
                        stamps.setdefault("accepted", doc["ts_received"])
                    elif "emitted" not in stamps:
                        stamps["emitted"], stamps["answered"] = doc["ts_emitted"], created_s
                        answered += 1
            tail.close()
    return clock


def _drain(tail: Consumer, topic: str, last_event_id: str | None, timeout_s: float = 120.0) -> None:
    """Read until the recommendation of `last_event_id` went by (None: nothing to wait for)."""
    deadline = time.monotonic() + timeout_s
    while last_event_id is not None and time.monotonic() < deadline:
        for message in tail.consume(1000, 0.2):
            if (message.error() is None and message.topic() == topic
                    and orjson.loads(message.value())["event_id"] == last_event_id):
                return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=2000.0, help="clicks per second")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--engine", choices=engine_names(), default=engine_names()[0])
    parser.add_argument("--warm", type=int, default=20_000, help="clicks sent flat out (and answered) first")
    parser.add_argument("--out", type=Path, default=None, help="also write every traced click's clocks (JSON)")
    args = parser.parse_args()
    clock = measure(args.rate, args.seconds, args.engine, args.warm)
    if args.out is not None:
        args.out.write_bytes(orjson.dumps(clock))
    complete = [s for s in clock.values() if len(s) == 4]
    table = Table(title=f"latency by hop at {args.rate:,.0f} clicks/s "
                        f"({len(complete):,} of {len(clock):,} clicks traced), ms")
    for column in ("hop", "p50", "p90", "p99"):
        table.add_column(column, justify="left" if column == "hop" else "right")
    for name, a, b in HOPS:
        ms = np.array([(s[b] - s[a]) * 1000 for s in complete])
        table.add_row(name, *(f"{np.percentile(ms, q):,.1f}" if ms.size else "-" for q in (50, 90, 99)))
    Console().print(table)


if __name__ == "__main__":
    main()
