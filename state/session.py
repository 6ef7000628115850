"""A session as SR-GNN sees it: a directed weighted graph over the unique items clicked.

The click sequence (capped) is the stored truth; nodes, edges and weights are derived
from it, so they can never disagree with it (SR-GNN's section "Constructing Session Graphs";
"Session-based Recommendation with Graph Neural Networks", Wu et al., AAAI 2019,
https://arxiv.org/abs/1811.00855).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SessionGraph:
    session_id: str
    items: list[str] = field(default_factory=list)
    """Clicked items, oldest first, at most the policy's max_length."""
    ts: list[float] = field(default_factory=list)
    """Event time of each kept click (unix seconds)."""
    event_ids: list[str] = field(default_factory=list)
    """event_id of each kept click: a redelivered click is recognised, not counted twice."""
    started_ts: float = 0.0

    @property
    def last_item(self) -> str | None:
        return self.items[-1] if self.items else None

    @property
    def last_ts(self) -> float:
        return self.ts[-1] if self.ts else self.started_ts

    @property
    def nodes(self) -> list[str]:
        """Unique items in order of first click."""
        return list(dict.fromkeys(self.items))

    @property
    def edge_counts(self) -> dict[tuple[str, str], int]:
        """#(u -> v) over consecutive clicks; a self-repeat (u, u) is a self-loop edge."""
        return dict(Counter(zip(self.items, self.items[1:])))

    @property
    def edge_weights(self) -> dict[tuple[str, str], float]:
        """w(u -> v) = #(u -> v) / outdeg(u), outdeg counting transitions (as SR-GNN normalises A_out)."""
        counts = self.edge_counts
        out_degree: Counter[str] = Counter()
        for (u, _), n in counts.items():
            out_degree[u] += n
        return {(u, v): n / out_degree[u] for (u, v), n in counts.items()}

    def seen(self, event_id: str) -> bool:
        return event_id in self.event_ids

    def add(self, item_id: str, ts: float, event_id: str, max_length: int) -> None:
        if not self.items:
            self.started_ts = ts
        self.items.append(item_id)
        self.ts.append(ts)
        self.event_ids.append(event_id)
        if len(self.items) > max_length:
            drop = len(self.items) - max_length
            del self.items[:drop], self.ts[:drop], self.event_ids[:drop]

    def to_dict(self) -> dict[str, Any]:
        return {"s": self.session_id, "i": self.items, "t": self.ts, "e": self.event_ids, "t0": self.started_ts}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SessionGraph:
        return cls(session_id=d["s"], items=list(d["i"]), ts=list(d["t"]), event_ids=list(d["e"]), started_ts=d["t0"])
