"""Prequential bookkeeping and the report files, fed hand-made answers (no broker needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamrec.state.clicklog.types import LoggedClick
from streamrec.stream.harness.prequential import PhaseTally, next_items
from streamrec.stream.harness.report import LatencySummary, ReplayCounts, ReplayReport, read_report, write_report
from streamrec.stream.topics import Answer, Recommendation, ScoredItem, read_answer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _clicks() -> list[LoggedClick]:
    """Two interleaved sessions: a = x y z, b = x w (event-time order)."""
    rows = [("a", "x"), ("b", "x"), ("a", "y"), ("b", "w"), ("a", "z")]
    return [LoggedClick(session_id=s, user_id=None, item_id=i, ts=1_700_000_000.0 + n) for n, (s, i) in enumerate(rows)]


def _answer(phase: PhaseTally, index: int, items: list[str], scorer: str = "sknn") -> Answer:
    """The answer a replay reads off the wire for a Recommendation record."""
    click = phase.clicks[index]
    record = Recommendation(
        session_id=click.session_id, user_id=None, event_id=f"{phase.prefix}{index}",
        items=[ScoredItem(item_id=i, score=1.0) for i in items], scorer=scorer, model_version="v1",
        ts_event=click.ts, ts_emitted=click.ts,
    )
    return read_answer(record.model_dump_json().encode())


def test_next_items_are_the_following_click_of_the_same_session() -> None:
    assert next_items(_clicks()) == ["y", "w", "z", None, None]


def test_phase_judges_each_answer_against_the_next_click() -> None:
    phase = PhaseTally("run-m", _clicks())
    for index in range(5):
        phase.mark_sent(index, at=10.0 + index)
    phase.on_recommendation(0, _answer(phase, 0, ["y", "q"]), received_at=10.5)  # hit at rank 1
    phase.on_recommendation(1, _answer(phase, 1, ["q", "w"]), received_at=11.5)  # hit at rank 2
    phase.on_recommendation(2, _answer(phase, 2, ["q"]), received_at=12.5)  # miss
    phase.on_recommendation(2, _answer(phase, 2, ["z"]), received_at=12.6)  # redelivery: ignored
    phase.on_recommendation(3, _answer(phase, 3, ["q"]), received_at=13.5)  # last click: not judged
    phase.on_dead_letter(4)

    assert phase.complete()
    assert not phase.complete(scorers=2)  # a shadow scorer that has not answered yet keeps a replay draining
    (report,) = phase.scorer_reports()
    assert (report.recommended, report.duplicates, report.missing, report.judged) == (4, 1, 0, 3)
    assert report.metrics["HR@20"] == pytest.approx(2 / 3)
    assert report.metrics["MRR@20"] == pytest.approx((1 + 1 / 2) / 3)
    assert report.latency.p50_ms == pytest.approx(500.0)
    assert sum(report.latency_histogram.counts) == 4
    assert report.timeline[-1].clicks_sent == 5


def test_each_scorer_is_judged_separately_and_missing_is_counted() -> None:
    phase = PhaseTally("run-m", _clicks())
    for index in range(5):
        phase.mark_sent(index, at=float(index))
    for index in range(5):
        phase.on_recommendation(index, _answer(phase, index, ["y", "w", "z"], scorer="sknn"), received_at=index + 0.1)
    phase.on_recommendation(0, _answer(phase, 0, ["q"], scorer="pop"), received_at=0.2)

    assert not phase.complete()  # pop has not answered clicks 1..4
    assert not PhaseTally("run-m", _clicks()).complete()  # nobody answered yet

    reports = {r.scorer: r for r in phase.scorer_reports()}
    assert reports["sknn"].metrics["HR@10"] == 1.0 and reports["sknn"].missing == 0
    assert reports["pop"].metrics["HR@10"] == 0.0 and reports["pop"].missing == 4
    # the pair is judged only on the click both answered (click 0: sknn hits at rank 1, pop misses)
    paired = {p.metric: p for p in phase.paired()}
    assert set(paired) == {"HR@20", "MRR@20"}
    assert (paired["HR@20"].a, paired["HR@20"].b, paired["HR@20"].predictions) == ("pop", "sknn", 1)
    assert paired["HR@20"].diff == -1.0 and paired["HR@20"].verdict == "sknn beats pop"


def test_event_ids_of_other_phases_and_traffic_are_not_ours() -> None:
    phase = PhaseTally("run-m", _clicks())
    assert phase.index_of("run-m3") == 3
    assert phase.index_of("run-w3") is None
    assert phase.index_of("run-m99") is None
    assert phase.index_of("someone-else") is None


def test_latency_summary_of_nothing_is_empty() -> None:
    assert LatencySummary.of([]).p99_ms is None


def test_report_files_round_trip_and_render(tmp_path: Path) -> None:
    phase = PhaseTally("run-m", _clicks())
    for index in range(5):
        phase.mark_sent(index, at=float(index))
        phase.on_recommendation(index, _answer(phase, index, ["y"]), received_at=index + 0.02)
    report = ReplayReport(
        dataset="unit", fmt="synthetic", warm_dataset=None, bootstrap_servers="127.0.0.1:1", topic_prefix="t-",
        speed=0.0, rate_eps=None, started_at="2026-01-01T00:00:00+00:00", send_duration_s=1.0,
        total_duration_s=1.5, send_rate_eps=5.0, counts=ReplayCounts(sent=5, dlq=0, warm_sent=0, warm_dlq=0),
        scorers=phase.scorer_reports(),
    )

    paths = write_report(report, tmp_path / "out")

    assert [p.name for p in paths] == ["report.json", "report.md", "timeline.png", "latency.png"]
    assert read_report(paths[0]) == report
    markdown = paths[1].read_text()
    assert "| sknn |" in markdown and "HR@20" in markdown and "timeline.png" in markdown
    assert "Paired differences" not in markdown  # one scorer: nothing to pair
    for png in paths[2:]:
        assert png.read_bytes().startswith(PNG_MAGIC)


def test_answers_by_a_version_trained_on_a_later_click_are_counted_with_the_versions_seen() -> None:
    from streamrec.stream.harness.prequential import PhaseTally
    from streamrec.stream.topics import Provenance, ScoringRequest, encode_recommendation, read_answer

    clicks = [LoggedClick(session_id="s1", user_id=None, item_id=i, ts=1_700_000_000.0 + n)
              for n, i in enumerate("abc")]
    phase = PhaseTally("r-m1-", clicks)

    def answer(index: int, version: str, offset: int, trained_through: int | None) -> None:
        request = ScoringRequest(event_id=f"r-m1-{index}", session_id="s1", user_id=None, item_id="a", ts_event=0.0,
                                 ts_received=0.0, session_items=["a"], session_ts=[0.0])
        value = encode_recommendation(request, [("b", 1.0)], "default+online", version, 0.0,
                                      Provenance(partition=0, offset=offset, trained_through=trained_through))
        phase.mark_sent(index, 0.5)
        phase.on_recommendation(index, read_answer(value), received_at=1.0)

    answer(0, "v0", offset=0, trained_through=None)
    answer(1, "v1", offset=1, trained_through=2)  # trained on its own request only: honest
    answer(2, "v2", offset=2, trained_through=9)  # trained on requests after it: a leak
    [report] = phase.scorer_reports()
    assert report.answers_trained_on_later_clicks == 1
    assert report.model_versions == ["v0", "v1", "v2"]


def _paced_report(rate_eps: float | None, answer_gap_s: float) -> ReplayReport:
    """Ten clicks sent 0.1 s apart; answer i arrives at i * answer_gap_s + 0.01 (a gap > 0.1 s: a growing queue)."""
    clicks = [LoggedClick(f"s{i}", None, f"i{i}", 1_700_000_000.0 + i) for i in range(10)]
    phase = PhaseTally("run-q", clicks)
    for index in range(10):
        phase.mark_sent(index, at=index * 0.1)
        phase.on_recommendation(index, _answer(phase, index, ["y"]), received_at=index * answer_gap_s + 0.01)
    return ReplayReport(
        dataset="unit", fmt="synthetic", warm_dataset=None, bootstrap_servers="127.0.0.1:1", topic_prefix="t-",
        speed=0.0, rate_eps=rate_eps, started_at="2026-01-01T00:00:00+00:00", send_duration_s=1.0,
        total_duration_s=5.0, send_rate_eps=10.0, counts=ReplayCounts(sent=10, dlq=0, warm_sent=0, warm_dlq=0),
        scorers=phase.scorer_reports(),
    )


def test_report_says_when_latency_is_queueing() -> None:
    from streamrec.stream.harness.report import latency_verdict, to_markdown

    kept_up = _paced_report(rate_eps=10.0, answer_gap_s=0.1)
    assert "service latency" in latency_verdict(kept_up, kept_up.scorers[0])
    fell_behind = _paced_report(rate_eps=10.0, answer_gap_s=0.5)
    assert "QUEUEING" in latency_verdict(fell_behind, fell_behind.scorers[0])
    flat_out = _paced_report(rate_eps=None, answer_gap_s=0.1)
    assert "as fast as possible" in latency_verdict(flat_out, flat_out.scorers[0])
    assert "QUEUEING" in to_markdown(fell_behind)


def test_paired_differences_round_trip_through_report_json_and_render(tmp_path: Path) -> None:
    phase = PhaseTally("run-m", _clicks())
    for index in range(5):
        phase.mark_sent(index, at=float(index))
        phase.on_recommendation(index, _answer(phase, index, ["y", "w", "z"], scorer="sknn"), received_at=index + 0.1)
        phase.on_recommendation(index, _answer(phase, index, ["q"], scorer="pop"), received_at=index + 0.2)
    report = ReplayReport(
        dataset="unit", fmt="synthetic", warm_dataset=None, bootstrap_servers="127.0.0.1:1", topic_prefix="t-",
        speed=0.0, rate_eps=10.0, started_at="2026-01-01T00:00:00+00:00", send_duration_s=1.0,
        total_duration_s=1.5, send_rate_eps=5.0, counts=ReplayCounts(sent=5, dlq=0, warm_sent=0, warm_dlq=0),
        scorers=phase.scorer_reports(), paired=phase.paired(),
    )
    paths = write_report(report, tmp_path / "out")
    again = read_report(paths[0])
    assert again == report and [p.verdict for p in again.paired] == ["sknn beats pop"] * 2
    assert json.loads(paths[0].read_text())["paired"][0].keys() >= {"a", "b", "metric", "diff", "ci95"}
    assert "| pop - sknn | HR@20 | -1.0000 |" in paths[1].read_text()
