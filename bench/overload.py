"""Memory and drain speed of the stateful stage under a burst over a large key space.

For each key space (by default 100,000 live sessions over 1,000,000 items, then 1,000 sessions
over 10,000 items as the baseline) it starts a fresh embedded broker, produces the whole burst
to `clicks` up front from a separate process (anonymous sessions, so each session is a key;
clicks go round-robin over the sessions, an hour of event time, so no session closes), then
runs the stateful stage alone as `streamrec worker --role stateful` and samples its resident
memory (and the broker's) from /proc until its own counters say the burst is drained. It
prints the peak RSS (VmHWM) against the bound that settings give
(`streamrec.stream.stages.engines.registry.stateful_memory_bound_mb`, docs/deployment.md), the drain
rate over the first and the last quarter of the burst, and the RocksDB folder's size.

    .venv/bin/python bench/overload.py [--clicks 2000000] [--sessions 100000] [--items 1000000]
        [--small-sessions 1000] [--small-items 10000] [--engine quix] [--library-defaults] [--heap-probe-s 20]

--library-defaults runs with the engines' own memory settings (1 GiB block cache, 3 x 64 MiB
memtables, 1 GiB producer queue, 64 MiB consumer prefetch), the configuration before these
settings existed. STREAMREC_* variables in the environment reach the stage as usual.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import orjson

from streamrec.config import Settings, load_settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker
from streamrec.stream.clients.producer import ClickProducer
from streamrec.stream.stages.engines.common import STAGE_BASE_RSS_MB
from streamrec.stream.stages.engines.registry import engine_names, stateful_memory_bound_mb
from streamrec.stream.stages.stateful import anonymous_state_bytes
from streamrec.stream.topics import Topics

LIBRARY_DEFAULTS = {
    "STREAMREC_STATE__ROCKSDB_BLOCK_CACHE_MB": "1024",
    "STREAMREC_STATE__ROCKSDB_WRITE_BUFFER_MB": "64",
    "STREAMREC_STATE__ROCKSDB_MAX_WRITE_BUFFERS": "3",
    "STREAMREC_KAFKA__PRODUCER_BUFFER_KBYTES": "1048576",
    "STREAMREC_KAFKA__CONSUMER_BUFFER_KBYTES": "65536",
    "STREAMREC_STATE__COMMIT_EVERY_CLICKS": "0",
}
"""The engines' (Quix Streams', librdkafka's) own values of the memory settings."""
COUNTERS = ("streamrec_clicks_accepted_total", "streamrec_clicks_duplicate_total",
            "streamrec_clicks_dead_lettered_total")
"""What the stage has handled; the burst is all valid, so a dead letter is reported as a bench error."""


def produce_burst(bootstrap: str, topic: str, clicks: int, sessions: int, items: int, elapsed_s: Synchronized) -> None:
    """Child process: `clicks` click records round-robin over `sessions`, items uniform over `items`."""
    rng = random.Random(7)
    start_ts = time.time() - 3600.0
    step_s = 3000.0 / clicks
    started = time.perf_counter()
    config: dict[str, str | int] = {"linger.ms": 50, "batch.size": 1_000_000, "queue.buffering.max.kbytes": 262144}
    with ClickProducer(bootstrap, topic, config) as out:
        for n in range(clicks):
            session = f"s{n % sessions}"
            out.send_raw(session.encode(), orjson.dumps({"event_id": f"e{n}", "session_id": session, "user_id": None,
                                                         "item_id": f"i{rng.randrange(items)}",
                                                         "ts": start_ts + n * step_s, "type": "view"}))
        if out.flush(600) != 0 or out.failed:
            raise SystemExit("the burst was not fully delivered")
    elapsed_s.value = time.perf_counter() - started


def memory_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of `pid` in kB; empty once it has ended."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f) if k in ("VmRSS", "VmHWM")}
    except OSError:
        return {}


