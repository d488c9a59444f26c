"""Business profiles: who answers which phone number, and how.

A profile is written by the business (or its installer) in YAML and validated here, at the edge,
with pydantic. The rest of the runtime sees `BusinessProfile` objects only. With no file, the
embedded mode uses the demo business shipped in `fixtures/businesses/`; the Cal.com mode builds
one profile from the Cal.com account (see the calendar wiring).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.errors import ConfigError
from agent.yamldoc import load_yaml_model
from booking.models import Service

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MIDNIGHT = time(0)
_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _e164(value: str) -> str:
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{value!r} is not a phone number in +E.164 form") from exc
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"{value!r} is not a possible phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


PhoneNumber = Annotated[str, Field(description="E.164, e.g. +15550100000")]


class OpeningSpan(BaseModel):
    """One opening span of a day, written "09:00-12:30"; "24:00" closes at midnight (`time(0)`)."""

    model_config = ConfigDict(frozen=True)

    opens: time
    closes: time

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        match = _SPAN.match(value)
        if not match:
            raise ValueError(f"opening hours must look like '09:00-17:00', got {value!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
            raise ValueError(f"{value!r} is not a time of day")
        if h2 == 24 and m2 != 0:
            raise ValueError(f"{value!r} is not a time of day")
        closes = time(0) if h2 == 24 else time(h2, m2)
        return {"opens": time(h1, m1), "closes": closes}

    @model_validator(mode="after")
    def _ordered(self) -> OpeningSpan:
        if self.closes != MIDNIGHT and self.closes <= self.opens:
            raise ValueError(f"closes ({self.closes}) must be after opens ({self.opens})")
        return self


class ServiceProfile(BaseModel):
    """A service the business offers; Cal.com event type or local rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    synonyms: tuple[str, ...] = ()
    duration_minutes: int = Field(gt=0, le=24 * 60)
    event_type_id: int | None = Field(None, description="Cal.com event type id (Cal.com mode).")
    buffer_before_minutes: int = Field(0, ge=0)
    buffer_after_minutes: int = Field(0, ge=0)
    min_notice_minutes: int = Field(60, ge=0)
    horizon_days: int = Field(60, gt=0)
    slot_interval_minutes: int | None = Field(None, gt=0)
    requires_confirmation: bool = False

    def to_service(self) -> Service:
        return Service(
            key=self.key,
            name=self.name,
            duration=timedelta(minutes=self.duration_minutes),
            synonyms=self.synonyms,
            requires_confirmation=self.requires_confirmation,
            event_type_id=self.event_type_id,
        )


class BusinessProfile(BaseModel):
    """Everything the runtime knows about one business."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    name: str
    phone_numbers: tuple[PhoneNumber, ...] = Field(
        (), description="Numbers that reach it; a business built from a Cal.com account has none."
    )
    time_zone: str
    services: tuple[ServiceProfile, ...] = Field(min_length=1)
    hours: dict[Weekday, tuple[OpeningSpan, ...]] = Field(default_factory=dict)
    closed_dates: frozenset[date] = frozenset()
    staff: tuple[str, ...] = ()
    transfer_number: PhoneNumber | None = None
    greeting: str | None = None
    sms_opt_in: bool = True
    reminder_hours_before: int | None = Field(24, ge=1)

    @field_validator("phone_numbers")
    @classmethod
    def _numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_e164(v) for v in value)

    @field_validator("transfer_number")
    @classmethod
    def _transfer(cls, value: str | None) -> str | None:
        return None if value is None else _e164(value)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone such as America/New_York") from exc
        return value

    @model_validator(mode="after")
    def _unique_services(self) -> BusinessProfile:
        keys = [s.key for s in self.services]
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"service keys must be unique, repeated: {', '.join(duplicates)}")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def booking_services(self) -> list[Service]:
        return [s.to_service() for s in self.services]


class BusinessFile(BaseModel):
    """The YAML document: `businesses: [...]`."""

    model_config = ConfigDict(extra="forbid")

    businesses: tuple[BusinessProfile, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> BusinessFile:
        ids = [b.id for b in self.businesses]
        if len(set(ids)) != len(ids):
            raise ValueError("business ids must be unique")
        for business in self.businesses:
            if not business.phone_numbers:
                raise ValueError(f"{business.id} needs at least one phone number")
        seen: dict[str, str] = {}
        for business in self.businesses:
            for number in business.phone_numbers:
                if number in seen:
                    raise ValueError(f"{number} reaches both {seen[number]} and {business.id}")
                seen[number] = business.id
        return self


DEMO_BUSINESSES_FILE = Path(__file__).resolve().parent.parent / "fixtures" / "businesses" / "demo.yaml"


class Directory:
    """The businesses this runtime answers for, looked up by the number the caller dialled."""

    def __init__(self, businesses: tuple[BusinessProfile, ...]) -> None:
        self._by_id = {b.id: b for b in businesses}
        self._by_number = {n: b for b in businesses for n in b.phone_numbers}

    def __iter__(self) -> Iterator[BusinessProfile]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def by_number(self, dialled: str) -> BusinessProfile | None:
        """The business the dialled number reaches; a lone business without numbers answers them all."""
        try:
            found = self._by_number.get(_e164(dialled))
        except ValueError:
            found = None
        if found is None and len(self._by_id) == 1 and not self.default.phone_numbers:
            return self.default
        return found

    def by_id(self, business_id: str) -> BusinessProfile | None:
        return self._by_id.get(business_id)

    @property
    def default(self) -> BusinessProfile:
        """The first business: used by the CLI when none is named."""
        return next(iter(self._by_id.values()))


def load_directory(path: Path) -> Directory:
    """Read and validate a businesses YAML file; any problem is one `ConfigError` sentence."""
    parsed = load_yaml_model(path, BusinessFile, label=f"BUSINESSES_FILE {path}", error=ConfigError)
    return Directory(parsed.businesses)
