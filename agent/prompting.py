"""The receptionist's words, loaded from `prompts/` and checked before any call is answered.

Businesses change wording; a typo in a placeholder must not surface as a caller hearing
"{when}" or as a crash mid-call. So every template is checked at load time against the
placeholders the runtime fills for it: an unknown placeholder, a missing template or an error code
without a sentence stops start-up with one `ConfigError` naming the file and key.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.errors import ConfigError
from booking.errors import ALL_ERRORS

PROMPTS_DIR = Path(__file__).resolve().parent.parent / "prompts"

SYSTEM_PLACEHOLDERS = frozenset({"business_name", "today", "time_zone", "services", "hours"})

# Which placeholders the runtime fills for each phrase: a template may use any subset.
PHRASE_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "call.greeting": frozenset({"business_name"}),
    "call.greeting_known": frozenset({"business_name", "first_name"}),
    "call.greeting_known_with_booking": frozenset({"business_name", "first_name", "appointment"}),
    "call.known_caller_context": frozenset({"name", "appointments"}),
    "call.filler": frozenset(),
    "call.still_there": frozenset(),
    "call.goodbye": frozenset({"business_name"}),
    "call.silence_goodbye": frozenset({"business_name"}),
    "call.transfer": frozenset({"business_name"}),
    "call.no_transfer": frozenset({"business_name"}),
    "call.service_trouble": frozenset({"business_name"}),
    "call.service_trouble_callback": frozenset({"business_name"}),
    "call.too_long": frozenset({"business_name"}),
    "availability.offers": frozenset({"times", "service"}),
    "availability.one_offer": frozenset({"times", "service"}),
    "availability.nearest": frozenset({"times", "service"}),
    "availability.none": frozenset({"service"}),
    "read_back.book": frozenset({"service", "when", "name", "email"}),
    "read_back.book_with_phone": frozenset({"service", "when", "name", "email", "phone"}),
    "read_back.reschedule": frozenset({"service", "old_when", "when"}),
    "read_back.cancel": frozenset({"service", "when"}),
    "outcome.booked": frozenset({"service", "when", "name"}),
    "outcome.pending": frozenset({"service", "when", "name"}),
    "outcome.rescheduled": frozenset({"service", "when"}),
    "outcome.cancelled": frozenset({"service", "when"}),
    "find.bookings": frozenset({"bookings"}),
    "find.none": frozenset(),
    "find.code_sent": frozenset({"last_digits"}),
    "find.verified": frozenset({"bookings"}),
}
ERROR_PLACEHOLDERS: dict[str, frozenset[str]] = {
    "unknown_service": frozenset({"options"}),
    "invalid_contact": frozenset({"field"}),
}
EXTRA_ERROR_CODES = ("invalid_email", "invalid_phone", "invalid_arguments", "unknown_tool")


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@dataclass(frozen=True)
class Phrases:
    """Fixed sentences by `section.key`, each checked against the placeholders it may use."""

    templates: dict[str, str]

    def say(self, key: str, **values: Any) -> str:
        template = self.templates[key]
        missing = _fields(template) - values.keys()
        if missing:
            raise KeyError(f"phrase {key} needs {', '.join(sorted(missing))}")
        return template.format(**values)

    def error(self, code: str, **values: Any) -> str:
        """The sentence for an error code; context the template does not use is ignored."""
        template = self.templates.get(f"errors.{code}", self.templates["errors.refusal"])
        return template.format(**{k: values.get(k, "") for k in _fields(template)})


@dataclass(frozen=True)
class Prompts:
    system_template: str
    phrases: Phrases

    def system(
        self, *, business_name: str, today: datetime, time_zone: str, services: str, hours: str
    ) -> str:
        return self.system_template.format(
            business_name=business_name,
            today=today.strftime("%A, %B %-d, %Y, %-I:%M %p"),
            time_zone=time_zone,
            services=services,
            hours=hours,
        )


def load_prompts(directory: Path = PROMPTS_DIR) -> Prompts:
    """Read `system.md` and `phrases.toml`; any unknown or missing piece is a `ConfigError`."""
    system_path, phrases_path = directory / "system.md", directory / "phrases.toml"
    try:
        system = system_path.read_text(encoding="utf-8")
        document = tomllib.loads(phrases_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"Prompt file {exc.filename} is missing.") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{phrases_path} is not valid TOML: {exc}.") from exc
    _check(system_path, "system prompt", system, SYSTEM_PLACEHOLDERS, exact=True)

    templates: dict[str, str] = {}
    for section, entries in document.items():
        if not isinstance(entries, dict):
            raise ConfigError(f"{phrases_path} [{section}] must be a table of sentences.")
        for key, value in entries.items():
            if not isinstance(value, str):
                raise ConfigError(f"{phrases_path} [{section}] {key} must be a string.")
            templates[f"{section}.{key}"] = value

    expected = dict(PHRASE_PLACEHOLDERS)
    for code in [error.code for error in ALL_ERRORS] + ["refusal", *EXTRA_ERROR_CODES]:
        expected[f"errors.{code}"] = ERROR_PLACEHOLDERS.get(code, frozenset())
    for key, allowed in expected.items():
        if key not in templates:
            section, name = key.split(".", 1)
            raise ConfigError(f"{phrases_path} has no [{section}] {name} sentence.")
        _check(phrases_path, key, templates[key], allowed, exact=False)
    return Prompts(system_template=system, phrases=Phrases(templates))


def _check(path: Path, key: str, template: str, allowed: frozenset[str], *, exact: bool) -> None:
    try:
        used = _fields(template)
    except ValueError as exc:
        raise ConfigError(f"{path} {key} has a broken placeholder: {exc}.") from exc
    unknown = used - allowed
    if unknown:
        raise ConfigError(f"{path} {key} uses unknown placeholder {{{sorted(unknown)[0]}}}.")
    if exact and used != allowed:
        raise ConfigError(f"{path} {key} is missing placeholder {{{sorted(allowed - used)[0]}}}.")
