"""Local state from another cluster is never reused silently.

Reproduction: a stateful worker builds session state against broker A and stops; the same state
folder is then pointed at broker B, a fresh cluster with the same topic names. Before this check,
Quix reused the folder: the first click of session `s` on B came out with A's clicks of `s` in
its session (the store's changelog offset was below B's, so no InvalidStoreChangelogOffset). Now
the worker refuses to start, with one line naming `streamrec state clear`, and after that command
it starts afresh on B.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Producer

from streamrec.config import Settings
from streamrec.state.local import StateIdentity, identity_lock, read_identity, write_identity
from streamrec.stream.admin import ensure_topics
from streamrec.stream.broker import EmbeddedBroker
from streamrec.stream.stages.state_identity import StaleStateError, check_local_state, claim_deployment
from streamrec.stream.topics import ScoringRequest, Topics

REPO_ROOT = Path(__file__).resolve().parents[3]


def send(settings: Settings, session: str, items: list[str], tag: str) -> None:
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers, "batch.num.messages": 1})
    for n, item in enumerate(items):
        click = {"event_id": f"{tag}-{n}", "session_id": session, "user_id": None, "item_id": item,
                 "ts": time.time() - 60 + n, "type": "view"}
        producer.produce(Topics(settings.kafka.topic_prefix).clicks, key=session.encode(), value=orjson.dumps(click))
    assert producer.flush(30) == 0


def sessions_seen(tail: object, event_ids: set[str]) -> dict[str, list[str]]:
    records = tail.wait_for(  # type: ignore[attr-defined]
        lambda rs: event_ids <= {ScoringRequest.model_validate_json(m.value()).event_id for m in rs}, timeout_s=90)
    requests = [ScoringRequest.model_validate_json(m.value()) for m in records]
    return {r.event_id: r.session_items for r in requests}


@pytest.mark.slow
def test_a_state_folder_from_another_cluster_is_refused_not_reused(make_settings: Callable[..., Settings],
                                                                    spawn_worker: Callable,
                                                                    tail_topic: Callable) -> None:
    on_a = make_settings()
    ensure_topics(on_a)
    tail_a = tail_topic(on_a, Topics(on_a.kafka.topic_prefix).scoring_requests)
    worker = spawn_worker(on_a, role="stateful")
    send(on_a, "s", ["a1", "a2", "a3"], "A")
    seen = sessions_seen(tail_a, {"A-0", "A-1", "A-2"})
    assert seen["A-2"] == ["a1", "a2", "a3"], worker.log()[-3000:]
    assert worker.terminate() == 0, worker.log()[-3000:]

    with EmbeddedBroker() as other:
        kafka = on_a.kafka.model_copy(update={"bootstrap_servers": other.bootstrap_servers})
        on_b = on_a.model_copy(update={"kafka": kafka})  # same topics, group and state folder; another cluster
        ensure_topics(on_b)
        tail_b = tail_topic(on_b, Topics(on_b.kafka.topic_prefix).scoring_requests)
        send(on_b, "x", ["b1", "b2", "b3", "b4", "b5"], "X")  # B's changelog gets longer than A's was
        send(on_b, "s", ["b9"], "B")
        worker = spawn_worker(on_b, role="stateful")
        deadline = time.monotonic() + 90
        while worker.alive and time.monotonic() < deadline:
            records = tail_b.wait_for(lambda rs: any(b"B-0" in m.value() for m in rs), timeout_s=1)
            if any(b"B-0" in m.value() for m in records):
                break
        reused = [r for r in sessions_seen(tail_b, set()).items() if r[0] == "B-0"]
        assert not reused, f"the state folder from cluster A was reused: session s on B is {reused[0][1]}"
        status = worker.process.wait(timeout=60)
        log = worker.log()
        assert status == 1, log[-3000:]
        refusal = [line for line in log.splitlines() if "streamrec state clear" in line]
        assert refusal and "Traceback" not in log, log[-3000:]

        env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMREC_")}
        env["STREAMREC_STATE__DIR"] = str(on_b.state.dir)
        cleared = subprocess.run([sys.executable, "-m", "streamrec", "state", "clear", "--yes"], cwd=REPO_ROOT, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert cleared.returncode == 0, cleared.stderr
        worker = spawn_worker(on_b, role="stateful")
        seen = sessions_seen(tail_b, {"B-0"})
        assert seen["B-0"] == ["b9"], worker.log()[-3000:]
        assert worker.terminate() == 0


def _check_in_child(settings: Settings) -> None:
    try:
        check_local_state(settings)
    except StaleStateError as exc:
        raise SystemExit(f"refused: {exc}") from None


def test_a_process_sharing_the_folder_waits_for_the_first_to_record_it(make_settings: Callable[..., Settings]) -> None:
    """A worker and its shadow start on one folder. The shadow looked while the worker had created stores but
    not yet recorded the identity (the cluster already had its id, written by the worker), took the folder for
    one copied from elsewhere and exited 1 (CI, stop 21). Now it waits on the folder's identity lock."""
    settings = make_settings()
    deployment = claim_deployment(settings)
    child = multiprocessing.get_context("spawn").Process(target=_check_in_child, args=(settings,))
    with identity_lock(settings.state.dir):  # the first process, midway through its check
        (settings.state.dir / "stores").mkdir()
        child.start()
        child.join(timeout=5)
        assert child.exitcode is None, "the second process did not wait for the identity lock"
        write_identity(settings.state.dir, StateIdentity(deployment, None, settings.kafka.topic_prefix))
    child.join(timeout=60)
    assert child.exitcode == 0
    assert read_identity(settings.state.dir).deployment_id == deployment  # type: ignore[union-attr]
