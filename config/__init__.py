"""Settings: every default and every knob lives here, documented once (see `Settings`)."""

from streamrec.config.settings import (
    HealthSettings,
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
    "HealthSettings",
    "HistorySettings",
    "KafkaSettings",
    "ScoringSettings",
    "SessionSettings",
    "Settings",
    "StateSettings",
    "ValidationSettings",
    "load_settings",
]