def scrape_processed(port: int, counters: tuple[str, ...] = COUNTERS) -> float:
    """Clicks the stage has handled, from its /metrics (0 until it serves them)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(counters))


def largest_state_bytes(settings: Settings, clicks: int, sessions: int, items: int) -> int:
    """Serialised size of the largest visitor state this burst builds: a session of its most clicks, longest ids."""
    id_chars = max(len(f"e{clicks - 1}"), len(f"s{sessions - 1}"), len(f"i{items - 1}"))
    return anonymous_state_bytes(settings, -(-clicks // sessions), id_chars)


def folder_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Result:
    label: str
    produce_rate: float
    drain_s: float
    first_quarter_rate: float
    last_quarter_rate: float
    peak_rss_mb: float
    sampled_peak_rss_mb: float
    """The largest VmRSS of the 0.5 s samples (VmHWM also counts spikes between samples)."""
    sampled_peak_at: float
    """Clicks processed at that sample."""
    final_rss_mb: float
    broker_peak_rss_mb: float
    state_mb: float
    processed: float
    bound_mb: float

    def line(self) -> str:
        within = "within" if self.peak_rss_mb <= self.bound_mb else "ABOVE"
        bound = ("no bound (commit_every_clicks = 0)" if math.isinf(self.bound_mb)
                 else f"{within} the bound {self.bound_mb:,.0f} MB")
        return (f"{self.label}: produced at {self.produce_rate:,.0f}/s; drained {self.processed:,.0f} clicks in "
                f"{self.drain_s:,.0f} s ({self.first_quarter_rate:,.0f}/s first quarter, "
                f"{self.last_quarter_rate:,.0f}/s last); stage peak RSS {self.peak_rss_mb:,.0f} MB "
                f"(sampled peak {self.sampled_peak_rss_mb:,.0f} MB at {self.sampled_peak_at:,.0f} clicks; "
                f"end {self.final_rss_mb:,.0f} MB), {bound}; "
                f"broker peak {self.broker_peak_rss_mb:,.0f} MB; RocksDB folder {self.state_mb:,.0f} MB")


def rate_between(samples: list[tuple[float, float]], low: float, high: float) -> float:
    """Clicks/s while the processed count went from `low` to `high` (sample times, 0.5 s resolution)."""
    t0 = next(t for t, done in samples if done >= low)
    t1 = next(t for t, done in samples if done >= high)
    return (high - low) / max(t1 - t0, 1e-9)


def run_key_space(label: str, args: argparse.Namespace, sessions: int, items: int,
                  env_overrides: dict[str, str]) -> Result:
    broker = EmbeddedBroker().start()
    state_dir = Path(tempfile.mkdtemp(prefix="overload-state-"))
    worker: subprocess.Popen[bytes] | None = None
    try:
        tag = uuid.uuid4().hex[:8]
        port = free_port()
        env = {**os.environ, **env_overrides,
               "STREAMREC_KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap_servers,
               "STREAMREC_KAFKA__TOPIC_PREFIX": f"ov{tag}.",
               "STREAMREC_KAFKA__CONSUMER_GROUP": f"ov{tag}", "STREAMREC_STATE__DIR": str(state_dir),
               "STREAMREC_STATE__ENGINE": args.engine, "STREAMREC_METRICS_PORT": str(port)}
        settings = stage_settings(env)
        ensure_topics(settings)
        idle_mb = idle_rss_mb(env, port)
        print(f"{label}: idle stage RSS {idle_mb:,.0f} MB (the bound's base: {STAGE_BASE_RSS_MB} MB)", flush=True)
        context = multiprocessing.get_context("spawn")
        elapsed = context.Value("d", 0.0)
        clicks_topic = Topics(settings.kafka.topic_prefix).clicks
        producer = context.Process(target=produce_burst, args=(broker.bootstrap_servers, clicks_topic,
                                                               args.clicks, sessions, items, elapsed))
        producer.start()
        producer.join()
        if producer.exitcode != 0:
            raise SystemExit(f"{label}: the producer failed")
        produce_rate = args.clicks / elapsed.value
        print(f"{label}: {args.clicks:,} clicks produced in {elapsed.value:,.0f} s ({produce_rate:,.0f}/s)", flush=True)

        command = [sys.executable, "-m", "streamrec"]
        if args.heap_probe_s:  # the same CLI, with bench/heap_probe.py sampling glibc's heap and RocksDB in the process
            probe_out = Path(tempfile.mkdtemp(prefix="overload-heap-")) / "heap.jsonl"
            command = [sys.executable, str(Path(__file__).with_name("heap_probe.py")), str(probe_out),
                       str(args.heap_probe_s)]
        worker = subprocess.Popen([*command, "worker", "--role", "stateful"], env=env)
        samples: list[tuple[float, float]] = []
        broker_peak_kb = 0
        sampled_peak = (0.0, 0.0)  # (VmRSS MB, clicks processed then): where in the burst the peak came
        started = time.monotonic()
        last_print = started
        while True:
            time.sleep(0.5)
            if worker.poll() is not None:
                raise SystemExit(f"{label}: the stateful stage exited with {worker.returncode}")
            now = time.monotonic()
            done = scrape_processed(port)
            samples.append((now, done))
            broker_peak_kb = max(broker_peak_kb, memory_kb(broker.pid or 0).get("VmHWM", 0))
            rss = memory_kb(worker.pid).get("VmRSS", 0) / 1024
            sampled_peak = max(sampled_peak, (rss, done))
            if now - last_print >= 15:
                print(f"  t={now - started:5.0f}s processed={done:,.0f} stage RSS={rss:,.0f} MB", flush=True)
                last_print = now
            if done >= args.clicks or now - started > args.max_drain_s:
                break
        memory = memory_kb(worker.pid)
        if args.heap_probe_s:
            print_heap_probe(probe_out)
        processed = samples[-1][1]
        if (rejected := scrape_processed(port, COUNTERS[2:])) > 0:
            raise SystemExit(f"{label}: {rejected:,.0f} clicks were dead-lettered; the generated burst should be valid")
        first = next(t for t, done in samples if done > 0)
        quarter = processed / 4
        return Result(
            label=label, produce_rate=produce_rate, drain_s=samples[-1][0] - first,
            first_quarter_rate=rate_between(samples, 1, quarter),
            last_quarter_rate=rate_between(samples, processed - quarter, processed),
            peak_rss_mb=memory["VmHWM"] / 1024, sampled_peak_rss_mb=sampled_peak[0], sampled_peak_at=sampled_peak[1],
            final_rss_mb=memory["VmRSS"] / 1024, broker_peak_rss_mb=broker_peak_kb / 1024,
            state_mb=folder_mb(state_dir), processed=processed,
            bound_mb=stateful_memory_bound_mb(
                settings, partitions_per_process=settings.kafka.partitions,
                max_state_bytes=largest_state_bytes(settings, args.clicks, sessions, items)),
        )
    finally:
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(60)
            except subprocess.TimeoutExpired:
                worker.kill()
        broker.stop()
        shutil.rmtree(state_dir, ignore_errors=True)


def idle_rss_mb(env: dict[str, str], port: int) -> float:
    """RSS of the stage once it has joined and found nothing to do (its own group, the topics still empty)."""
    idle_env = {**env, "STREAMREC_KAFKA__CONSUMER_GROUP": env["STREAMREC_KAFKA__CONSUMER_GROUP"] + "-idle",
                "STREAMREC_STATE__DIR": env["STREAMREC_STATE__DIR"] + "-idle"}
    worker = subprocess.Popen([sys.executable, "-m", "streamrec", "worker", "--role", "stateful"], env=idle_env)
    try:
        deadline = time.monotonic() + 60
        while scrape_processed(port) == 0 and time.monotonic() < deadline:  # 0 until /metrics answers, then 0 too
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        time.sleep(10)  # the group join and the partitions' databases opening
        return memory_kb(worker.pid).get("VmRSS", 0) / 1024
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        shutil.rmtree(idle_env["STREAMREC_STATE__DIR"], ignore_errors=True)


def print_heap_probe(path: Path) -> None:
    """The heap probe's samples (bench/heap_probe.py): glibc's heap in use vs kept free, and RocksDB's memory."""
    rows = [orjson.loads(line) for line in path.read_text().splitlines()]
    if not rows:
        print(f"  heap probe: no samples in {path}", flush=True)
        return
    for row in rows:
        rocksdb = row.get("rocksdb", {})
        memtables = sum(f["cur-size-all-mem-tables"] for f in rocksdb.values())
        cache = max((f["block-cache-usage"] for f in rocksdb.values()), default=0.0)  # one cache shared by the stores
        readers = sum(f["estimate-table-readers-mem"] for f in rocksdb.values())
        print(f"  heap probe: RSS {row['rss_mb']} MB, heap in use {row['heap_in_use_mb']} MB, kept free "
              f"{row['heap_free_mb']} MB; RocksDB memtables {memtables:.0f} MB, block cache {cache:.0f} MB, "
              f"table readers {readers:.1f} MB", flush=True)
    print(f"  heap probe: max in use {max(r['heap_in_use_mb'] for r in rows)} MB, max kept free "
          f"{max(r['heap_free_mb'] for r in rows)} MB ({len(rows)} samples, {path})", flush=True)


