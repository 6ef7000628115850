"""The state kept per Kafka key and the one transition every engine applies to it.

A key is a known user (all their sessions and their history live together) or an
anonymous session. `apply_click` is pure: engines load the state, call it, store
the result and forward the scoring request; nothing here knows about Kafka.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from streamrec.state.history import UserHistory
from streamrec.state.session import SessionGraph


class Click(NamedTuple):
    """The fields of a validated click event that state needs.

    A NamedTuple, not a frozen dataclass: one is built per click on the hot path, and a frozen
    dataclass's `__init__` (object.__setattr__ per field) costs several times more.
    """

    event_id: str
    session_id: str
    user_id: str | None
    item_id: str
    ts: float


@dataclass(frozen=True)
class SessionPolicy:
    max_length: int = 50
    inactivity_gap_s: float = 1800.0
    max_open_per_visitor: int = 8
    history_max_items: int = 500


@dataclass
class VisitorState:
    sessions: dict[str, SessionGraph] = field(default_factory=dict)
    history: UserHistory = field(default_factory=UserHistory)

    def to_dict(self) -> dict[str, Any]:
        return {"s": [g.to_dict() for g in self.sessions.values()], "h": self.history.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> VisitorState:
        if not d:
            return cls()
        graphs = [SessionGraph.from_dict(g) for g in d["s"]]
        return cls(sessions={g.session_id: g for g in graphs}, history=UserHistory.from_dict(d["h"]))


@dataclass(frozen=True)
class Transition:
    """What one click did: the session it landed in, sessions it closed, whether it was a redelivery."""

    session: SessionGraph
    closed: tuple[SessionGraph, ...]
    duplicate: bool


def _close(state: VisitorState, session_id: str, policy: SessionPolicy, known_user: bool) -> SessionGraph:
    graph = state.sessions.pop(session_id)
    if known_user and graph.items:
        state.history.extend(graph.items, policy.history_max_items)
    return graph


def apply_click(state: VisitorState, click: Click, policy: SessionPolicy) -> Transition:
    """Fold one click into the visitor's state (mutating it) and say what happened.

    - sessions idle for longer than the gap (at this click's time) are closed first; a
      known user's closed sessions feed their history, an anonymous one's are dropped;
    - a click whose event_id the session already holds is a redelivery: no change;
    - beyond `max_open_per_visitor` open sessions the stalest is closed.
    """
    known_user = click.user_id is not None
    closed = [
        _close(state, sid, policy, known_user)
        for sid, g in list(state.sessions.items())
        if click.ts - g.last_ts > policy.inactivity_gap_s
    ]
    graph = state.sessions.get(click.session_id)
    if graph is not None and graph.seen(click.event_id):
        return Transition(session=graph, closed=tuple(closed), duplicate=True)
    if graph is None:
        graph = state.sessions[click.session_id] = SessionGraph(session_id=click.session_id, started_ts=click.ts)
        while len(state.sessions) > policy.max_open_per_visitor:
            stalest = min((g for g in state.sessions.values() if g is not graph), key=lambda g: g.last_ts)
            closed.append(_close(state, stalest.session_id, policy, known_user))
    graph.add(click.item_id, click.ts, click.event_id, policy.max_length)
    return Transition(session=graph, closed=tuple(closed), duplicate=False)
