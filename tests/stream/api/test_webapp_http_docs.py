"""docs/webapp.md's HTTP example runs as written against a real worker and `streamrec serve`.

The ```console block of the page's HTTP section is parsed into its `$ ` commands and the output
printed under each. Its `streamrec serve` line starts the API (the doc's options, on a free
port instead of 8000); every `$ curl` line then runs through bash exactly as written, with
`localhost:8000` pointed at that port, and its answer must carry the documented fields: the
POSTs their click's `event_id` and the topic, the GET (polled: the answer is asynchronous, as
the page says) the answer to the last posted click, for the documented session and scorer.
The Kafka examples of the same page have their own test (tests/stream/clients/test_webapp_docs.py).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from test_api_http import FAST_KAFKA

from streamrec.config import Settings
from streamrec.stream.admin import ensure_topics
from streamrec.stream.topics import Recommendation, Topics

if TYPE_CHECKING:
    from conftest import ApiProcess  # tests/stream/api/conftest.py

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[3] / "docs" / "webapp.md"
DOC_ADDRESS = "localhost:8000"
ANSWER_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Step:
    """One `$ ` command of the console block and the output documented under it (continuation lines joined)."""

    command: str
    output: str

    @property
    def documented(self) -> dict[str, Any]:
        return dict(json.loads(self.output))


def http_console_steps() -> list[Step]:
    text = DOC.read_text()
    section = re.search(r"^## .*HTTP.*$", text, flags=re.MULTILINE)
    assert section is not None, f"no HTTP section in {DOC}"
    block = re.search(r"```console\n(.*?)```", text[section.end():], flags=re.DOTALL)
    assert block is not None, f"no console example in the HTTP section of {DOC}"
    steps: list[tuple[str, list[str]]] = []
    for line in block.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before the first command in {DOC}: {line!r}"
            steps[-1][1].append(line)
    return [Step(command, "\n".join(lines)) for command, lines in steps]


def posted_click(step: Step) -> dict[str, Any]:
    """The JSON body a `curl ... -d '...'` command posts."""
    argv = shlex.split(step.command)
    return dict(json.loads(argv[argv.index("-d") + 1]))


def curl(step: Step, api: ApiProcess) -> dict[str, Any]:
    """Run the documented curl command through bash, against the test's API; the JSON it printed."""
    assert DOC_ADDRESS in step.command, f"{step.command!r} does not address {DOC_ADDRESS} like the rest of the example"
    command = step.command.replace(DOC_ADDRESS, f"localhost:{api.port}")
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"{command!r} exited {result.returncode}: {result.stderr}\n{api.log()[-2000:]}"
    return dict(json.loads(result.stdout))


def test_the_documented_answers_have_the_record_fields() -> None:
    """The record the page shows (on the topic and over HTTP) is the whole `Recommendation` schema."""
    fields = set(Recommendation.model_fields)
    kafka_record = re.search(r"```json\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert kafka_record is not None
    assert set(json.loads(kafka_record.group(1))) == fields
    gets = [s for s in http_console_steps() if s.command.startswith("curl") and "-d" not in shlex.split(s.command)]
    assert gets and all(set(s.documented) == fields for s in gets)


def test_http_console_example_runs_as_written(
    make_settings: Callable[..., Settings], spawn_worker: Callable, spawn_api: Callable
) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed: docs/webapp.md's HTTP example was NOT executed (apt-get install curl)")
    steps = http_console_steps()
    serve, calls = steps[0], steps[1:]
    argv = shlex.split(serve.command, comments=True)
    assert argv[:2] == ["streamrec", "serve"] and not serve.output, serve
    options = dict(zip(argv[2::2], argv[3::2], strict=True))
    assert set(options) <= {"--host", "--port"} and options["--port"] == DOC_ADDRESS.split(":")[1], options
    assert calls and all(s.command.startswith("curl ") for s in calls), calls

    settings = make_settings(kafka=FAST_KAFKA)
    ensure_topics(settings)
    spawn_worker(settings)
    api: ApiProcess = spawn_api(settings, host=options.get("--host", settings.api.host))
    api.wait_healthy()

    last_click: dict[str, Any] | None = None
    answered = 0
    for step in calls:
        documented = step.documented
        if "-d" in shlex.split(step.command):  # POST /clicks
            last_click = posted_click(step)
            body = curl(step, api)
            assert set(body) == set(documented), (step.command, body)
            assert body["event_id"] == documented["event_id"] == last_click["event_id"], body
            assert body["topic"] == Topics(settings.kafka.topic_prefix).clicks and documented["topic"] == "clicks"
            assert isinstance(body["partition"], int) and isinstance(body["offset"], int), body
            continue
        # GET: the answer is asynchronous; poll until it answers the click posted last, as the page says.
        assert last_click is not None, "the example asks for recommendations before posting a click"
        assert documented["event_id"] == last_click["event_id"], "the documented GET does not answer the last POST"
        assert documented["session_id"] == last_click["session_id"]
        deadline = time.monotonic() + ANSWER_TIMEOUT_S
        body = curl(step, api)
        while body.get("event_id") != last_click["event_id"]:
            if "event_id" not in body:  # 404 until the session's first answer: {"detail": ..., "scorers": [...]}
                assert set(body) == {"detail", "scorers"}, (step.command, body)
            assert time.monotonic() < deadline, (f"{step.command!r} never answered {last_click['event_id']}: {body}\n"
                                                 f"{api.log()[-2000:]}")
            time.sleep(0.1)
            body = curl(step, api)
        assert set(body) == set(documented), (step.command, body)
        for key in ("session_id", "user_id", "ts_event", "scorer"):
            assert body[key] == documented[key], (key, body, documented)
        assert body["scorer"] == settings.scoring.scorer
        assert isinstance(body["items"], list) and documented["items"], body
        assert all(set(entry) == set(documented["items"][0]) for entry in body["items"]), body
        answered += 1
    assert answered, "the example never asks for the recommendations of the clicks it posts"
