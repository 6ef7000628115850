"""Shared fixtures: one real broker per test session, an isolated deployment per test, worker subprocesses.

- `broker`: bootstrap address of one embedded Tansu broker started for the whole session
  (or of an existing cluster named by $STREAMREC_TEST_BOOTSTRAP_SERVERS). No Kafka mocks.
- `make_settings(**groups)`: Settings for a fresh deployment on that broker: its own topic
  prefix, consumer group and state dir, a short session timeout (group joins take about half
  of it), single-record batches (Tansu's watermarks) with the fetch wait they need, 2 partitions; keyword groups
  override (`make_settings(scoring={"top_k": 5})`). `stream_settings` is `make_settings()` with topics created.
- `spawn_worker(settings, role=..., engine=...)`: `python -m streamrec worker` as a real
  subprocess configured only through STREAMREC_* env vars; SIGKILL-able; killed at teardown.
- `tail_topic(settings, topic)`: a `TopicTail` reading a topic from its start; `wait_for(done)`
  polls until a condition on everything read so far holds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Message
from confluent_kafka.admin import AdminClient

from streamrec.config import Settings, load_settings
from streamrec.config.settings import SAFE_FETCH_WAIT_WITH_SINGLE_RECORD_BATCHES_MS
from streamrec.stream.admin import ensure_topics
from streamrec.stream.harness.demo import settings_env  # the one mapping of Settings to STREAMREC_* variables

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_SESSION_TIMEOUT_MS = 2000
TEST_PARTITIONS = 2


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """Bootstrap servers of the session's broker."""
    external = os.environ.get("STREAMREC_TEST_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    from streamrec.stream.broker import EmbeddedBroker

    with EmbeddedBroker() as embedded:
        yield embedded.bootstrap_servers


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(broker: str, tmp_path: Path) -> Iterator[SettingsFactory]:
    """A factory of Settings isolated to this test (unique topic prefix, group and state dir).

    At teardown the test's topics are deleted: the embedded broker keeps every record in memory
    and its fetches slow as it fills, so a long suite would otherwise slow down test by test.
    """
    prefixes: list[str] = []

    def make(**groups: dict[str, Any]) -> Settings:
        tag = uuid.uuid4().hex[:8]
        prefixes.append(f"t{tag}.")  # an override (`topic_prefix=""`) is not deleted: it may name shared topics
        kafka = {
            "bootstrap_servers": broker,
            "topic_prefix": f"t{tag}.",
            "consumer_group": f"g{tag}",
            "partitions": TEST_PARTITIONS,
            "session_timeout_ms": TEST_SESSION_TIMEOUT_MS,
            "single_record_batches": True,
            "fetch_wait_max_ms": SAFE_FETCH_WAIT_WITH_SINGLE_RECORD_BATCHES_MS,
            **groups.pop("kafka", {}),
        }
        if kafka["topic_prefix"] != f"t{tag}.":
            prefixes.remove(f"t{tag}.")
        state = {"dir": tmp_path / f"state-{tag}", **groups.pop("state", {})}
        return load_settings(kafka=kafka, state=state, **groups)

    yield make
    _delete_topics(broker, prefixes)


def _delete_topics(bootstrap_servers: str, prefixes: list[str]) -> None:
    """Delete every topic whose name starts with one of `prefixes` (best effort: a test's leftovers only cost speed)."""
    if not prefixes:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    try:
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(tuple(prefixes))]
        for future in admin.delete_topics(names, operation_timeout=10).values() if names else ():
            future.exception(timeout=10)
    except Exception as exc:  # noqa: BLE001 - clean-up must never fail a test that passed
        print(f"topic clean-up skipped: {exc!r}")


@pytest.fixture
def stream_settings(make_settings: SettingsFactory) -> Settings:
    """Default test settings with the deployment's topics already created."""
    settings = make_settings()
    ensure_topics(settings)
    return settings


class WorkerProcess:
    """`python -m streamrec worker` in its own process group, output captured to a log file."""

    def __init__(self, settings: Settings, log_path: Path, role: str = "all", engine: str | None = None) -> None:
        self.log_path = log_path
        self.role = role
        command = [sys.executable, "-m", "streamrec", "worker", "--role", role]
        if engine:
            command += ["--engine", engine]
        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
        env.update(settings_env(settings))
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group (the worker and any stage child): a crash, no clean-up."""
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM, wait for a clean exit; SIGKILL if it does not come. Returns the exit status."""
        self._signal_group(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.process.returncode

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def spawn_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start worker subprocesses; every one still alive at teardown is killed."""
    started: list[WorkerProcess] = []

    def spawn(settings: Settings, role: str = "all", engine: str | None = None) -> WorkerProcess:
        worker = WorkerProcess(settings, tmp_path / f"worker-{len(started)}.log", role=role, engine=engine)
        started.append(worker)
        return worker

    yield spawn
    for index, worker in enumerate(started):
        if worker.alive:
            worker.kill()
        # pytest shows teardown output only for a failed test: the workers' own words come with the failure
        tail = worker.log()[-4000:]
        print(f"--- worker {index} ({worker.role}, exit {worker.process.returncode}) log tail ---\n{tail}")


class TopicTail:
    """Every record of one topic from its beginning, accumulated across `wait_for` calls."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.records: list[Message] = []
        self._consumer = Consumer({
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": f"tail-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": TEST_SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": TEST_SESSION_TIMEOUT_MS // 3,
        })
        self._consumer.subscribe([topic])

    def wait_for(self, done: Callable[[list[Message]], bool], timeout_s: float = 60.0) -> list[Message]:
        """Poll until `done(records)` holds or the timeout passes; return the records either way."""
        deadline = time.monotonic() + timeout_s
        while not done(self.records) and time.monotonic() < deadline:
            self.records.extend(m for m in self._consumer.consume(num_messages=1000, timeout=0.2) if m.error() is None)
        return self.records

    def close(self) -> None:
        self._consumer.close()


@pytest.fixture
def tail_topic() -> Iterator[Callable[[Settings, str], TopicTail]]:
    """`tail_topic(settings, topic)` opens a TopicTail; all are closed at teardown."""
    tails: list[TopicTail] = []

    def open_tail(settings: Settings, topic: str) -> TopicTail:
        tails.append(TopicTail(settings, topic))
        return tails[-1]

    yield open_tail
    for tail in tails:
        tail.close()
