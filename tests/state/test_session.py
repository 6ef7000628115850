"""SessionGraph: the click sequence is the truth; nodes, edges and SR-GNN weights derive from it."""

from __future__ import annotations

from streamrec.state.session import SessionGraph


def graph_of(items: str, max_length: int = 50) -> SessionGraph:
    graph = SessionGraph(session_id="s")
    for n, item in enumerate(items):
        graph.add(item, ts=1000.0 + n, event_id=f"e{n}", max_length=max_length)
    return graph


def test_weights_are_transition_counts_over_out_degree() -> None:
    graph = graph_of("ABCBD")
    assert graph.nodes == ["A", "B", "C", "D"]
    assert graph.edge_weights == {("A", "B"): 1.0, ("B", "C"): 0.5, ("C", "B"): 1.0, ("B", "D"): 0.5}


def test_repeated_click_is_a_self_loop_and_counts_twice() -> None:
    graph = graph_of("AABAB")
    assert graph.edge_counts == {("A", "A"): 1, ("A", "B"): 2, ("B", "A"): 1}
    assert graph.edge_weights[("A", "B")] == 2 / 3


def test_capping_drops_oldest_clicks_with_their_times_and_ids() -> None:
    graph = graph_of("ABCDE", max_length=3)
    assert graph.items == ["C", "D", "E"]
    assert graph.ts == [1002.0, 1003.0, 1004.0]
    assert graph.event_ids == ["e2", "e3", "e4"]
    assert graph.started_ts == 1000.0  # the session still started at its first click
    assert not graph.seen("e0") and graph.seen("e4")


def test_round_trips_through_a_plain_dict() -> None:
    graph = graph_of("ABCA")
    assert SessionGraph.from_dict(graph.to_dict()) == graph


def test_empty_session_has_no_last_item() -> None:
    graph = SessionGraph(session_id="s", started_ts=5.0)
    assert graph.last_item is None and graph.last_ts == 5.0 and graph.edge_weights == {}
