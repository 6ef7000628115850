"""`streamrec serve` keeps its store in state.dir too: it checks and records the folder's identity like a worker."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from streamrec.config import Settings
from streamrec.state.local import StateIdentity, read_identity, write_identity
from streamrec.stream.admin import ensure_topics
from streamrec.stream.stages.state_identity import claim_deployment

pytestmark = pytest.mark.slow


def test_an_api_started_first_does_not_make_the_worker_refuse_the_folder(
    make_settings: Callable[..., Settings], spawn_worker: Callable, spawn_api: Callable
) -> None:
    """After `streamrec state clear` on a cluster that has a deployment, the API restarted before the worker
    created its store unrecorded; the worker then took the folder for one copied from elsewhere and refused
    it, telling the user to clear it again."""
    settings = make_settings()
    ensure_topics(settings)
    deployment = claim_deployment(settings)  # an existing cluster
    api = spawn_api(settings)
    api.wait_healthy()
    worker = spawn_worker(settings, role="stateful")
    deadline = time.monotonic() + 60
    while worker.alive and "worker starting" not in worker.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker.alive and "worker starting" in worker.log(), worker.log()[-3000:]
    recorded = read_identity(settings.state.dir)
    assert recorded is not None and recorded.deployment_id == deployment  # the API recorded it


def test_the_api_refuses_a_folder_built_against_another_cluster(
    make_settings: Callable[..., Settings], spawn_api: Callable
) -> None:
    settings = make_settings()
    ensure_topics(settings)
    claim_deployment(settings)
    write_identity(settings.state.dir, StateIdentity("elsewhere", None, settings.kafka.topic_prefix))
    (settings.state.dir / "api-8000").mkdir()  # a store built there (only an identity file: nothing to reuse)
    api = spawn_api(settings)
    assert api.process.wait(timeout=60) == 1
    log = api.log()
    assert "streamrec serve: local state in" in log and "streamrec state clear" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
