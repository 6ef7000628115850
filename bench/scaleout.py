"""Scale-out without forgetting: the same replay through 1, 2 and 3 workers, then 2 with one SIGKILLed.

Each run is a fresh embedded broker (Tansu keeps topics in memory, so fetches slow as they fill; a
broker per run keeps the runs alike), `kafka.partitions` 4, N `streamrec worker --role all` processes
with their own state folders and metrics ports (as on N hosts), the kNN scorer, the Tansu-safe client
settings (one-record batches, 500 ms fetch wait: a killed worker's state is recovered from its
changelog). The replay warms on the train file unjudged (flat out, in chunks of 2,000 clicks each drained
before the next: an overloaded embedded broker timed out 28,587 of them in one go), then sends the test file at
`--rate` clicks/s and judges every answer prequentially. Figures per run: HR@20, MRR@20 and their
paired 95% bootstrap intervals against the 1-worker run (the same clicks, keyed by their position in
the log, resampled by session: state/paired.py), answers missing (valid clicks never answered, with
their event ids) and duplicated, offset gaps the consumers counted, and for the kill run the seconds
from the SIGKILL to the first answer of each of the dead worker's partitions (read back from the
recommendations produced after the kill). `--local-baseline` adds 2 workers with
`scoring.learn_whole_stream=false` (each learns only the partitions it answers: the behaviour before).

    .venv/bin/python bench/scaleout.py                        # yoochoose-100k from ../shared/data, else synthetic
    .venv/bin/python bench/scaleout.py --synthetic --judge-limit 2000 --warm-limit 5000    # quick
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from paths import DATA, REPO_ROOT

from streamrec.config import Settings, load_settings
from streamrec.state.clicklog.types import LoggedClick
from streamrec.state.paired import paired_difference
from streamrec.state.ranking_metrics import RankingMetrics
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker, free_port
from streamrec.stream.harness.demo import settings_env, wait_for_groups
from streamrec.stream.harness.replay import DrainPolicy, Pacing, Replayer, load_clicks
from streamrec.stream.kafka import scoring_group, stateful_group
from streamrec.stream.topics import Recommendation, Topics

SCORER = "sknn"
WARM_CHUNK = 2000
SESSION_TIMEOUT_MS = 6000
"""Kafka's default. With the tests' 2,000 ms, a worker on the shared 2-core VM (load average 7-9) missed its
session, its Quix commit failed (UNKNOWN_MEMBER_ID) and its stateful stage stopped mid-replay."""
METRICS = ("HR@20", "MRR@20")


@dataclass(frozen=True)
class RunSpec:
    name: str
    workers: int
    kill: bool = False
    whole_stream: bool = True


@dataclass
class RunResult:
    name: str
    workers: int
    metrics: dict[str, float]
    judged: int
    answered: int
    missing: int
    missing_event_ids: list[str]
    duplicates: int
    gaps: dict[str, float]
    recovery_s: dict[int, float | None] = field(default_factory=dict)
    dead_partitions: list[int] = field(default_factory=list)
    paired: dict[str, dict[str, Any]] = field(default_factory=dict)
    undelivered: int = 0
    """Clicks (warm and judged) the replay's producer could not deliver: a run with any is not comparable."""


class Worker:
    """`streamrec worker --role all` in its own process group (SIGKILL takes the stateful child too)."""

    def __init__(self, settings: Settings, log_path: Path) -> None:
        self.settings = settings
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")} | settings_env(settings)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "streamrec", "worker", "--role", "all"],
                                            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def name(self) -> str:
        return self.log_path.stem

    def signal(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self) -> None:
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def answering(self) -> list[int]:
        """The scoring-requests partitions it answered last (its latest assignment log line)."""
        found = re.findall(r"answering \S+ partitions \[([\d, ]*)\]", self.log_path.read_text(errors="replace"))
        return [int(p) for p in found[-1].split(",") if p.strip()] if found else []

    def gaps(self) -> dict[str, float]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.settings.metrics_port}/metrics",
                                        timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return {}
        found: dict[str, float] = {}
        for labels, value in re.findall(r"^streamrec_offset_gaps_total\{([^}]*)\} (\S+)$", text, re.MULTILINE):
            named = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            found[f"{named.get('stage')}/{named.get('outcome')}"] = float(value)
        return found


def first_answers_after(settings: Settings, since: float, partitions: set[int], timeout_s: float) -> dict[int, float]:
    """The emission time of the first answer to a request of each of `partitions` produced after `since`."""
    topic = Topics(settings.kafka.topic_prefix).recommendations
    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                         "group.id": f"rec-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    first: dict[int, float] = {}
    try:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        wanted = [TopicPartition(topic, p, int(since * 1000)) for p in metadata.partitions]
        consumer.assign(consumer.offsets_for_times(wanted, timeout=30))
        deadline = time.monotonic() + timeout_s
        while set(first) < partitions and time.monotonic() < deadline:
            for message in consumer.consume(1000, 0.5):
                if message.error() is not None:
                    continue
                rec = Recommendation.model_validate_json(message.value())
                p = rec.request_partition
                if rec.ts_emitted > since and p in partitions and (p not in first or rec.ts_emitted < first[p]):
                    first[p] = rec.ts_emitted
    finally:
        consumer.close()
    return first


