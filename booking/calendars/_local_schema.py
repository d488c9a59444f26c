"""The embedded calendar's tables, and the cell scheme that lets the database forbid double booking.

Two bookings overlap when they share an instant; then they also share the fixed five-minute cell
that instant falls in. So every live booking and hold writes one `cal_occupancy` row per cell of
`[start - buffer_before, end + buffer_after)` (rounded outwards), and the primary key
`(calendar_id, staff, cell)` lets only one of them exist. The rows go in with the booking, in one
transaction: whichever transaction commits first wins, in one process or many, on SQLite (one
writer at a time) and on PostgreSQL (a second insert of a key waits for the first to commit, then
fails). PostgreSQL's EXCLUDE constraint would say the same more directly, but it has no SQLite
equivalent, and both databases must behave the same.

Instants are stored as UTC; a hold's cells carry `expires_at`, a booking's carry none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from booking.sql import UTCDateTime, create_tables

CELL = timedelta(minutes=5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


metadata = MetaData()

bookings = Table(
    "cal_bookings",
    metadata,
    # The integer id orders bookings by creation across processes; round-robin reads it.
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("uid", String(64), nullable=False, unique=True),
    Column("calendar_id", String(64), nullable=False),
    Column("service_key", String(64), nullable=False),
    Column("staff", String(128), nullable=False),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attendee_name", Text, nullable=False),
    Column("attendee_email", Text, nullable=False),
    Column("attendee_email_key", Text, nullable=False),
    Column("attendee_phone", String(32)),
    Column("attendee_time_zone", String(64), nullable=False),
    Column("notes", Text),
    Column("attempt_id", String(128)),
    Column("rescheduled_from", String(64)),
    Column("rescheduled_to", String(64)),
    Column("reason", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # A retried create finds its booking instead of making a second one.
    UniqueConstraint("calendar_id", "attempt_id", name="uq_cal_bookings_attempt"),
    Index("ix_cal_bookings_email", "calendar_id", "attendee_email_key"),
    Index("ix_cal_bookings_phone", "calendar_id", "attendee_phone"),
    Index("ix_cal_bookings_staff", "calendar_id", "staff", "id"),
)

occupancy = Table(
    "cal_occupancy",
    metadata,
    Column("calendar_id", String(64), primary_key=True),
    Column("staff", String(128), primary_key=True),
    Column("cell", BigInteger, primary_key=True, autoincrement=False),
    Column("owner", String(64), nullable=False),
    Column("expires_at", UTCDateTime),
    Index("ix_cal_occupancy_owner", "owner"),
)


def cells(start: datetime, end: datetime) -> list[int]:
    """The numbers of the cells `[start, end)` touches, in ascending order.

    Ascending matters on PostgreSQL: two transactions inserting overlapping cells in the same
    order queue behind each other instead of deadlocking.
    """
    first = (start - EPOCH) // CELL
    last = -((EPOCH - end) // CELL)
    return list(range(first, last))


async def create_schema(engine: AsyncEngine) -> None:
    """Create the `cal_` tables if missing; safe when several processes start at the same moment."""
    await create_tables(engine, metadata)
