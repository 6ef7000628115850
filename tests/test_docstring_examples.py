"""Every `>>>` example in the package's docstrings runs as written, against a real deployment.

The examples are usage (send a click, follow the recommendations, replay a log), so they run the
way a user would: `load_settings()` reads a fresh deployment on the test broker from STREAMREC_*
variables, and a worker answers the clicks. A module that gains examples is found and run here
without a change to this file.
"""

from __future__ import annotations

import doctest
import importlib
import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from streamrec.config import Settings
from streamrec.stream.harness.demo import settings_env, wait_for_groups, worker_process
from streamrec.stream.kafka import scoring_group, stateful_group

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"streamrec": "streamrec", "stream": "streamrec.stream", "state": "streamrec.state",
            "models": "streamrec.models", "config": "streamrec.config"}
"""Folder -> import package (setup.py's mapping)."""


def modules_with_examples() -> list[str]:
    """Import names of the package's modules whose source holds a `>>>` example."""
    found = []
    for folder, package in PACKAGES.items():
        for path in sorted((REPO_ROOT / folder).rglob("*.py")):
            if ">>>" in path.read_text():
                parts = path.relative_to(REPO_ROOT / folder).with_suffix("").parts
                found.append(".".join((package, *(parts[:-1] if parts[-1] == "__init__" else parts))))
    return found


def test_the_modules_with_examples_are_found() -> None:
    assert {"streamrec.stream.broker", "streamrec.stream.clients.producer"} <= set(modules_with_examples())


def test_every_docstring_example_runs(stream_settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    for name, value in settings_env(stream_settings).items():
        monkeypatch.setenv(name, value)
    failed: dict[str, str] = {}
    with worker_process("worker", "all", stream_settings.state.engine, stream_settings, tmp_path) as worker:
        wait_for_groups(stream_settings, [stateful_group(stream_settings), scoring_group(stream_settings)], [worker])
        for name in modules_with_examples():
            finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
            report = io.StringIO()
            for test in finder.find(importlib.import_module(name)):
                runner.run(test, out=report.write)
            with redirect_stdout(report):
                failures, tries = runner.summarize(verbose=False)
            if failures or not tries:
                failed[name] = report.getvalue() or "no example found"
    assert not failed, "\n".join(f"{name}:\n{report}" for name, report in failed.items())