def deployment(bootstrap: str, spec: RunSpec, partitions: int, tmp: Path) -> list[Settings]:
    tag = uuid.uuid4().hex[:8]
    base = load_settings(
        kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"so{tag}.", "consumer_group": f"so{tag}",
               "partitions": partitions, "session_timeout_ms": SESSION_TIMEOUT_MS, "single_record_batches": True,
               "fetch_wait_max_ms": 500},
        scoring={"scorer": SCORER, "learn_whole_stream": spec.whole_stream},
        state={"dir": tmp / "state-0"})
    return [base.model_copy(update={"state": base.state.model_copy(update={"dir": tmp / f"state-{n}"}),
                                    "metrics_port": free_port()}) for n in range(spec.workers)]


def one_run(spec: RunSpec, warm: list[LoggedClick], judged: list[LoggedClick], rate: float, partitions: int,
            logs: Path) -> tuple[RunResult, RankingMetrics]:
    print(f"[{spec.name}] starting {spec.workers} worker(s)", flush=True)
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="scaleout-") as tmp:
        fleet = deployment(broker.bootstrap_servers, spec, partitions, Path(tmp))
        settings = fleet[0]
        ensure_topics(settings)
        workers = [Worker(s, logs / f"{spec.name}-worker{n}.log") for n, s in enumerate(fleet)]
        killed: dict[str, Any] = {}
        try:
            wait_for_groups(settings, [stateful_group(settings), scoring_group(settings)], workers)  # type: ignore[arg-type]
            deadline = time.monotonic() + 120
            while not all(w.answering() or not w.alive() for w in workers) and time.monotonic() < deadline:
                time.sleep(0.5)
            with Replayer(settings, drain=DrainPolicy(idle_s=30.0, max_s=900.0), progress=False) as replayer:
                started = time.monotonic()
                for first in range(0, len(warm), WARM_CHUNK):  # drained chunk by chunk: never thousands in flight
                    replayer.warm_up(warm[first:first + WARM_CHUNK])
                warm_undelivered = replayer.producer.failed
                print(f"[{spec.name}] warmed on {len(warm):,} clicks in {time.monotonic() - started:.0f} s "
                      f"({warm_undelivered} not delivered)", flush=True)

                def kill() -> None:
                    victim = workers[-1]
                    killed["partitions"] = victim.answering()
                    killed["at"] = time.time()
                    victim.signal(signal.SIGKILL)
                    print(f"[{spec.name}] SIGKILLed {victim.name} (answering partitions {killed['partitions']})",
                          flush=True)

                timer = threading.Timer(len(judged) / rate / 2, kill) if spec.kill else None
                if timer is not None:
                    timer.start()
                report = replayer.judge(judged, pacing=Pacing(rate_eps=rate), label=spec.name)
                tally = (replayer.latest.scorers[SCORER].overall
                         if replayer.latest and SCORER in replayer.latest.scorers else RankingMetrics())
                collector_gaps = dict(replayer.collector.guard.settled)
                undelivered = replayer.producer.failed
            died = [w.name for w in workers[:-1] if not w.alive()] + \
                ([workers[-1].name] if not spec.kill and not workers[-1].alive() else [])
            if died:
                print(f"[{spec.name}] WORKERS EXITED during the run (not comparable): {died}", flush=True)
            gaps: dict[str, float] = {f"collector/{k}": float(v) for k, v in collector_gaps.items() if v}
            for worker in workers:
                for key, value in worker.gaps().items():
                    gaps[key] = gaps.get(key, 0.0) + value
            recovery: dict[int, float | None] = {}
            if killed:
                dead = set(killed["partitions"])
                first = first_answers_after(settings, killed["at"], dead, timeout_s=60)
                recovery = {p: (first[p] - killed["at"]) if p in first else None for p in sorted(dead)}
        finally:
            for worker in workers:
                worker.stop()
    scorer = next((s for s in report.scorers if s.scorer == SCORER), None)
    if scorer is None:
        raise SystemExit(f"[{spec.name}] no answers from {SCORER}; see {logs}")
    result = RunResult(name=spec.name, workers=spec.workers, metrics={m: scorer.metrics[m] for m in METRICS},
                       judged=scorer.judged, answered=scorer.recommended, missing=scorer.missing,
                       missing_event_ids=scorer.missing_event_ids, duplicates=scorer.duplicates, gaps=gaps,
                       recovery_s=recovery, dead_partitions=sorted(killed.get("partitions", [])),
                       undelivered=undelivered)
    return result, tally


