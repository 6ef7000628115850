"""The engine contract and registry: one list of engines for settings, worker, CLI, benches and tests.

No broker, no engine run: the registry is read, and a third engine is registered for the length of a test.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass

import pydantic
import pytest
from typer.testing import CliRunner

from streamrec.config import Settings, load_settings
from streamrec.errors import settings_error_line
from streamrec.stream.stages.engines import registry
from streamrec.stream.stages.engines.registry import ENGINES, Engine, engine_names, get_engine, stateful_memory_bound_mb


@dataclass(frozen=True)
class _ThirdEngine:
    """An engine that is neither quix nor faust: it must not take either's memory bound or module."""

    name: str = "third"
    summary: str = "a test engine"

    def run(self, settings: Settings, stop: threading.Event | None = None) -> None:
        raise AssertionError("not run here")

    def check(self, settings: Settings) -> None:
        pass

    def memory_bound_mb(self, settings: Settings, partitions_per_process: int, max_state_bytes: int) -> float:
        return 42.0


def test_every_engine_names_a_module_with_its_stage() -> None:
    assert engine_names()[0] == load_settings().state.engine  # the default of state.engine comes first
    for name, engine in ENGINES.items():
        assert engine.name == name and engine.summary
        module = importlib.import_module(engine.module)  # type: ignore[attr-defined]
        assert callable(module.run_stateful_stage), name


def test_an_unknown_engine_is_refused_by_settings_in_one_line_naming_the_choices() -> None:
    with pytest.raises(pydantic.ValidationError) as refused:
        load_settings(state={"engine": "flink"})
    line = settings_error_line(refused.value)
    assert "STREAMREC_STATE__ENGINE" in line and "'flink'" in line and "\n" not in line, line
    assert all(name in line for name in engine_names()), line
    with pytest.raises(KeyError, match="choose one of"):
        get_engine("flink")


def test_a_registered_engine_is_accepted_everywhere_and_keeps_its_own_memory_bound(
        monkeypatch: pytest.MonkeyPatch) -> None:
    third: Engine = _ThirdEngine()
    monkeypatch.setitem(ENGINES, third.name, third)
    settings = load_settings(state={"engine": "third"})
    assert "third" in engine_names() and get_engine("third") is third
    assert stateful_memory_bound_mb(settings, partitions_per_process=2, max_state_bytes=1024) == 42.0
    assert registry.ENGINES is ENGINES


def test_worker_and_cli_list_the_registry() -> None:
    from streamrec.cli import app
    from streamrec.stream.worker import ENGINES as WORKER_ENGINES

    assert WORKER_ENGINES == engine_names()
    for command in ("worker", "demo"):
        shown = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
        assert shown.exit_code == 0 and " | ".join(engine_names()) in shown.output, shown.output


def test_the_faust_engine_refuses_client_settings_aiokafka_cannot_honour_before_it_starts() -> None:
    from streamrec.stream.kafka import ClientConfigError

    settings = load_settings(kafka={"client_config": {"security.protocol": "SASL_SSL",
                                                      "sasl.mechanism": "OAUTHBEARER"}})
    with pytest.raises(ClientConfigError, match="quix engine"):
        get_engine("faust").check(settings)
    get_engine("quix").check(settings)  # librdkafka takes every sasl.*/ssl.* key
