"""The demo's log and starting model: which clicks warm up and train, which are judged, and a cached checkpoint.

Without a warm log, the earliest `demo.warm_share` of the clicks (in event time) train the
starting model and are replayed unjudged; the next `demo.judged_clicks_max` are judged. The
starting model is the default preset trained on the warm clicks only (early stopping on their
latest sessions) within `demo.train_budget_s`; it is cached under `demo.checkpoint_cache_dir`,
outside the repository, keyed by what it was trained on, so a second demo on the same log starts
at once. After the report the judged clicks can be sent again (`looped`), as new sessions, so the
stream goes on as a shop's would.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

from streamrec.config.settings import DemoSettings
from streamrec.errors import UserError
from streamrec.state.clicklog.types import LoggedClick

PRESET = "default"
"""The model the demo serves: the project's default graph neural preset (docs/models.md)."""
MIN_WARM_SESSIONS = 20
"""Sessions of two or more clicks the warm part needs to train the starting model (some are held out to stop early)."""
_CACHE_FORMAT = "1"
"""Part of the cache key: bump when what the demo trains changes in a way the key does not see."""


@dataclass(frozen=True)
class DemoLog:
    warm: list[LoggedClick]
    """Replayed first, unjudged; the starting model trains on these."""
    judged: list[LoggedClick]


def split_log(clicks: Sequence[LoggedClick], warm: Sequence[LoggedClick] | None, settings: DemoSettings) -> DemoLog:
    """The warm and judged clicks (both in event-time order) of a demo run."""
    if warm:
        judged = list(clicks)
        warm_part = list(warm)
    else:
        cut = max(1, min(len(clicks) - 1, int(len(clicks) * settings.warm_share)))
        warm_part, judged = list(clicks[:cut]), list(clicks[cut:])
    if settings.judged_clicks_max:
        judged = judged[: settings.judged_clicks_max]
    if not judged:
        raise UserError("the log has no click left to judge after the warm part: give a longer --dataset "
                        "(or a separate --warm log)")
    return DemoLog(warm=warm_part, judged=judged)


def _check_trainable(warm: Sequence[LoggedClick]) -> None:
    lengths: dict[str, int] = {}
    for click in warm:
        lengths[click.session_id] = lengths.get(click.session_id, 0) + 1
    trainable = sum(1 for n in lengths.values() if n >= 2)
    if trainable < MIN_WARM_SESSIONS:
        raise UserError(f"the warm part ({len(warm):,} clicks) holds {trainable} sessions of two or more clicks; the "
                        f"starting model needs at least {MIN_WARM_SESSIONS}: give a longer log, or serve a checkpoint "
                        "(STREAMREC_SCORING__CHECKPOINT_PATH=model.pt, from `streamrec train`)")


def cache_key(warm: Sequence[LoggedClick], budget_s: float) -> str:
    """Digest of everything the starting model depends on: the warm clicks, the preset, the budget, the versions."""
    from importlib.metadata import version

    import torch

    digest = hashlib.sha256()
    for part in (_CACHE_FORMAT, PRESET, f"{budget_s:g}", version("streamrec"), torch.__version__):
        digest.update(part.encode() + b"\0")
    for c in warm:
        digest.update(f"{c.session_id}\t{c.user_id or ''}\t{c.item_id}\t{c.ts!r}\n".encode())
    return digest.hexdigest()[:20]


def starting_model(warm: Sequence[LoggedClick], settings: DemoSettings, console: Console) -> Path:
    """The cached starting checkpoint for `warm`, trained (and cached) first when there is none."""
    cache = Path(os.path.expanduser(settings.checkpoint_cache_dir))
    path = cache / f"{PRESET}-{cache_key(warm, settings.train_budget_s)}.pt"
    if path.is_file():
        console.print(f"demo: starting model from the cache, {path} (trained once on the warm clicks; delete it to "
                      "retrain)")
        return path
    from streamrec.models.train import train_checkpoint
    from streamrec.state.clicklog.protocols import recent_split

    _check_trainable(warm)
    console.print(f"demo: training the starting model ({PRESET} preset) on {len(warm):,} warm clicks, "
                  f"at most {settings.train_budget_s:g} s (cached in {cache} for the next run)")
    started = time.perf_counter()
    checkpoint = train_checkpoint(PRESET, recent_split(warm), device="cpu", max_train_seconds=settings.train_budget_s)
    cache.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    checkpoint.save(partial)
    partial.replace(path)  # a demo stopped while saving leaves no half file under the cache's name
    console.print(f"demo: starting model trained in {time.perf_counter() - started:.0f} s: {path}")
    return path


def looped(judged: Sequence[LoggedClick], round_number: int) -> Iterator[LoggedClick]:
    """The judged clicks again as new anonymous sessions (ids suffixed with the round), at their own event times.

    Anonymous, so no user's state sees a session older than the one it holds; not shifted in
    time, so a log of recent clicks is never pushed past `validation.max_future_s`.
    """
    suffix = f"~r{round_number}"
    for click in judged:
        yield replace(click, session_id=click.session_id + suffix, user_id=None)
