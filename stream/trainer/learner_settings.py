"""The continual learner's settings (`training.learner`) as the trainer and the following scoring stages read them."""

from __future__ import annotations

from typing import Any

from streamrec.config import Settings
from streamrec.models.online.settings import OnlineSettings


def online_settings(settings: Settings) -> OnlineSettings:
    """OnlineSettings defaults with `training.learner` overrides; one line when they are wrong."""
    overrides: dict[str, Any] = settings.training.learner  # numbers from the settings, checked by OnlineSettings
    try:
        return OnlineSettings(**overrides)
    except (TypeError, ValueError) as exc:
        raise SystemExit(f"training.learner is not valid ({exc}); see models/online/settings.py for the "
                         "fields") from None
