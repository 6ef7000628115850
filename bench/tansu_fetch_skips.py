"""Reproduces the embedded broker's skipped records: one-record batches plus short fetch waits.

Runs `--runs` short replays (the synthetic log of tests/stream/harness/test_replay.py, a worker and a
shadow popularity scorer per run) on one embedded Tansu broker with the given
`kafka.single_record_batches` and `kafka.fetch_wait_max_ms`, and counts the answers the
replay never received. Read back from the broker after such a run, the missing answers were
there (checked by hand): a consumer skipped them. Why `KafkaSettings` refuses one-record
batches with fetch waits under 500 ms.

    .venv/bin/python bench/tansu_fetch_skips.py --fetch-wait-ms 10 --single-record-batches [--runs 10]
"""

from __future__ import annotations

import argparse
import tempfile
import uuid
from pathlib import Path

from streamrec.config import Settings, load_settings
from streamrec.config.settings import KafkaSettings
from streamrec.state.clicklog.synthetic import SyntheticSpec, generate
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker
from streamrec.stream.harness.demo import shadow_settings, wait_for_groups, worker_process
from streamrec.stream.harness.replay import DrainPolicy, replay
from streamrec.stream.kafka import scoring_group, stateful_group

SMALL = SyntheticSpec(users=20, sessions=80, items=60, intents=4, days=2.0)


def _with_fetch_wait(settings: Settings, fetch_wait_ms: int) -> Settings:
    """`settings` with another fetch wait, bypassing the guard this script exists to justify."""
    kafka = KafkaSettings.model_construct(**{**settings.kafka.model_dump(), "fetch_wait_max_ms": fetch_wait_ms})
    return settings.model_copy(update={"kafka": kafka})


def one_run(bootstrap: str, fetch_wait_ms: int, single_record_batches: bool) -> int:
    """Answers (of either scorer) that never reached the replay in one run.

    The workers run with a 500 ms fetch wait (the settings they load refuse less with one-record
    batches); only the replay's own consumer uses `fetch_wait_ms`.
    """
    log = sorted(generate(SMALL), key=lambda c: c.ts)
    with tempfile.TemporaryDirectory(prefix="skips-") as state_dir:
        tag = uuid.uuid4().hex[:8]
        settings = load_settings(
            kafka={"bootstrap_servers": bootstrap, "topic_prefix": f"skip{tag}.", "consumer_group": f"skip{tag}",
                   "partitions": 2, "session_timeout_ms": 2000, "single_record_batches": single_record_batches,
                   "fetch_wait_max_ms": 500},
            state={"dir": Path(state_dir) / "state"})
        ensure_topics(settings)
        shadow = shadow_settings(settings, "pop")
        logs = Path(state_dir)
        with worker_process("worker", "all", "quix", settings, logs) as worker, \
                worker_process("shadow", "scoring", "quix", shadow, logs) as shadow_worker:
            wait_for_groups(settings, [stateful_group(settings), scoring_group(settings), scoring_group(shadow)],
                            [worker, shadow_worker])
            report = replay(_with_fetch_wait(settings, fetch_wait_ms), log[len(log) // 2:], warm=log[: len(log) // 2],
                            drain=DrainPolicy(idle_s=8.0, scorers=2), progress=False)
    return sum(s.missing for s in report.scorers) + (2 - len(report.scorers)) * report.counts.sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fetch-wait-ms", type=int, default=10)
    parser.add_argument("--single-record-batches", action="store_true")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with EmbeddedBroker() as broker:
        lost = [one_run(broker.bootstrap_servers, args.fetch_wait_ms, args.single_record_batches)
                for _ in range(args.runs)]
    print(f"fetch_wait_max_ms={args.fetch_wait_ms} single_record_batches={args.single_record_batches}: "
          f"runs with a lost answer {sum(1 for n in lost if n)}/{len(lost)} (answers lost per run: {lost})")


if __name__ == "__main__":
    main()
