"""A deterministic synthetic click stream with the structure session recommenders exploit.

Used by `make demo`, the tests and `streamrec evaluate` without --dataset, so nothing needs
../shared at run time. The generative story (all draws from one seeded numpy Generator):

- Items belong to latent *intents* (topics). Within an intent, and across intents, popularity
  is Zipf-skewed (weight of the r-th item: 1 / r**popularity_exponent).
- Each item has a few fixed *successors* in its intent; a session mostly walks along them
  (`follow_prob`), which is the sequential signal a kNN or a GNN learns and popularity misses.
- A session keeps its intent and switches rarely; it sometimes re-clicks an item it already
  saw (`revisit_prob`).
- Registered users have favourite intents and Zipf-skewed activity, so a few return for many
  sessions; a returning user's session may start from an item of an earlier session
  (`return_to_history_prob`), which is what long-term memory models exploit. Sessions without
  a user are anonymous.
- A share of the catalogue is released during the span (`new_item_share`): an item is never
  clicked before its release time, so new items appear over time.
- Drift (off by default): from `drift_day` on, a share `drift_share` of the items get new
  successors, so transitions learned before then go stale (what continual training must follow).
  Drawn from a second generator, so the log without drift is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamrec.state.clicklog.types import LoggedClick

Rng = np.random.Generator


@dataclass(frozen=True)
class SyntheticSpec:
    """Size and shape of a synthetic log; the same spec always yields the same clicks."""

    seed: int = 7
    users: int = 400
    sessions: int = 4000
    items: int = 1500
    intents: int = 30
    anonymous_share: float = 0.3
    """Share of sessions without a user id."""
    mean_session_clicks: float = 6.0
    """Mean clicks per session (at least 2)."""
    popularity_exponent: float = 0.8
    """Zipf exponent of item and intent popularity."""
    activity_exponent: float = 0.7
    """Zipf exponent of how many sessions each registered user has."""
    successors: int = 3
    follow_prob: float = 0.6
    revisit_prob: float = 0.1
    intent_switch_prob: float = 0.05
    favourite_intents: int = 2
    favourite_intent_prob: float = 0.8
    return_to_history_prob: float = 0.3
    new_item_share: float = 0.2
    days: float = 30.0
    start_ts: float = 1_704_067_200.0
    """2024-01-01 UTC."""
    mean_click_gap_s: float = 45.0
    drift_share: float = 0.0
    """Share of items whose successors are re-drawn at `drift_day` (0: no drift)."""
    drift_day: float = 15.0
    """Day of the span (from start_ts) when the drifted successors take over."""


@dataclass(frozen=True)
class _Catalogue:
    """Static item structure: intent membership, popularity, successors and release times."""

    intent_items: list[np.ndarray]
    """Per intent: its item indices, most popular first."""
    intent_cdf: list[np.ndarray]
    """Per intent: cumulative Zipf weights over `intent_items`."""
    intent_of: np.ndarray
    successors: np.ndarray
    """(items, successors) item indices."""
    release_ts: np.ndarray
    drifted_successors: np.ndarray
    """Successors from `drift_ts` on (equal to `successors` for items that do not drift)."""
    drift_ts: float


def generate(spec: SyntheticSpec = SyntheticSpec()) -> list[LoggedClick]:
    """All clicks of the synthetic log, in event-time order."""
    rng = np.random.default_rng(spec.seed)
    catalogue = _catalogue(spec, rng)
    intent_cdf = _zipf_cdf(spec.intents, spec.popularity_exponent)
    favourites = [_draw_many(rng, intent_cdf, spec.favourite_intents) for _ in range(spec.users)]
    activity_cdf = _zipf_cdf(spec.users, spec.activity_exponent)
    starts = np.sort(rng.uniform(spec.start_ts, spec.start_ts + spec.days * 86_400.0, spec.sessions))
    seen_by_user: dict[int, list[int]] = {}
    clicks: list[LoggedClick] = []
    for number, start in enumerate(starts):
        user = None if rng.random() < spec.anonymous_share else int(np.searchsorted(activity_cdf, rng.random()))
        history = seen_by_user.setdefault(user, []) if user is not None else []
        intent = _session_intent(spec, rng, intent_cdf, favourites[user] if user is not None else ())
        items = _session_items(spec, rng, catalogue, intent, history, float(start))
        history.extend(items)
        gaps = np.concatenate(([0.0], rng.exponential(spec.mean_click_gap_s, len(items) - 1)))
        for item, ts in zip(items, start + np.cumsum(gaps)):
            clicks.append(LoggedClick(f"s{number}", None if user is None else f"u{user}", f"i{item}", float(ts)))
    clicks.sort(key=lambda c: c.ts)
    return clicks


def _catalogue(spec: SyntheticSpec, rng: Rng) -> _Catalogue:
    intent_of = rng.permutation(spec.items) % spec.intents
    intent_items = [rng.permutation(np.flatnonzero(intent_of == k)) for k in range(spec.intents)]
    intent_cdf = [_zipf_cdf(len(members), spec.popularity_exponent) for members in intent_items]
    successors = np.empty((spec.items, spec.successors), dtype=np.int64)
    for members, cdf in zip(intent_items, intent_cdf):
        for item in members:
            successors[item] = members[_draw_many(rng, cdf, spec.successors)]
    span_s = spec.days * 86_400.0
    release_ts = np.full(spec.items, spec.start_ts)
    late = rng.random(spec.items) < spec.new_item_share
    release_ts[late] = rng.uniform(spec.start_ts, spec.start_ts + span_s, int(late.sum()))
    for members in intent_items:
        release_ts[members[:1]] = spec.start_ts  # each intent's head item exists from the start
    drifted = successors.copy()
    if spec.drift_share > 0:
        drift_rng = np.random.default_rng(spec.seed + 1)
        for members in intent_items:  # new successors drawn uniformly within the intent
            for item in members[drift_rng.random(members.size) < spec.drift_share]:
                drifted[item] = members[drift_rng.integers(members.size, size=spec.successors)]
    drift_ts = spec.start_ts + spec.drift_day * 86_400.0 if spec.drift_share > 0 else np.inf
    return _Catalogue(intent_items, intent_cdf, intent_of, successors, release_ts, drifted, drift_ts)


def _zipf_cdf(n: int, exponent: float) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** exponent
    return np.cumsum(weights) / weights.sum()


def _draw(rng: Rng, cdf: np.ndarray) -> int:
    return min(int(np.searchsorted(cdf, rng.random())), len(cdf) - 1)


def _draw_many(rng: Rng, cdf: np.ndarray, count: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(count)), len(cdf) - 1)


def _session_intent(spec: SyntheticSpec, rng: Rng, intent_cdf: np.ndarray, favourites: np.ndarray | tuple[()]) -> int:
    if len(favourites) and rng.random() < spec.favourite_intent_prob:
        return int(favourites[rng.integers(len(favourites))])
    return _draw(rng, intent_cdf)


def _session_items(
    spec: SyntheticSpec, rng: Rng, catalogue: _Catalogue, intent: int, history: list[int], now: float
) -> list[int]:
    """One session's clicked items: a walk over successors within (mostly) one intent."""
    length = 1 + int(rng.geometric(1.0 / max(spec.mean_session_clicks - 1.0, 1.0)))
    if history and rng.random() < spec.return_to_history_prob:
        first = history[rng.integers(len(history))]
        intent = int(catalogue.intent_of[first])
    else:
        first = _popular_item(rng, catalogue, intent, now)
    items = [first]
    while len(items) < length:
        if rng.random() < spec.revisit_prob:
            items.append(items[rng.integers(len(items))])
            continue
        if rng.random() < spec.intent_switch_prob:
            intent = int(rng.integers(spec.intents))
        table = catalogue.drifted_successors if now >= catalogue.drift_ts else catalogue.successors
        successor = int(table[items[-1], rng.integers(spec.successors)])
        released = catalogue.release_ts[successor] <= now
        follow = released and catalogue.intent_of[successor] == intent and rng.random() < spec.follow_prob
        items.append(successor if follow else _popular_item(rng, catalogue, intent, now))
    return items


def _popular_item(rng: Rng, catalogue: _Catalogue, intent: int, now: float) -> int:
    """A popularity-weighted item of `intent` that is already released at `now`."""
    members, cdf = catalogue.intent_items[intent], catalogue.intent_cdf[intent]
    for _ in range(20):
        item = int(members[_draw(rng, cdf)])
        if catalogue.release_ts[item] <= now:
            return item
    return int(members[0])  # always released (see _catalogue)
