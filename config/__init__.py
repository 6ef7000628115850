"""Settings: every default and every knob lives here, documented once (see `Settings`)."""

from streamrec.config.settings import (
    HistorySettings,
    KafkaSettings,
    ScoringSettings,
    SessionSettings,
    Settings,
    StateSettings,
    ValidationSettings,
    load_settings,
)

__all__ = [
    "HistorySettings",
    "KafkaSettings",
    "ScoringSettings",
    "SessionSettings",
    "Settings",
    "StateSettings",
    "ValidationSettings",
    "load_settings",
]
