"""LedgerGate: each scorer learns a click once, however often it is read or re-emitted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from streamrec.config import load_settings
from streamrec.models.popularity import popularity
from streamrec.models.registry import build_sknn
from streamrec.stream.learning.ledger_gate import LedgerGate, learned_after_answering
from streamrec.stream.topics import ScoringRequest


@dataclass
class _Source:
    """Where a request was read from (the three things the LedgerGate asks a confluent_kafka Message)."""

    partition_: int
    offset_: int

    def topic(self) -> str:
        return "requests"

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_


def _request(event_id: str, items: Sequence[str], session: str = "s") -> ScoringRequest:
    return ScoringRequest(event_id=event_id, session_id=session, user_id=None, item_id=items[-1], ts_event=1.7e9,
                          ts_received=1.7e9, session_items=list(items), session_ts=[1.7e9] * len(items))


class _Counting:
    """A scorer without a ledger of its own (the LedgerGate keeps one in memory)."""

    name, version = "counting", "v"

    def __init__(self) -> None:
        self.learned: list[str] = []  # not a LearnedLedger: the LedgerGate must not mistake it for one

    def recommend(self, queries: Sequence[object], k: int) -> list[list[tuple[str, float]]]:
        return [[] for _ in queries]

    def observe(self, sessions: Sequence[Sequence[str]]) -> None:
        self.learned += [items[-1] for items in sessions]


def test_re_reads_and_re_emissions_are_not_learned_again() -> None:
    knn, counting = build_sknn(load_settings(), persist=False), _Counting()
    gate = LedgerGate(ids_kept=100)
    first = [_request("e1", ["a"]), _request("e2", ["a", "b"]), _request("e2", ["a", "b"])]  # a duplicate in one batch
    assert gate.learn((knn, counting), first, [_Source(0, 0), _Source(0, 1), _Source(1, 0)]) == 2
    assert knn.stats.clicks == 2 and counting.learned == ["a", "b"]
    # a crash re-reads offset 1 of partition 0; the stateful stage re-emits e1 at a new offset; e3 is new
    again = [_request("x", ["a", "b"]), _request("e1", ["a"]), _request("e3", ["a", "b", "c"])]
    assert gate.learn((knn, counting), again, [_Source(0, 1), _Source(0, 2), _Source(0, 3)]) == 1
    assert knn.stats.clicks == 3 and counting.learned == ["a", "b", "c"]
    assert knn.learned.watermark("requests:0") == 4


def test_a_scorer_that_fails_to_learn_does_not_mark_the_clicks() -> None:
    class Failing(_Counting):
        def observe(self, sessions: Sequence[Sequence[str]]) -> None:
            raise RuntimeError("no")

    pop, failing = popularity(), Failing()
    gate = LedgerGate(ids_kept=100)
    gate.learn((failing, pop), [_request("e1", ["a"])], [_Source(0, 0)])
    assert pop.stats.clicks == 1 and not gate.ledger(failing).seen("e1")


def test_a_batch_learned_around_its_answer_learns_every_click_once_and_in_two_parts() -> None:
    """A session's later clicks wait until the batch is answered; the others are learned first. The later
    offsets learned first must not make the waiting clicks look learned (the ledger's watermark)."""
    knn, counting = build_sknn(load_settings(), persist=False), _Counting()
    gate = LedgerGate(ids_kept=100)
    batch = [_request("a1", ["x"], "a"), _request("b1", ["y"], "b"), _request("a2", ["x", "z"], "a"),
             _request("c1", ["w"], "c"), _request("a3", ["x", "z", "v"], "a")]
    after = learned_after_answering(batch)
    assert after == [False, False, True, False, True]
    seen_by_answer: list[str] = []
    learned, result = gate.learn_around((knn, counting), batch, [_Source(0, n) for n in range(5)], after,
                                        lambda: seen_by_answer.extend(counting.learned) or "answered")
    assert result == "answered" and learned == 5
    assert seen_by_answer == ["x", "y", "w"]  # the answer saw each session's first click of the batch only
    assert counting.learned == ["x", "y", "w", "z", "v"] and knn.stats.clicks == 5
    assert knn.learned.watermark("requests:0") == 5
    assert gate.learn((knn, counting), batch, [_Source(0, n) for n in range(5)]) == 0  # a re-read learns nothing
