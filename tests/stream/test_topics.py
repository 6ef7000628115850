"""The hot-path codecs of stream/topics.py speak exactly the JSON of the pydantic schemas."""

from __future__ import annotations

import orjson
import pytest

from streamrec.stream.topics import (
    Provenance,
    Recommendation,
    ScoringRequest,
    Topics,
    encode_recommendation,
    read_answer,
)


def _request() -> ScoringRequest:
    return ScoringRequest(event_id="e7", session_id="s1", user_id="u1", item_id="b", ts_event=1_700_000_000.5,
                          ts_received=1_700_000_001.0, session_items=["a", "b"], session_ts=[1.0, 2.0])


def test_encoded_recommendation_is_a_valid_recommendation() -> None:
    value = encode_recommendation(_request(), [("c", 0.9), ("d", 0.25)], "sknn", "sknn-abc-c10", 1_700_000_002.0)
    rec = Recommendation.model_validate_json(value)
    assert (rec.event_id, rec.session_id, rec.user_id, rec.scorer,
            rec.model_version) == ("e7", "s1", "u1", "sknn", "sknn-abc-c10")
    assert [(i.item_id, i.score) for i in rec.items] == [("c", 0.9), ("d", 0.25)]
    assert (rec.ts_event, rec.ts_emitted) == (1_700_000_000.5, 1_700_000_002.0)


def test_read_answer_round_trips_a_recommendation() -> None:
    value = encode_recommendation(_request(), [("c", 0.9), ("d", 0.25)], "pop", "pop-c3", 0.0)
    assert tuple(read_answer(value)) == ("e7", "pop", "pop-c3", ["c", "d"], False)


@pytest.mark.parametrize("value", [
    None, b"", b"not json", b"[1, 2]", b'{"event_id": "e"}',
    orjson.dumps({"event_id": "e", "scorer": "s", "model_version": "v", "items": [{"score": 1.0}]}),
    orjson.dumps({"event_id": 3, "scorer": "s", "model_version": "v", "items": []}),
    orjson.dumps({"event_id": "e", "scorer": "s", "model_version": "v", "items": [{"item_id": 5}]}),
])
def test_read_answer_refuses_what_is_not_a_recommendation(value: bytes | None) -> None:
    with pytest.raises(ValueError, match="not a recommendation"):
        read_answer(value)


def test_topic_names_carry_the_deployment_prefix() -> None:
    topics = Topics("shop1.")
    assert topics.clicks == "shop1.clicks" and topics.recommendations == "shop1.recommendations"
    assert set(topics.all) == {"shop1.clicks", "shop1.recommendations", "shop1.clicks.dlq",
                               "shop1.streamrec.scoring-requests", "shop1.streamrec.model-updates"}


def test_answers_carry_whether_their_version_trained_on_a_later_click() -> None:
    def answer(offset: int, trained_through: int | None) -> bool:
        provenance = Provenance(partition=1, offset=offset, trained_through=trained_through)
        value = encode_recommendation(_request(), [("c", 0.9)], "default", "v1", 0.0, provenance=provenance)
        assert Recommendation.model_validate_json(value).request_offset == offset
        return read_answer(value).trained_on_later_click

    assert not answer(offset=10, trained_through=None)  # a model that does not train on the stream
    assert not answer(offset=10, trained_through=11)  # trained on this very request: its click is known anyway
    assert answer(offset=10, trained_through=12)  # trained on the next request of the partition
