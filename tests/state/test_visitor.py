"""apply_click: the one state transition every engine runs (pure, no Kafka)."""

from __future__ import annotations

from streamrec.state.visitor import Click, SessionPolicy, VisitorState, apply_click

T0 = 1_700_000_000.0
POLICY = SessionPolicy(max_length=4, inactivity_gap_s=100.0, max_open_per_visitor=2, history_max_items=5)


def click(n: int, session: str = "s1", item: str | None = None, user: str | None = "u1",
          ts: float | None = None) -> Click:
    return Click(event_id=f"{session}-{n}", session_id=session, user_id=user, item_id=item or f"i{n}",
                 ts=T0 + n if ts is None else ts)


def fold(state: VisitorState, *clicks: Click) -> VisitorState:
    for c in clicks:
        apply_click(state, c, POLICY)
    return state


def test_clicks_build_the_session_graph_in_order() -> None:
    state = VisitorState()
    for n, item in enumerate("ABCBD"):
        transition = apply_click(state, click(n, item=item), SessionPolicy())
    graph = transition.session
    assert graph.items == list("ABCBD")
    assert graph.edge_weights == {("A", "B"): 1.0, ("B", "C"): 0.5, ("C", "B"): 1.0, ("B", "D"): 0.5}
    assert not transition.duplicate and transition.closed == ()


def test_session_is_capped_at_max_length() -> None:
    state = fold(VisitorState(), *(click(n) for n in range(6)))
    assert state.sessions["s1"].items == ["i2", "i3", "i4", "i5"]


def test_idle_session_of_a_known_user_closes_into_history() -> None:
    state = fold(VisitorState(), click(0), click(1))
    transition = apply_click(state, click(0, session="s2", ts=T0 + 1 + 101), POLICY)
    assert [g.session_id for g in transition.closed] == ["s1"]
    assert list(state.sessions) == ["s2"]
    assert state.history.items == ["i0", "i1"] and state.history.sessions_closed == 1


def test_history_keeps_only_the_newest_items() -> None:
    state = VisitorState()
    for s in range(3):
        fold(state, *(click(n, session=f"s{s}", item=f"{s}-{n}", ts=T0 + 1000 * s + n) for n in range(3)))
    assert state.history.items == ["0-1", "0-2", "1-0", "1-1", "1-2"]  # s2 still open; 6 closed items capped at 5


def test_a_session_idle_too_long_restarts_under_the_same_id() -> None:
    state = fold(VisitorState(), click(0), click(1, ts=T0 + 500))
    assert state.sessions["s1"].items == ["i1"]
    assert state.history.items == ["i0"]


def test_redelivered_click_changes_nothing() -> None:
    state = fold(VisitorState(), click(0), click(1))
    before = state.to_dict()
    transition = apply_click(state, click(0), POLICY)
    assert transition.duplicate
    assert state.to_dict() == before


def test_beyond_the_open_session_cap_the_stalest_closes() -> None:
    state = fold(VisitorState(), click(0, session="a"), click(1, session="b"), click(2, session="a"))
    transition = apply_click(state, click(3, session="c"), POLICY)
    assert [g.session_id for g in transition.closed] == ["b"]
    assert sorted(state.sessions) == ["a", "c"]
    assert state.history.items == ["i1"]


def test_anonymous_sessions_never_feed_history() -> None:
    state = fold(VisitorState(), click(0, user=None), click(1, user=None))
    apply_click(state, click(2, user=None, ts=T0 + 1000), POLICY)
    assert state.history.items == [] and state.history.sessions_closed == 0
    assert state.sessions["s1"].items == ["i2"]


def test_state_round_trips_through_a_plain_dict() -> None:
    state = fold(VisitorState(), click(0), click(1, session="s2"), click(2, session="s3"))
    assert VisitorState.from_dict(state.to_dict()).to_dict() == state.to_dict()
    assert VisitorState.from_dict(None).to_dict() == VisitorState().to_dict()
