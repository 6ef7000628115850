"""The one interface every recommender implements: a batch of queries in, ranked lists out.

The streaming scoring stage, `streamrec evaluate` and `streamrec replay` all call
scorers only through this, so a torch model replaces the kNN baseline without
touching the backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from streamrec.state.learned import LearnedLedger

Ranked = list[tuple[str, float]]
"""(item_id, score) pairs, best first."""


@dataclass(frozen=True)
class Query:
    """What a scorer may know at the moment of one click."""

    session_items: Sequence[str]
    """The session's clicks so far, oldest first; the last is the click being answered."""
    history_items: Sequence[str] = ()
    """The user's long-term history (closed sessions), oldest first; empty for anonymous visitors."""
    user_id: str | None = None
    exclude: frozenset[str] = field(default_factory=frozenset)
    """Items that must not be recommended (e.g. already purchased, or masked by an evaluation protocol)."""


@runtime_checkable
class Scorer(Protocol):
    name: str
    """Short scorer name, stamped on every recommendation."""

    @property
    def version(self) -> str:
        """Version stamp of what is being served (model checkpoint id, statistics epoch)."""
        ...

    def recommend(self, queries: Sequence[Query], k: int) -> list[Ranked]:
        """Top-k items for each query, in query order. Never raises on unknown items."""
        ...

    def observe(self, sessions: Sequence[Sequence[str]]) -> None:
        """Learn the newest click of each session (online statistics); a frozen model ignores it.

        Each sequence is a session's clicks so far, oldest first, and only its LAST click is
        new: the scoring stage calls this once per batch, after `recommend`, with each new
        click's `session_items`, so a scorer counts what that click adds and never recounts
        the earlier ones (a redelivered click is filtered out before). Learning whole logged
        sessions offline is a scorer's own business (the baselines' `fit` streams every
        prefix through the same path, so offline and online statistics agree). What was
        learned becomes durable at the next `persist_scorer` call: the scoring stage makes it
        right before it commits the offsets of the clicks learned, so after a crash the
        statistics and the re-read clicks agree (nothing counted twice or lost).
        """
        ...


def close_scorer(scorer: Scorer) -> None:
    """Release what a scorer holds (RocksDB locks, device memory) if it defines `close()`.

    Not part of the protocol, so a stateless scorer needs nothing; the scoring stage calls
    this when it stops, so persisted statistics are flushed and can be reopened at once.
    """
    close = getattr(scorer, "close", None)
    if callable(close):
        close()


def persist_scorer(scorer: Scorer) -> None:
    """Make what a scorer learned durable if it persists anything (defines `persist()`).

    Not part of the protocol either: frozen models and in-memory statistics need nothing.
    """
    persist = getattr(scorer, "persist", None)
    if callable(persist):
        persist()


def learning_ledger(scorer: Scorer) -> LearnedLedger | None:
    """The ledger of clicks a scorer's statistics contain (its optional `learned` attribute), or None.

    The scoring stage consults it so that no click is learned twice across crashes and
    re-emissions (state/learned.py); a scorer without one gets an in-memory ledger from the stage.
    """
    ledger = getattr(scorer, "learned", None)
    return ledger if isinstance(ledger, LearnedLedger) else None


def reads_history(scorer: Scorer) -> bool:
    """Whether `scorer` uses `Query.history_items` (its optional `reads_history` attribute; False when absent).

    Long-term memory models (the GLAD presets) do; the baselines and memory-less graph models
    do not, and sending them history only costs bytes on every scoring request.
    """
    return bool(getattr(scorer, "reads_history", False))
