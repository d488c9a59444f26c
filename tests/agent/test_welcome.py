"""A returning caller is greeted by name and told of their next visit, but only on a trusted caller ID."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent import mirror as mirror_module
from agent.businesses import DEMO_BUSINESSES_FILE, load_directory
from agent.database import make_engine
from agent.mirror import BookingMirror, MirroredBooking
from agent.prompting import load_prompts
from agent.server import welcome
from booking.clock import FixedClock
from booking.session import CallerId

ZONE = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=ZONE)
JANE = "+14155550101"


@pytest.fixture
async def mirror(tmp_path: Path) -> AsyncIterator[BookingMirror]:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    await mirror_module.create_schema(engine)
    mirror = BookingMirror(engine)
    start = NOW + timedelta(days=1, hours=1)
    await mirror.apply(
        MirroredBooking(
            uid="bk1",
            business_id="bright-smile",
            status="accepted",
            start=start,
            end=start + timedelta(minutes=45),
            service="teeth cleaning",
            attendee_name="Jane Doe",
            attendee_phone=JANE,
            attendee_email="jane@example.com",
        ),
        NOW,
    )
    try:
        yield mirror
    finally:
        await engine.dispose()


async def test_known_caller_hears_their_name_and_next_visit(mirror: BookingMirror) -> None:
    """Jane, calling from her number, is greeted by name and reminded of tomorrow's cleaning."""
    business = load_directory(DEMO_BUSINESSES_FILE).default
    greeting, notes = await welcome(business, CallerId(JANE), mirror, load_prompts().phrases, FixedClock(NOW))
    assert greeting == (
        "Thanks for calling Bright Smile Dental. Hi Jane! I see you're booked for teeth cleaning, "
        "tomorrow at 10 in the morning. How can I help you today?"
    )
    assert "Jane Doe" in notes[0] and "Do not book another appointment" in notes[0]


@pytest.mark.parametrize(
    "caller", [CallerId(JANE, "TN-Validation-Failed-C"), CallerId("+14155550199"), CallerId(None)]
)
async def test_untrusted_or_unknown_callers_get_the_plain_greeting(
    mirror: BookingMirror, caller: CallerId
) -> None:
    """A spoofable, unknown or withheld number learns nothing about anyone's bookings."""
    business = load_directory(DEMO_BUSINESSES_FILE).default
    greeting, notes = await welcome(business, caller, mirror, load_prompts().phrases, FixedClock(NOW))
    assert greeting == "Thanks for calling Bright Smile Dental. How can I help you today?"
    assert notes == ()
