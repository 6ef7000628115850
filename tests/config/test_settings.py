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


def test_the_write_key_is_checked_never_echoed_and_printed_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    from streamrec.errors import settings_error_line

    for mistyped in ("short-key", "a key with spaces in it", "0123456789abcdef\n"):
        monkeypatch.setenv("STREAMREC_API__WRITE_API_KEY", mistyped)
        with pytest.raises(pydantic.ValidationError) as refused:
            load_settings()
        line = settings_error_line(refused.value)
        assert "STREAMREC_API__WRITE_API_KEY" in line and "16 printable ASCII" in line and "\n" not in line
        assert mistyped.strip() not in line
    key = "0123456789abcdef-key"
    monkeypatch.setenv("STREAMREC_API__WRITE_API_KEY", key)
    settings = load_settings()
    assert settings.api.write_api_key is not None and settings.api.write_api_key.get_secret_value() == key
    assert key not in settings.model_dump_json()  # what `streamrec settings` prints


def test_cors_origins_must_be_origins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMREC_API__CORS_ALLOW_ORIGINS",
                       '["https://shop.example.com", "http://localhost:3000", "*"]')
    assert load_settings().api.cors_allow_origins == ["https://shop.example.com", "http://localhost:3000", "*"]
    for wrong in ("https://shop.example.com/", "shop.example.com", "https://shop.example.com/path"):
        with pytest.raises(pydantic.ValidationError, match="not an origin"):
            load_settings(api={"cors_allow_origins": [wrong]})
