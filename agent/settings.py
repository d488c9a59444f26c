"""The runtime's configuration: the only module that reads the environment.

Every variable is listed in the README. `Settings` is built once by the CLI entry point and passed
down; nothing else looks at `os.environ`. A value that does not parse stops the program with one
line naming the variable (see `load_settings`), never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agent.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/receptionist.db"

LogLevel = Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    """Runtime settings, from the environment or an optional `.env` file in the working directory.

    With no keys at all the runtime is complete: the embedded calendar on SQLite, scripted calls,
    no phone line. Each key switches one real service on.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    openai_api_key: SecretStr | None = Field(None, description="OpenAI key: STT, LLM and TTS for live calls.")
    openai_base_url: AnyHttpUrl | None = Field(
        None, description="OpenAI-compatible endpoint (default: OpenAI's); tests point it at a local fake."
    )
    openai_model: str = Field("gpt-4.1-mini", min_length=1, description="Chat model with tool calling.")
    openai_stt_model: str = Field("gpt-4o-transcribe", min_length=1, description="Speech-to-text model.")
    openai_tts_model: str = Field("gpt-4o-mini-tts", min_length=1, description="Text-to-speech model.")
    openai_tts_voice: str = Field("alloy", min_length=1, description="Text-to-speech voice.")
    stt_provider: Literal["openai", "deepgram"] = Field(
        "openai", description="Speech-to-text: OpenAI (segmented) or Deepgram (streaming, lower latency)."
    )
    deepgram_api_key: SecretStr | None = Field(None, description="Deepgram key, with STT_PROVIDER=deepgram.")
    calcom_api_key: SecretStr | None = Field(
        None, description="Cal.com API key; without it bookings go to the embedded calendar."
    )
    calcom_api_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://api.cal.com/v2"), description="Cal.com API v2 base."
    )
    calcom_webhook_secret: SecretStr | None = Field(
        None, description="Secret that signs Cal.com webhooks (X-Cal-Signature-256)."
    )
    twilio_account_sid: str | None = Field(None, description="Twilio account SID (AC...).")
    twilio_auth_token: SecretStr | None = Field(
        None, description="Twilio auth token: validates webhooks, authorises REST calls."
    )
    twilio_api_base_url: AnyHttpUrl = Field(
        AnyHttpUrl("https://api.twilio.com"), description="Where every Twilio REST call goes."
    )
    public_base_url: AnyHttpUrl | None = Field(
        None, description="Public https URL Twilio reaches this server at (signatures are computed on it)."
    )
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL: SQLite by default, postgresql+asyncpg://... to share.",
    )
    businesses_file: Path | None = Field(
        None,
        description="YAML file of business profiles (default: built from Cal.com, or the demo business).",
    )
    log_level: LogLevel = Field("INFO", description="Log level.")

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("twilio_account_sid")
    @classmethod
    def _account_sid_shape(cls, value: str | None) -> str | None:
        if value is not None and not (value.startswith("AC") and len(value) == 34):
            raise ValueError("must be a Twilio account SID: 'AC' followed by 32 hex characters")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @field_validator("stt_provider", mode="before")
    @classmethod
    def _lower_provider(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @property
    def calendar_backend(self) -> Literal["calcom", "embedded"]:
        return "calcom" if self.calcom_api_key else "embedded"

    @property
    def phone_line_ready(self) -> bool:
        return not self.phone_line_missing()

    def phone_line_missing(self) -> list[str]:
        """The variables a real phone call still needs, by name."""
        needed: dict[str, object] = {
            "OPENAI_API_KEY": self.openai_api_key,
            "TWILIO_ACCOUNT_SID": self.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": self.twilio_auth_token,
            "PUBLIC_BASE_URL": self.public_base_url,
        }
        if self.stt_provider == "deepgram":
            needed["DEEPGRAM_API_KEY"] = self.deepgram_api_key
        return [name for name, value in needed.items() if not value]


def normalise_database_url(url: str) -> str:
    """Accept the URLs people paste (`postgres://`, `sqlite:///x.db`) and pick the async driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url[len("sqlite://") :]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        return url
    raise ValueError("must start with sqlite:// or postgresql:// (e.g. postgresql+asyncpg://user@host/db)")


def load_settings(**overrides: object) -> Settings:
    """Build `Settings` from the environment; a bad value raises `ConfigError` naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "configuration"
        reason = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{name} is invalid: {reason}.") from exc
