"""The API's RocksDB store and its live figures, without a broker."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from streamrec.config.settings import ApiSettings
from streamrec.stream.api.live import LiveStats
from streamrec.stream.api.store import RecommendationStore, StoredAnswer, decode_recommendation


def _answer(session: str, event: str, ts_event: float, scorer: str = "sknn", items: tuple[str, ...] = ("i1",),
            user: str | None = None) -> StoredAnswer:
    return decode_recommendation(orjson.dumps({
        "session_id": session, "user_id": user, "event_id": event,
        "items": [{"item_id": i, "score": 1.0} for i in items],
        "scorer": scorer, "model_version": f"{scorer}-v1", "ts_event": ts_event, "ts_emitted": ts_event + 0.5,
    }))


@pytest.mark.parametrize("raw", [b"", b"[]", b'{"session_id": "s"}', orjson.dumps({
    "session_id": "", "user_id": None, "event_id": "e", "items": [], "scorer": "x", "model_version": "v", "ts_event": 1,
    "ts_emitted": 1}),
    orjson.dumps({"session_id": "s", "user_id": 3, "event_id": "e", "items": [], "scorer": "x", "model_version": "v",
                  "ts_event": 1, "ts_emitted": 1})])
def test_undecodable_recommendations_are_refused_with_a_reason(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not a recommendation"):
        decode_recommendation(raw)


def test_newest_answer_wins_per_scorer_and_offsets_survive_a_reopen(tmp_path: Path) -> None:
    store = RecommendationStore(tmp_path / "api")
    store.apply([_answer("s1", "e2", 20.0, user="u1"), _answer("s1", "e1", 10.0),
                 _answer("s1", "e2", 20.0, scorer="pop")], {("recs", 0): 3})
    store.apply([_answer("s1", "e0", 5.0)], {("recs", 0): 4})  # redelivered older answer: kept out
    assert orjson.loads(store.session("s1", "sknn") or b"")["event_id"] == "e2"
    assert orjson.loads(store.user("u1", "sknn") or b"")["event_id"] == "e2"
    assert orjson.loads(store.session("s1", "pop") or b"")["scorer"] == "pop"
    assert sorted(store.scorers_of("s", "s1")) == ["pop", "sknn"]
    assert store.scorers_of("s", "s") == [] and store.session("s2", "sknn") is None
    store.close()
    with pytest.raises(RuntimeError, match="another `streamrec serve`"):
        held = RecommendationStore(tmp_path / "api")
        RecommendationStore(tmp_path / "api")
    held.close()
    reopened = RecommendationStore(tmp_path / "api")
    assert reopened.offset("recs", 0) == 4 and reopened.offset("recs", 1) is None
    reopened.close()


def test_each_answer_is_judged_once_by_the_sessions_next_click() -> None:
    stats = LiveStats(ApiSettings(hit_rate_k=2))
    now = time.time()
    stats.on_click("c1", "s1", "a", produced_at_s=now)
    assert stats.on_answer(_answer("s1", "c1", now, items=("b", "c", "d")), read_at_s=now + 0.25) == pytest.approx(0.25)
    # c2's own answer is read before c2 itself: it must wait for c3, not judge c2
    stats.on_answer(_answer("s1", "c2", now, items=("x",)), read_at_s=now + 1)
    assert stats.on_click("c2", "s1", "b", produced_at_s=None) == [("sknn", True)]  # b in c1's top 2
    # pop answers c1 late, after c2 was seen: judged at once by c2, not by a later click
    stats.on_answer(_answer("s1", "c1", now, scorer="pop", items=("d", "e")), read_at_s=now + 2)
    stats.on_answer(_answer("s1", "c1", now, scorer="pop", items=("d", "e")), read_at_s=now + 2)  # redelivered
    assert stats.on_click("c3", "s1", "d", produced_at_s=None) == [("sknn", False)]  # c2's answer (x): a miss
    assert stats.on_click("c3", "s1", "d", produced_at_s=None) == []  # a redelivered click judges nothing
    # answers emitted before the process started (a store catching up) are counted, never judged
    stats.on_answer(_answer("s1", "c3", now - 3600, items=("z",)), read_at_s=now + 3)
    assert stats.on_click("c4", "s1", "z", produced_at_s=None) == []
    assert stats.hit_rates() == {"pop": (0.0, 1), "sknn": (0.5, 2)}
    snapshot = stats.snapshot()
    assert snapshot["clicks_total"] == 5 and snapshot["recommendations_total"] == 5
    assert snapshot["model_versions"] == {"pop": "pop-v1", "sknn": "sknn-v1"}
    assert snapshot["latency_samples"] == 3  # answers to c1 (sknn, pop twice), whose produce time was seen
