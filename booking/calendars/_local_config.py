"""What the embedded calendar is told about a business, in booking terms.

The business profile (YAML, pydantic) is parsed at the edge and mapped to these frozen dataclasses,
so the scheduler never depends on the file format. Everything is checked once, here: a calendar that
starts is a calendar whose rules make sense.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from booking.models import Service

OpeningHours = tuple[tuple[time, time], ...]
"""The opening spans of one weekday, `(opens, closes)`, in business wall-clock time, in order.

A `closes` of `time(0)` means midnight at the end of that day.
"""

MIDNIGHT = time(0)


@dataclass(frozen=True, slots=True)
class LocalService:
    """A service plus the scheduling rules the embedded calendar applies to it.

    Buffers belong to each booking and are never shared: a booking with 15 minutes after it and
    one with 10 minutes before it need 25 minutes between them. `slot_interval` is the step between
    offered start times; `None` means the service's duration.
    """

    service: Service
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    min_notice: timedelta = timedelta(0)
    horizon: timedelta = timedelta(days=60)
    slot_interval: timedelta | None = None

    def __post_init__(self) -> None:
        key = self.service.key
        if self.service.duration <= timedelta(0):
            raise ValueError(f"service {key!r}: duration must be positive, got {self.service.duration}")
        for name in ("buffer_before", "buffer_after", "min_notice"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"service {key!r}: {name} must not be negative, got {getattr(self, name)}")
        if self.horizon <= timedelta(0):
            raise ValueError(f"service {key!r}: horizon must be positive, got {self.horizon}")
        if self.slot_interval is not None and self.slot_interval <= timedelta(0):
            raise ValueError(f"service {key!r}: slot_interval must be positive, got {self.slot_interval}")

    @property
    def key(self) -> str:
        return self.service.key

    @property
    def interval(self) -> timedelta:
        return self.slot_interval if self.slot_interval is not None else self.service.duration


@dataclass(frozen=True, slots=True)
class LocalCalendarConfig:
    """One business's embedded calendar.

    `weekly_hours` maps a weekday (0 = Monday) to its opening spans; a missing weekday is closed.
    `staff` are the people bookings are spread over (round-robin); with none, the business is one
    resource. `calendar_id` keeps businesses apart when several share one database.
    """

    time_zone: str
    services: tuple[LocalService, ...]
    weekly_hours: Mapping[int, OpeningHours]
    closed_dates: frozenset[date] = frozenset()
    staff: tuple[str, ...] = ()
    calendar_id: str = "default"
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            zone = ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{self.time_zone!r} is not an IANA time zone") from exc
        object.__setattr__(self, "zone", zone)
        if not self.services:
            raise ValueError("a calendar needs at least one service")
        _require_unique("service keys", [s.key for s in self.services])
        _require_unique("staff names", list(self.staff))
        if any(not name for name in self.staff):
            raise ValueError("staff names must not be empty")
        if not self.calendar_id:
            raise ValueError("calendar_id must not be empty")
        hours = {day: tuple(spans) for day, spans in self.weekly_hours.items()}
        for day, spans in hours.items():
            _check_day(day, spans)
        object.__setattr__(self, "weekly_hours", MappingProxyType(hours))

    def service(self, key: str) -> LocalService | None:
        return next((s for s in self.services if s.key == key), None)


def _require_unique(what: str, values: list[str]) -> None:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"{what} must be unique, repeated: {', '.join(repeated)}")


def _check_day(day: int, spans: OpeningHours) -> None:
    if day not in range(7):
        raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {day!r}")
    previous_close: time | None = None
    for opens, closes in spans:
        if opens.tzinfo is not None or closes.tzinfo is not None:
            raise ValueError(f"weekday {day}: opening hours are wall-clock times, without a zone")
        if closes != MIDNIGHT and closes <= opens:
            raise ValueError(f"weekday {day}: {opens} - {closes} closes before it opens")
        if previous_close is not None and (previous_close == MIDNIGHT or opens < previous_close):
            raise ValueError(f"weekday {day}: opening spans must be in order and must not overlap")
        previous_close = closes
