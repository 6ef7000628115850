"""Plain types shared by readers, protocols, the replay and the trainer."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class LoggedClick:
    """One click of a log, in the same terms as a ClickEvent on the wire."""

    session_id: str
    user_id: str | None
    item_id: str
    ts: float
    """Event time, unix seconds (synthesised in order where a format has none)."""
    type: str = "view"


@dataclass(frozen=True, slots=True)
class TrainSequence:
    """A training sequence: every prefix -> next item pair in it is a training example."""

    items: tuple[str, ...]
    user_id: str | None = None
    history_items: tuple[str, ...] = ()
    """The user's earlier items (before `items`), oldest first; empty for anonymous sessions."""


@dataclass(frozen=True, slots=True)
class Example:
    """One prediction to judge: given the context, rank the catalogue; `target` is the truth."""

    session_items: tuple[str, ...]
    """Short-term context, oldest first; its last item is the latest click."""
    target: str
    history_items: tuple[str, ...] = ()
    """Long-term context before the session, oldest first; empty for anonymous visitors."""
    user_id: str | None = None
    exclude: frozenset[str] = field(default_factory=frozenset)
    """Items the protocol masks from the ranking (leave-one-out: the user's history)."""
    group: str | None = None
    """The unit a paired bootstrap resamples (state/paired.py): the session the example comes from,
    or the user under leave-one-out; None: the example stands alone."""


@dataclass(frozen=True)
class Split:
    """What a protocol produces from a log: train on `train`, stop early on `valid`, report `test`."""

    protocol: str
    train: tuple[TrainSequence, ...]
    valid: tuple[Example, ...]
    test: tuple[Example, ...]
    items: tuple[str, ...]
    """The catalogue known at training time (the ranking is over these)."""
