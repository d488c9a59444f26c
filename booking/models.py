"""Value types shared by every part of `booking/`.

All of them are frozen dataclasses: a slot or booking handed to the conversation layer cannot be
changed behind its back. Every datetime is timezone-aware; windows and slots are expressed in the
business's time zone, bookings keep whatever zone the calendar returned (compare them as instants).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

BookingStatus = Literal["accepted", "pending", "cancelled", "rejected"]


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


@dataclass(frozen=True, slots=True)
class Window:
    """A span of time the caller asked about: `[start, end)`, or the instant `start` when `start == end`."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        _require_aware("Window.start", self.start)
        _require_aware("Window.end", self.end)
        if self.end < self.start:
            raise ValueError(
                f"Window ends before it starts: {self.start.isoformat()} > {self.end.isoformat()}"
            )

    @property
    def is_instant(self) -> bool:
        return self.start == self.end

    def contains(self, moment: datetime) -> bool:
        if self.is_instant:
            return moment == self.start
        return self.start <= moment < self.end


@dataclass(frozen=True, slots=True)
class Service:
    """Something the business can be booked for (a Cal.com event type, or a local definition).

    `key` is the stable name used in profiles, tools and fixtures ("cleaning"); `synonyms` are the
    words callers use for it ("checkup", "my tooth hurts").
    """

    key: str
    name: str
    duration: timedelta
    synonyms: tuple[str, ...] = ()
    requires_confirmation: bool = False
    event_type_id: int | None = None


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable start time for one service, as the calendar offered it."""

    service_key: str
    start: datetime
    end: datetime
    staff: str | None = None

    def __post_init__(self) -> None:
        _require_aware("Slot.start", self.start)
        _require_aware("Slot.end", self.end)


@dataclass(frozen=True, slots=True)
class Hold:
    """A short reservation of a slot while the caller decides; it lapses at `expires_at`."""

    uid: str
    slot: Slot
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class Attendee:
    """Who the booking is for. `phone` is E.164 when known; `time_zone` is an IANA name."""

    name: str
    email: str
    time_zone: str
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class BookingRequest:
    """Everything needed to create one booking.

    `attempt_id` is ours: it travels in the booking's metadata so that after a lost response the
    booking can be found again instead of being created twice.
    """

    slot: Slot
    attendee: Attendee
    attempt_id: str
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class Booking:
    """A booking as the calendar holds it; the only source for "you're booked"."""

    uid: str
    service_key: str
    start: datetime
    end: datetime
    status: BookingStatus
    attendee: Attendee
    notes: str | None = None
    attempt_id: str | None = None
    rescheduled_from: str | None = None
    metadata: dict[str, str] = field(default_factory=dict, compare=False, hash=False)


def minutes(n: int) -> timedelta:
    """Shorthand used by profiles and tests: `minutes(30)`."""
    return timedelta(minutes=n)
