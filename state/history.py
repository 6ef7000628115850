"""A user's long-term memory source: the clicks of their closed sessions.

GLAD ("GLAD: Graph-based Long-term Attentive Dynamic Memory for Sequential Recommendation",
Pandey, Sarkar and Comar (Amazon), 2024) reads history as fixed-size chunks (sub-sequences of
c items); `chunks` cuts them, so the number of memory nodes grows with history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar


@dataclass
class UserHistory:
    items: list[str] = field(default_factory=list)
    """Closed-session clicks, oldest first, at most the policy's max_items."""
    sessions_closed: int = 0

    def extend(self, items: list[str], max_items: int) -> None:
        self.items.extend(items)
        self.sessions_closed += 1
        if len(self.items) > max_items:
            del self.items[: len(self.items) - max_items]

    def to_dict(self) -> dict[str, Any]:
        return {"i": self.items, "n": self.sessions_closed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> UserHistory:
        return cls(items=list(d["i"]), sessions_closed=d["n"])


T = TypeVar("T")


def chunks(items: list[T], size: int) -> list[list[T]]:
    """Cut a history into consecutive chunks of `size` items; a shorter tail chunk is kept."""
    if size < 1:
        raise ValueError(f"chunk size must be >= 1, got {size}")
    return [items[i : i + size] for i in range(0, len(items), size)]