def stage_settings(env: dict[str, str]) -> Settings:
    """The settings the stage will resolve from `env` (the same variables, read the same way)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=2_000_000)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--small-sessions", type=int, default=1_000)
    parser.add_argument("--small-items", type=int, default=10_000)
    parser.add_argument("--engine", choices=engine_names(), default=engine_names()[0])
    parser.add_argument("--library-defaults", action="store_true", help="the engines' own memory settings (before)")
    parser.add_argument("--max-drain-s", type=float, default=1800.0, help="stop waiting for the drain after this long")
    parser.add_argument("--only-large", action="store_true", help="skip the small key space")
    parser.add_argument("--heap-probe-s", type=float, default=0.0,
                        help="sample the stage's glibc heap and RocksDB memory every this many seconds "
                             "(bench/heap_probe.py)")
    args = parser.parse_args()
    overrides = LIBRARY_DEFAULTS if args.library_defaults else {}
    config = "library defaults" if args.library_defaults else "settings defaults"
    results = [run_key_space(f"{args.sessions:,} sessions / {args.items:,} items ({config})", args,
                             args.sessions, args.items, overrides)]
    print(results[-1].line(), flush=True)
    if not args.only_large:
        results.append(run_key_space(f"{args.small_sessions:,} sessions / {args.small_items:,} items ({config})", args,
                                     args.small_sessions, args.small_items, overrides))
        print(results[-1].line(), flush=True)
        large, small = results
        print(f"large / small key space: peak RSS x{large.peak_rss_mb / small.peak_rss_mb:.2f}, "
              f"drain time x{large.drain_s / small.drain_s:.2f}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
