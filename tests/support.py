"""A small dental practice on the embedded calendar, with a pinned clock: the stage for conversation tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from agent.database import make_engine
from booking.calendars.local import LocalCalendar, LocalCalendarConfig, LocalService, create_schema
from booking.clock import FixedClock
from booking.models import Service
from booking.session import CallerId, CallSession

ZONE = ZoneInfo("America/New_York")
# Monday 23 November 2026, 9:00 in the morning.
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=ZONE)
CALLER = "+14155550101"
STRANGER = "+14155550199"

CLEANING = Service("cleaning", "teeth cleaning", timedelta(minutes=45), ("cleaning", "checkup", "hygiene"))
EMERGENCY = Service(
    "emergency", "emergency visit", timedelta(minutes=30), ("emergency", "toothache", "tooth hurts", "pain")
)
WHITENING = Service(
    "whitening", "whitening", timedelta(minutes=60), ("whitening",), requires_confirmation=True
)

HOURS = {day: ((time(8), time(12)), (time(13), time(17))) for day in range(5)}

CONFIG = LocalCalendarConfig(
    time_zone="America/New_York",
    services=(
        LocalService(
            CLEANING,
            buffer_after=timedelta(minutes=15),
            min_notice=timedelta(hours=2),
            slot_interval=timedelta(minutes=30),
        ),
        LocalService(EMERGENCY, min_notice=timedelta(minutes=30), slot_interval=timedelta(minutes=30)),
        LocalService(WHITENING, min_notice=timedelta(days=1), slot_interval=timedelta(minutes=60)),
    ),
    weekly_hours=HOURS,
    closed_dates=frozenset({date(2026, 12, 25)}),
)


@dataclass
class TextedCodes:
    """A stand-in for the SMS gateway: remembers every code sent, by phone."""

    sent: list[tuple[str, str]] = field(default_factory=list)

    async def send_code(self, phone: str, code: str) -> None:
        self.sent.append((phone, code))


@dataclass
class Practice:
    calendar: LocalCalendar
    clock: FixedClock
    codes: TextedCodes

    def session(self, caller: str | None = CALLER, attestation: str | None = None) -> CallSession:
        return CallSession(
            calendar=self.calendar,
            clock=self.clock,
            time_zone=ZONE,
            services=[CLEANING, EMERGENCY, WHITENING],
            caller=CallerId(caller, attestation),
            codes=self.codes,
        )


@asynccontextmanager
async def practice(tmp_path: Path) -> AsyncIterator[Practice]:
    """The practice on a fresh SQLite file."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'practice.db'}")
    await create_schema(engine)
    clock = FixedClock(NOW)
    try:
        yield Practice(LocalCalendar(engine, CONFIG, clock), clock, TextedCodes())
    finally:
        await engine.dispose()
