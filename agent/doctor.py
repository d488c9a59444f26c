"""`python -m agent doctor`: what this installation will do, and what a real phone line still needs.

It prints the effective configuration (secrets masked), which backends are active (embedded or
real), whether the database answers, the businesses and their numbers, and the missing pieces.
"""

from __future__ import annotations

from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from agent.database import describe
from agent.logs import mask_phone
from agent.settings import Settings
from agent.wiring import Runtime


def mask_secret(value: SecretStr | None) -> str:
    """`sk-abcdef123456` -> `sk-a…3456`; short secrets are fully hidden."""
    if value is None:
        return "(not set)"
    raw = value.get_secret_value()
    return "****" if len(raw) < 12 else f"{raw[:4]}…{raw[-4:]}"


def settings_rows(settings: Settings) -> list[tuple[str, str]]:
    """Every variable with its effective value, secrets masked."""

    def plain(value: object) -> str:
        return "(not set)" if value is None else str(value)

    return [
        ("OPENAI_API_KEY", mask_secret(settings.openai_api_key)),
        ("OPENAI_BASE_URL", plain(settings.openai_base_url) if settings.openai_base_url else "(OpenAI)"),
        ("OPENAI_MODEL", settings.openai_model),
        ("OPENAI_STT_MODEL", settings.openai_stt_model),
        ("OPENAI_TTS_MODEL", settings.openai_tts_model),
        ("OPENAI_TTS_VOICE", settings.openai_tts_voice),
        ("STT_PROVIDER", settings.stt_provider),
        ("DEEPGRAM_API_KEY", mask_secret(settings.deepgram_api_key)),
        ("CALCOM_API_KEY", mask_secret(settings.calcom_api_key)),
        ("CALCOM_API_URL", plain(settings.calcom_api_url)),
        ("CALCOM_WEBHOOK_SECRET", mask_secret(settings.calcom_webhook_secret)),
        ("TWILIO_ACCOUNT_SID", plain(settings.twilio_account_sid)),
        ("TWILIO_AUTH_TOKEN", mask_secret(settings.twilio_auth_token)),
        ("TWILIO_API_BASE_URL", plain(settings.twilio_api_base_url)),
        ("PUBLIC_BASE_URL", plain(settings.public_base_url)),
        ("DATABASE_URL", describe(settings.database_url)),
        (
            "BUSINESSES_FILE",
            plain(settings.businesses_file) if settings.businesses_file else "(demo business)",
        ),
        ("LOG_LEVEL", settings.log_level),
    ]


def backend_rows(settings: Settings) -> list[tuple[str, str]]:
    database = (
        "PostgreSQL (shared)" if settings.database_url.startswith("postgresql") else "SQLite (embedded)"
    )
    return [
        ("calendar", "Cal.com" if settings.calendar_backend == "calcom" else "embedded calendar"),
        ("database", database),
        ("language model", "OpenAI" if settings.openai_api_key else "none (scripted calls only)"),
        ("phone line", "Twilio" if settings.phone_line_ready else "not connected"),
    ]


def report(runtime: Runtime, console: Console) -> None:
    settings = runtime.settings
    config = Table(title="Configuration", show_header=True)
    config.add_column("variable")
    config.add_column("value")
    for name, value in settings_rows(settings):
        config.add_row(name, value)
    console.print(config)

    backends = Table(title="Backends", show_header=True)
    backends.add_column("part")
    backends.add_column("active")
    for part, active in backend_rows(settings):
        backends.add_row(part, active)
    console.print(backends)

    businesses = Table(title="Businesses", show_header=True)
    for column in ("id", "name", "numbers", "time zone", "services"):
        businesses.add_column(column)
    for business in runtime.directory:
        businesses.add_row(
            business.id,
            business.name,
            ", ".join(mask_phone(n) for n in business.phone_numbers),
            business.time_zone,
            ", ".join(s.key for s in business.services),
        )
    console.print(businesses)
    console.print("database: connected, schema ready")

    missing = settings.phone_line_missing()
    if missing:
        console.print(f"For a real phone line, set: {', '.join(missing)}.")
    else:
        console.print("Ready for a real phone line.")
