"""The synthetic generator: deterministic, and shaped like a real click stream."""

from collections import Counter, defaultdict

import pytest

from streamrec.state.clicklog import LoggedClick, SyntheticSpec, generate

SPEC = SyntheticSpec(users=100, sessions=1500, items=600, intents=20, seed=3)


@pytest.fixture(scope="module")
def clicks() -> list[LoggedClick]:
    return generate(SPEC)


def sessions(clicks: list[LoggedClick]) -> dict[str, list[LoggedClick]]:
    grouped: dict[str, list[LoggedClick]] = defaultdict(list)
    for click in clicks:
        grouped[click.session_id].append(click)
    return grouped


def test_deterministic_by_seed(clicks: list[LoggedClick]) -> None:
    assert generate(SPEC) == clicks
    assert generate(SyntheticSpec(users=100, sessions=1500, items=600, intents=20, seed=4)) != clicks


def test_shape_and_time_order(clicks: list[LoggedClick]) -> None:
    by_session = sessions(clicks)
    assert len(by_session) == SPEC.sessions
    assert all(len(s) >= 2 for s in by_session.values())
    assert all(a.ts <= b.ts for a, b in zip(clicks, clicks[1:]))
    span = clicks[-1].ts - clicks[0].ts
    assert SPEC.start_ts <= clicks[0].ts and span <= SPEC.days * 86_400 + 3_600
    assert {c.item_id for c in clicks} <= {f"i{n}" for n in range(SPEC.items)}


def test_popularity_is_skewed(clicks: list[LoggedClick]) -> None:
    counts = sorted(Counter(c.item_id for c in clicks).values(), reverse=True)
    top_tenth = sum(counts[: SPEC.items // 10])
    assert top_tenth > 0.3 * len(clicks)  # uniform would give 10%


def test_revisits_inside_sessions(clicks: list[LoggedClick]) -> None:
    repeats = sum(len(s) - len({c.item_id for c in s}) for s in sessions(clicks).values())
    assert repeats > 0.03 * len(clicks)


def test_returning_users_and_anonymous_sessions(clicks: list[LoggedClick]) -> None:
    user_of = {sid: s[0].user_id for sid, s in sessions(clicks).items()}
    anonymous = sum(user is None for user in user_of.values()) / len(user_of)
    assert anonymous == pytest.approx(SPEC.anonymous_share, abs=0.05)
    per_user = Counter(user for user in user_of.values() if user is not None)
    assert max(per_user.values()) >= 20
    assert sum(n >= 5 for n in per_user.values()) >= 30


def test_new_items_appear_over_time(clicks: list[LoggedClick]) -> None:
    first_seen: dict[str, float] = {}
    for click in clicks:
        first_seen.setdefault(click.item_id, click.ts)
    late = clicks[0].ts + 0.5 * (clicks[-1].ts - clicks[0].ts)
    newcomers = [item for item, ts in first_seen.items() if ts > late]
    assert len(newcomers) >= 0.05 * len(first_seen)


def test_next_click_is_learnable_beyond_popularity(clicks: list[LoggedClick]) -> None:
    """Most frequent successors of the last click (from the first 80%) beat the most popular items."""
    ordered = sorted(sessions(clicks).values(), key=lambda s: s[0].ts)
    cut = int(0.8 * len(ordered))
    popular: Counter[str] = Counter()
    successors: dict[str, Counter[str]] = defaultdict(Counter)
    for session in ordered[:cut]:
        items = [c.item_id for c in session]
        popular.update(items)
        for a, b in zip(items, items[1:]):
            successors[a][b] += 1
    top = {item for item, _ in popular.most_common(20)}
    pop_hits = markov_hits = total = 0
    for session in ordered[cut:]:
        items = [c.item_id for c in session]
        for last, target in zip(items, items[1:]):
            total += 1
            pop_hits += target in top
            markov_hits += target in {item for item, _ in successors[last].most_common(20)}
    assert markov_hits / total > 2 * pop_hits / total