def load(args: argparse.Namespace) -> tuple[list[LoggedClick], list[LoggedClick], str]:
    train, test = DATA / "yoochoose-100k.train.tsv", DATA / "yoochoose-100k.test.tsv"
    if not args.synthetic and train.is_file() and test.is_file():
        warm, judged, name = load_clicks(train, "yoochoose"), load_clicks(test, "yoochoose"), "yoochoose-100k"
    else:
        clicks = load_clicks(None, "synthetic")
        cut = len(clicks) * 3 // 4
        warm, judged, name = clicks[:cut], clicks[cut:], "synthetic"
    if args.warm_limit is not None:
        warm = warm[-args.warm_limit:]
    if args.judge_limit is not None:
        judged = judged[: args.judge_limit]
    return warm, judged, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=500.0, help="judged clicks per second")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--workers", default="1,2,3", help="worker counts to run (the first is the baseline)")
    parser.add_argument("--no-kill", action="store_true", help="skip the run with a worker SIGKILLed mid-stream")
    parser.add_argument("--local-baseline", action="store_true",
                        help="also run 2 workers learning only their partitions (scoring.learn_whole_stream=false)")
    parser.add_argument("--synthetic", action="store_true", help="the synthetic stream even when the data is there")
    parser.add_argument("--warm-limit", type=int, help="warm on the last N train clicks only")
    parser.add_argument("--judge-limit", type=int, help="judge the first N test clicks only")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "scaleout")
    args = parser.parse_args()
    warm, judged, dataset = load(args)
    args.out.mkdir(parents=True, exist_ok=True)
    counts = [int(n) for n in args.workers.split(",")]
    specs = [RunSpec(f"{n}w", n) for n in counts]
    if not args.no_kill:
        specs.insert(min(2, len(specs)), RunSpec("2w-kill", 2, kill=True))
    if args.local_baseline:
        specs.append(RunSpec("2w-local", 2, whole_stream=False))
    print(f"{dataset}: warm {len(warm):,} clicks, judged {len(judged):,} at {args.rate:g}/s, "
          f"{args.partitions} partitions; runs {[s.name for s in specs]}", flush=True)
    results: list[RunResult] = []
    tallies: dict[str, RankingMetrics] = {}
    for spec in specs:
        result, tally = one_run(spec, warm, judged, args.rate, args.partitions, args.out)
        results.append(result)
        tallies[spec.name] = tally
        print(f"[{spec.name}] HR@20 {result.metrics['HR@20']:.4f} MRR@20 {result.metrics['MRR@20']:.4f} "
              f"judged {result.judged:,} missing {result.missing} duplicates {result.duplicates} gaps {result.gaps} "
              f"recovery {result.recovery_s} undelivered {result.undelivered}", flush=True)
        (args.out / "scaleout-partial.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    baseline = specs[0].name
    for result in results[1:]:
        for metric in METRICS:
            diff = paired_difference(tallies[result.name], tallies[baseline], metric, (result.name, baseline))
            result.paired[metric] = {"diff": diff.diff, "ci95": list(diff.ci95), "predictions": diff.predictions,
                                     "groups": diff.groups, "verdict": diff.verdict}
    print(f"\n{dataset}, {len(judged):,} clicks judged at {args.rate:g}/s, {args.partitions} partitions, "
          f"scorer {SCORER}")
    print(f"{'run':<10} {'HR@20':>7} {'MRR@20':>7}  {'HR@20 - ' + baseline + ' [95%]':<34} "
          f"{'MRR@20 - ' + baseline + ' [95%]':<34} {'missing':>7} {'dup':>5}  gaps; recovery")
    for r in results:
        pair = [f"{p['diff']:+.4f} [{p['ci95'][0]:+.4f}, {p['ci95'][1]:+.4f}]" for p in
                (r.paired.get(m) for m in METRICS) if p] or ["(baseline)", ""]
        recovery = "; recovery " + ", ".join(f"p{p} {s:.1f} s" if s is not None else f"p{p} none" for p, s in
                                             r.recovery_s.items()) if r.recovery_s else ""
        print(f"{r.name:<10} {r.metrics['HR@20']:>7.4f} {r.metrics['MRR@20']:>7.4f}  {pair[0]:<34} "
              f"{pair[-1] if len(pair) > 1 else '':<34} {r.missing:>7} {r.duplicates:>5}  {r.gaps or 'none'}{recovery}")
        if r.missing_event_ids:
            print(f"           missing: {', '.join(r.missing_event_ids)}")
        if r.undelivered:
            print(f"           NOT COMPARABLE: {r.undelivered} clicks were not delivered to the broker")
    out = args.out / "scaleout.json"
    out.write_text(json.dumps({"dataset": dataset, "rate_eps": args.rate, "partitions": args.partitions,
                               "judged_clicks": len(judged), "warm_clicks": len(warm),
                               "runs": [asdict(r) for r in results]}, indent=1))
    print(f"\nreport: {out}; worker logs: {args.out}")


if __name__ == "__main__":
    main()
