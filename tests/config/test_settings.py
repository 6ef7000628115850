"""Settings resolve from defaults, a TOML file and the environment, and stay immutable."""

from pathlib import Path

import pydantic
import pytest

from streamrec.config import load_settings
from streamrec.config.reference import settings_markdown

REPO = Path(__file__).resolve().parents[2]


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_KAFKA__BOOTSTRAP_SERVERS", "kafka-1:9092")
    monkeypatch.setenv("STREAMREC_SESSION__MAX_LENGTH", "7")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "kafka-1:9092"
    assert settings.session.max_length == 7


def test_toml_file_is_read_and_env_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "streamrec.toml"
    config.write_text('[scoring]\ntop_k = 5\nscorer = "pop"\n')
    monkeypatch.setenv("STREAMREC_CONFIG", str(config))
    monkeypatch.setenv("STREAMREC_SCORING__TOP_K", "9")
    settings = load_settings()
    assert settings.scoring.scorer == "pop"
    assert settings.scoring.top_k == 9


def test_settings_are_frozen_and_validated() -> None:
    settings = load_settings()
    with pytest.raises(pydantic.ValidationError):
        settings.kafka.partitions = 3  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        load_settings(session={"max_length": 1})
    with pytest.raises(pydantic.ValidationError):
        load_settings(kafka={"no_such_setting": 1})


def test_configuration_reference_is_up_to_date() -> None:
    documented = (REPO / "docs" / "configuration.md").read_text()
    assert documented == settings_markdown(), "run: streamrec settings --markdown > docs/configuration.md"


def test_single_record_batches_refuse_short_fetch_waits() -> None:
    """On Tansu, one-record batches with short fetch waits make consumers skip records (see the setting)."""
    with pytest.raises(pydantic.ValidationError, match="fetch_wait_max_ms"):
        load_settings(kafka={"single_record_batches": True, "fetch_wait_max_ms": 10})
    assert load_settings(kafka={"single_record_batches": True, "fetch_wait_max_ms": 500}).kafka.fetch_wait_max_ms == 500
