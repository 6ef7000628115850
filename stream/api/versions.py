"""Model versions as the API sees them: what each scorer serves, since when, and every hot swap.

Two sources, both read by the feed: the `model-updates` topic (each version the trainer
announced, with its wall-clock `published_at`) and the `model_version` stamped on every
recommendation (the first answer a scorer made with a version, by its `ts_emitted`). A swap is
version a scorer answered with after an earlier one; its delay is announcement -> first answer
with it (load, verify, prequential guard, and waiting for the next batch). Only scorers of an
announced model count versions (`<model>` and `<model>+online`): the kNN's and popularity's
`model_version` moves with every click they learn, which is no model version. Callers hold
`LiveStats`' lock; nothing here locks.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from streamrec.stream.topics import ONLINE_SUFFIX, ModelUpdate

VERSIONS_KEPT = 200
"""Versions remembered per scorer, and announcements remembered (oldest forgotten first)."""


@dataclass(frozen=True)
class Announcement:
    model: str
    sequence: int
    version: str
    published_at: float
    examples_trained: int
    steps: int


class VersionTimeline:
    """First answer per (scorer, version) and every announcement; snapshots for /stats."""

    def __init__(self) -> None:
        self._first: dict[str, OrderedDict[str, float]] = {}
        self._latest: dict[str, tuple[float, str]] = {}
        """scorer -> (ts_emitted, version) of its latest answer by emission time (partitions arrive out of order)."""
        self._updates: OrderedDict[str, Announcement] = OrderedDict()

    def on_answer(self, scorer: str, version: str, emitted_at: float) -> None:
        if scorer not in self._latest or emitted_at >= self._latest[scorer][0]:
            self._latest[scorer] = (emitted_at, version)
        seen = self._first.setdefault(scorer, OrderedDict())
        if version not in seen:
            seen[version] = emitted_at
            if len(seen) > VERSIONS_KEPT:
                seen.popitem(last=False)
        elif emitted_at < seen[version]:  # answers of several partitions arrive out of order
            seen[version] = emitted_at

    def on_update(self, update: ModelUpdate) -> None:
        self._updates[update.version] = Announcement(update.model, update.sequence, update.version, update.published_at,
                                                     update.examples_trained, update.steps)
        if len(self._updates) > VERSIONS_KEPT:
            self._updates.popitem(last=False)

    def versioned(self, scorer: str) -> bool:
        """Whether `scorer` serves an announced model (its versions are model versions)."""
        models = {a.model for a in self._updates.values()}
        return scorer.removesuffix(ONLINE_SUFFIX) in models

    def swaps(self) -> list[dict[str, object]]:
        """Every version a scorer of an announced model switched to after answering with another, oldest first."""
        swaps: list[dict[str, object]] = []
        for scorer, seen in sorted(self._first.items()):
            if not self.versioned(scorer):
                continue
            ordered = sorted(seen.items(), key=lambda kv: kv[1])
            for previous, (version, first_at) in zip(ordered, ordered[1:]):
                announced = self._updates.get(version)
                swaps.append({
                    "scorer": scorer, "version": version, "from_version": previous[0], "first_answer_at": first_at,
                    "sequence": announced.sequence if announced else None,
                    "announced_at": announced.published_at if announced else None,
                    "delay_s": max(first_at - announced.published_at, 0.0) if announced else None,
                })
        return sorted(swaps, key=lambda s: float(str(s["first_answer_at"])))

    def snapshot(self, now: float) -> dict[str, object]:
        """serving (per scorer: version, since, age of the version), announcements, swaps."""
        serving: dict[str, dict[str, object]] = {}
        for scorer, (_, version) in sorted(self._latest.items()):
            seen = self._first.get(scorer)
            since = seen.get(version) if seen is not None else None
            announced = self._updates.get(version)
            born = announced.published_at if announced else since
            serving[scorer] = {"version": version, "serving_since": since,
                               "sequence": announced.sequence if announced else None,
                               "age_s": None if born is None else max(now - born, 0.0),
                               "versions_served": len(self._first.get(scorer, {})) if self.versioned(scorer) else None}
        updates = [{"sequence": a.sequence, "version": a.version, "published_at": a.published_at,
                    "examples_trained": a.examples_trained, "steps": a.steps}
                   for a in sorted(self._updates.values(), key=lambda a: a.sequence)]
        return {"serving": serving, "model_updates": updates, "swaps": self.swaps()}
