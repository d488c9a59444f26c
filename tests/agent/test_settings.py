"""Settings come from the environment once, with defaults that need no keys, and bad values are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.settings import DEFAULT_DATABASE_URL, load_settings, normalise_database_url

ALL_VARIABLES = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "CALCOM_API_KEY",
    "CALCOM_API_URL",
    "CALCOM_WEBHOOK_SECRET",
    "TWILIO_ACCOUNT_SID",
    "TWILIO_AUTH_TOKEN",
    "TWILIO_API_BASE_URL",
    "PUBLIC_BASE_URL",
    "DATABASE_URL",
    "BUSINESSES_FILE",
    "LOG_LEVEL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ALL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_no_keys_means_embedded_everything() -> None:
    """With an empty environment the runtime uses the embedded calendar on SQLite and needs no keys."""
    settings = load_settings()
    assert settings.calendar_backend == "embedded"
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert str(settings.calcom_api_url) == "https://api.cal.com/v2"
    assert not settings.phone_line_ready
    assert settings.phone_line_missing() == [
        "OPENAI_API_KEY",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "PUBLIC_BASE_URL",
    ]


def test_calcom_key_switches_the_calendar(monkeypatch: pytest.MonkeyPatch) -> None:
    """Setting CALCOM_API_KEY makes Cal.com the calendar."""
    monkeypatch.setenv("CALCOM_API_KEY", "cal_live_abc")
    assert load_settings().calendar_backend == "calcom"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    """A .env file in the working directory is honoured."""
    (tmp_path / ".env").write_text("LOG_LEVEL=debug\nTWILIO_API_BASE_URL=http://127.0.0.1:9/\n")
    settings = load_settings()
    assert settings.log_level == "DEBUG"
    assert str(settings.twilio_api_base_url) == "http://127.0.0.1:9/"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOG_LEVEL", "loud"),
        ("DATABASE_URL", "mysql://root@localhost/db"),
        ("TWILIO_ACCOUNT_SID", "not-a-sid"),
        ("CALCOM_API_URL", "not a url"),
        ("PUBLIC_BASE_URL", "ftp//nope"),
    ],
)
def test_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    """An invalid value stops start-up with one sentence that starts with the variable's name."""
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"{variable} is invalid:")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@db/x", "postgresql+asyncpg://u:p@db/x"),
        ("postgresql://u@db/x", "postgresql+asyncpg://u@db/x"),
        ("postgresql+asyncpg://u@db/x", "postgresql+asyncpg://u@db/x"),
        ("sqlite:///var/x.db", "sqlite+aiosqlite:///var/x.db"),
    ],
)
def test_database_urls_get_the_async_driver(given: str, expected: str) -> None:
    """Pasted database URLs work without knowing SQLAlchemy's driver names."""
    assert normalise_database_url(given) == expected
