"""`streamrec worker --role all` serves both stages' metrics on the one `metrics_port`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from ops_helpers import scrape, send_clicks, wait_until

from streamrec.config import Settings
from streamrec.stream.broker import free_port
from streamrec.stream.stages.engines.registry import engine_names
from streamrec.stream.topics import Topics


def _value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def _matching(samples: dict, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}


@pytest.mark.parametrize("engine", engine_names())  # faust's aiokafka has no statistics: its lag is polled
def test_role_all_exports_every_stage_on_one_port(
    make_settings: Callable[..., Settings], spawn_worker: Callable, tail_topic: Callable, engine: str
) -> None:
    port = free_port()
    settings = make_settings(metrics_port=port, health={"lag_interval_ms": 200})
    worker = spawn_worker(settings, engine=engine)
    assert wait_until(lambda: "worker starting" in worker.log(), timeout_s=60), worker.log()
    ids = send_clicks(settings, 6)
    tail = tail_topic(settings, Topics(settings.kafka.topic_prefix).recommendations)
    assert len(tail.wait_for(lambda records: len(records) >= len(ids), timeout_s=90)) >= len(ids), worker.log()

    def complete() -> bool:
        s = scrape(port)
        # librdkafka reports a partition's watermark only after a fetch answered for it, and its
        # statistics arrive every lag_interval_ms: wait until every (stage, partition) pair is in.
        lags = {(dict(labels)["stage"], dict(labels)["partition"]) for labels in _matching(s, "streamrec_consumer_lag")}
        return ((_value(s, "streamrec_clicks_accepted_total") or 0) >= len(ids)
                and (_value(s, "streamrec_recommendations_emitted_total") or 0) >= len(ids)
                and lags == {(stage, partition) for stage in ("stateful", "scoring") for partition in ("0", "1")})

    assert wait_until(complete, timeout_s=60), (scrape(port), worker.log())
    samples = scrape(port)
    assert (_value(samples, "streamrec_click_to_recommendation_seconds_count") or 0) >= len(ids)
    assert (_value(samples, "streamrec_scoring_batch_size_count") or 0) >= 1
    info = _matching(samples, "streamrec_scorer_info")
    assert len(info) == 1 and dict(next(iter(info)))["scorer"] == "sknn", info
    assert {"device", "model_version"} <= set(dict(next(iter(info))))
    assert _value(samples, "streamrec_fallback_answers_total") == 0.0
    assert _value(samples, "streamrec_healthy") == 1.0
    # the stateful stage trims its heap (state.heap_trim_interval_ms)
    assert (_value(samples, "streamrec_heap_trims_total") or 0) >= 1
    lag = _matching(samples, "streamrec_consumer_lag")
    assert {dict(labels)["partition"] for labels in lag} == {"0", "1"}, lag
    assert "Traceback" not in worker.log()
    assert worker.terminate() == 0, worker.log()
