"""Broker health of a real worker process.

- No broker at start: the worker retries with one log line per attempt and no traceback, and
  serves once a broker comes up on the bootstrap address; with `health.broker_wait_max_s` it
  gives up with one line and status 1.
- Broker lost mid-stream: `streamrec_healthy` turns 0 and the worker exits non-zero after
  `health.broker_lost_exit_s`; a SIGTERM during the loss ends the worker within
  `health.shutdown_timeout_s` (today's worker hangs in its final commit).
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Callable, Iterator

import pytest
from ops_helpers import scrape, send_clicks, wait_until

from streamrec.config import Settings
from streamrec.stream.broker import EmbeddedBroker, free_port
from streamrec.stream.topics import Topics

FAST_RETRY = {"broker_retry_initial_ms": 200, "broker_retry_max_ms": 800}


def _attempt_numbers(log: str) -> list[int]:
    return [int(n) for n in re.findall(r"not reachable \(attempt (\d+),", log)]


def test_worker_waits_for_a_broker_that_starts_later_then_answers(
    make_settings: Callable[..., Settings], spawn_worker: Callable, tail_topic: Callable
) -> None:
    port = free_port()
    settings = make_settings(kafka={"bootstrap_servers": f"127.0.0.1:{port}"}, health=FAST_RETRY)
    worker = spawn_worker(settings)
    assert wait_until(lambda: len(_attempt_numbers(worker.log())) >= 3, timeout_s=60), worker.log()
    assert worker.alive, worker.log()
    with EmbeddedBroker(port=port):
        assert wait_until(lambda: "worker starting" in worker.log(), timeout_s=60), worker.log()
        ids = send_clicks(settings, 3)
        tail = tail_topic(settings, Topics(settings.kafka.topic_prefix).recommendations)
        answers = tail.wait_for(lambda records: len(records) >= len(ids), timeout_s=90)
        assert len(answers) >= len(ids), worker.log()
        log = worker.log()
        attempts = _attempt_numbers(log)
        assert attempts == list(range(1, len(attempts) + 1)), log  # one line per attempt, in order
        assert "Traceback" not in log and "Connection refused" not in log, log
        assert worker.terminate() == 0, worker.log()


def test_worker_gives_up_after_broker_wait_max_with_one_line(
    make_settings: Callable[..., Settings], spawn_worker: Callable
) -> None:
    settings = make_settings(kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"},
                             health={**FAST_RETRY, "broker_wait_max_s": 1.0})
    worker = spawn_worker(settings)
    status = worker.process.wait(timeout=60)
    log = worker.log()
    assert status == 1, log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and "no Kafka broker reachable at" in errors[0] and "streamrec broker" in errors[0], log
    assert "Traceback" not in log, log


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A broker this test may stop (the session's is shared)."""
    broker = EmbeddedBroker().start()
    yield broker
    broker.stop()


def _serving_worker(make_settings: Callable[..., Settings], spawn_worker: Callable, tail_topic: Callable,
                    broker: EmbeddedBroker, health: dict[str, float]) -> tuple[Settings, object, int]:
    port = free_port()
    settings = make_settings(kafka={"bootstrap_servers": broker.bootstrap_servers}, metrics_port=port,
                             health={"probe_interval_ms": 300, **health})
    worker = spawn_worker(settings)
    assert wait_until(lambda: "worker starting" in worker.log(), timeout_s=60), worker.log()
    ids = send_clicks(settings, 2)
    tail = tail_topic(settings, Topics(settings.kafka.topic_prefix).recommendations)
    assert len(tail.wait_for(lambda records: len(records) >= len(ids), timeout_s=90)) >= len(ids), worker.log()
    assert scrape(port).get(("streamrec_healthy", ())) == 1.0, worker.log()
    tail.close()
    return settings, worker, port


def test_broker_lost_turns_unhealthy_and_exits_non_zero(
    make_settings: Callable[..., Settings], spawn_worker: Callable, tail_topic: Callable, own_broker: EmbeddedBroker
) -> None:
    _, worker, port = _serving_worker(make_settings, spawn_worker, tail_topic, own_broker,
                                      {"broker_lost_exit_s": 4.0, "shutdown_timeout_s": 5.0})
    own_broker.stop()
    assert wait_until(lambda: scrape(port).get(("streamrec_healthy", ())) == 0.0, timeout_s=30), worker.log()
    status = worker.process.wait(timeout=90)  # by itself: nobody signals it
    assert status == 3, worker.log()  # EXIT_BROKER_LOST
    assert "unhealthy for" in worker.log() and "Traceback" not in worker.log(), worker.log()


def test_sigterm_during_broker_loss_stops_within_the_shutdown_timeout(
    make_settings: Callable[..., Settings], spawn_worker: Callable, tail_topic: Callable, own_broker: EmbeddedBroker
) -> None:
    _, worker, port = _serving_worker(make_settings, spawn_worker, tail_topic, own_broker,
                                      {"broker_lost_exit_s": 0.0, "shutdown_timeout_s": 3.0})
    own_broker.stop()
    assert wait_until(lambda: scrape(port).get(("streamrec_healthy", ())) == 0.0, timeout_s=30), worker.log()
    worker._signal_group(signal.SIGTERM)
    try:
        worker.process.wait(timeout=45)  # the bound is 3 s; the rest is slack for a loaded machine
    except subprocess.TimeoutExpired:
        pytest.fail("the worker did not stop after SIGTERM while the broker was gone:\n" + worker.log())
    assert "Traceback" not in worker.log(), worker.log()
