"""The stateful-stage engines: what an engine provides (`Engine`), and the one table of them (`ENGINES`).

Why a registry: the worker, the `state.engine` setting, the CLI's help, the benches and the tests
all need the list of engines, and each engine differs in how it runs, in what settings it can
honour and in how its memory grows with the settings. With one entry per engine here, a new
engine brings all of that with it (no module name built from the setting, no memory formula that
takes another engine's branch), and a name that is not here is refused by settings validation in
one line.

This module imports no engine: each entry names the module holding its `run_stateful_stage`,
imported only when that engine runs (faust alone takes seconds to import), so settings
validation and the CLI can read the table cheaply.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from streamrec.stream.observability.stage_errors import ConfigurationError
from streamrec.stream.stages.engines.common import MemoryShape, memory_bound_mb

if TYPE_CHECKING:
    from streamrec.config import Settings


class Engine(Protocol):
    """A stream engine that runs the stateful stage (clicks -> state -> scoring requests | DLQ)."""

    @property
    def name(self) -> str:
        """What `state.engine` and `--engine` call it."""
        ...

    @property
    def summary(self) -> str:
        """One line for help texts."""
        ...

    def run(self, settings: Settings, stop: threading.Event | None = None) -> None:
        """Run the stateful stage until `stop` is set (or SIGTERM/SIGINT on the main thread), committing on the way
        out."""
        ...

    def check(self, settings: Settings) -> None:
        """Raise ConfigurationError, with the line to show, for settings this engine cannot honour (before it
        starts)."""
        ...

    def memory_bound_mb(self, settings: Settings, partitions_per_process: int, max_state_bytes: int) -> float:
        """Resident memory of one stage process, in MiB, from the memory settings (docs/deployment.md, memory)."""
        ...


@dataclass(frozen=True)
class ModuleEngine:
    """An engine whose `run_stateful_stage(settings, stop)` lives in `module`, imported only when it runs."""

    name: str
    summary: str
    module: str
    memory: MemoryShape
    refuses: Callable[[Settings], None] | None = None
    """Raises ConfigurationError for settings the engine cannot honour; must not import the engine."""

    def run(self, settings: Settings, stop: threading.Event | None = None) -> None:
        importlib.import_module(self.module).run_stateful_stage(settings, stop)

    def check(self, settings: Settings) -> None:
        if self.refuses is not None:
            self.refuses(settings)

    def memory_bound_mb(self, settings: Settings, partitions_per_process: int, max_state_bytes: int) -> float:
        return memory_bound_mb(self.memory, settings, partitions_per_process, max_state_bytes)


def _aiokafka_security(settings: Settings) -> None:
    """faust's clients are aiokafka's: refuse a `kafka.client_config` key it has no equivalent of."""
    from streamrec.stream.kafka import aiokafka_security

    aiokafka_security(settings.kafka)


QUIX = ModuleEngine(
    name="quix",
    summary="Quix Streams (default): librdkafka clients, checkpoints every state.commit_every_clicks clicks or 5 s",
    module="streamrec.stream.stages.engines.quix",
    memory=MemoryShape(block_cache_per_partition=False, column_families_per_partition=2, checkpoint_holds_states=True),
)
FAUST = ModuleEngine(
    name="faust",
    summary="faust-streaming: aiokafka clients, offsets committed by streamrec's own checkpoints",
    module="streamrec.stream.stages.engines.faust",
    memory=MemoryShape(block_cache_per_partition=True, column_families_per_partition=1, checkpoint_holds_states=False,
                       bound_is_estimate=True),  # its aiokafka clients' buffers are not in the formula
    refuses=_aiokafka_security,
)

ENGINES: dict[str, Engine] = {engine.name: engine for engine in (QUIX, FAUST)}
"""Every engine by name; the first is the default of `state.engine`."""


def engine_names() -> tuple[str, ...]:
    """The names `state.engine` and `--engine` accept, the default first."""
    return tuple(ENGINES)


class UnknownEngine(ConfigurationError, KeyError):
    """An engine name no entry has: a user's mistake (one line, exit 2) and a failed lookup."""

    def __str__(self) -> str:
        return str(self.args[0])


def get_engine(name: str) -> Engine:
    """The engine called `name`; UnknownEngine naming the choices otherwise (the worker's `--engine`, the demo's)."""
    try:
        return ENGINES[name]
    except KeyError:
        raise UnknownEngine(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}") from None


def stateful_memory_bound_mb(settings: Settings, partitions_per_process: int, max_state_bytes: int) -> float:
    """`Engine.memory_bound_mb` of the engine `state.engine` names (on faust an estimate:
    `MemoryShape.bound_is_estimate`)."""
    return get_engine(settings.state.engine).memory_bound_mb(settings, partitions_per_process, max_state_bytes)
