"""The continual learner's settings (`training.learner`) as the trainer and the following scoring stages read them."""

from __future__ import annotations

from streamrec.config import Settings
from streamrec.models.online.settings import OnlineSettings


def online_settings(settings: Settings) -> OnlineSettings:
    """OnlineSettings defaults with `training.learner` overrides; one line when they are wrong."""
    try:
        return OnlineSettings(**settings.training.learner)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"training.learner is not valid ({exc}); see models/online/settings.py for the fields") from None
