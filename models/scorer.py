"""The one interface every recommender implements: a batch of queries in, ranked lists out.

The streaming scoring stage, `streamrec evaluate` and `streamrec replay` all call
scorers only through this, so a torch model replaces the kNN baseline without
touching the backbone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

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
        """Learn from fresh click sequences (online statistics); a frozen model may ignore it."""
        ...
