"""The periodic sync with `GET /v2/bookings`: a lost Cal.com webhook loses nothing.

Cal.com sends each webhook once and never again (contract.md 2.13), so the mirror is also kept by
polling. Each pass lists the account's live upcoming bookings (upcoming and unconfirmed), the
bookings cancelled since the last pass, and the ones that ended since; every booking goes through
the same `Notifier` as a webhook does, as of its `updatedAt`. What a webhook already reported is
unchanged in the mirror and sends nothing; what a webhook missed is applied and texted, once.

The first pass on a fresh database only seeds the mirror (and schedules reminders): texting every
existing customer "you're booked" on installation would be wrong. The instant of the last
successful pass is kept in `reconcile_state`, and each pass looks back a little further than it
(`overlap`) so an update landing during a pass is not missed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx
from loguru import logger
from pydantic import AwareDatetime, Field, ValidationError, field_validator
from sqlalchemy import Column, MetaData, String, Table, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.businesses import BusinessProfile, Directory
from agent.mirror import MirroredBooking
from agent.reminders import Notifier
from agent.sms import normalise_phone
from agent.webhooks import CalcomAttendee, CalcomEvents, CalcomEventTypeRef, CalcomModel
from booking.calendars.calcom import VERSIONS
from booking.clock import Clock
from booking.models import BookingStatus
from booking.sql import UTCDateTime, create_tables

__all__ = ["ReconcileFailed", "ReconcileReport", "Reconciler", "create_schema", "metadata"]

STATE_KEY: Final = "calcom"
PAGE_SIZE: Final = 100
MAX_PAGES: Final = 20
_STATUS: Final[dict[str, BookingStatus]] = {
    "accepted": "accepted",
    "pending": "pending",
    "awaiting_host": "pending",
    "cancelled": "cancelled",
    "rejected": "rejected",
}

metadata = MetaData()

reconcile_state = Table(
    "reconcile_state",
    metadata,
    Column("source", String(32), primary_key=True),
    Column("synced_at", UTCDateTime(), nullable=False),
)


async def create_schema(engine: AsyncEngine) -> None:
    await create_tables(engine, metadata)


class ReconcileFailed(Exception):
    """A pass could not list the bookings; the next pass starts from the same point."""

    def __init__(self, message: str, *, status: int | None = None, path: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class ListedBooking(CalcomModel):
    """The fields of `BookingOutput_2024_08_13` a pass needs (contract.md 2.3)."""

    uid: str
    status: str
    start: AwareDatetime
    end: AwareDatetime
    title: str | None = None
    eventTypeId: int | None = None
    eventType: CalcomEventTypeRef | None = None
    attendees: list[CalcomAttendee] = Field(default_factory=list)
    bookingFieldsResponses: dict[str, Any] = Field(default_factory=dict)
    rescheduledFromUid: str | None = None
    rescheduledToUid: str | None = None
    createdAt: AwareDatetime | None = None
    updatedAt: AwareDatetime | None = None

    @field_validator("bookingFieldsResponses", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        return {} if value is None else value

    @property
    def event_type_id(self) -> int | None:
        if self.eventType is not None and self.eventType.id is not None:
            return self.eventType.id
        return self.eventTypeId


class _Pagination(CalcomModel):
    hasNextPage: bool = False


class _Listing(CalcomModel):
    data: list[ListedBooking]
    pagination: _Pagination = _Pagination()


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What one pass saw and changed."""

    seen: int
    changed: int
    ended: int
    seeded: bool


class Reconciler:
    """One Cal.com account's bookings, listed and applied to every business that offers them."""

    def __init__(
        self,
        *,
        client: httpx.AsyncClient,
        api_key: str,
        engine: AsyncEngine,
        directory: Directory,
        notifier: Notifier,
        clock: Clock,
        events: CalcomEvents | None = None,
        overlap: timedelta = timedelta(minutes=15),
    ) -> None:
        self._client = client
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "cal-api-version": VERSIONS["bookings"] or "2024-08-13",
        }
        self._engine = engine
        self._directory = directory
        self._notifier = notifier
        self._clock = clock
        self._events = events
        self._overlap = overlap

    async def run_once(self) -> ReconcileReport:
        """One pass; raises `ReconcileFailed` when Cal.com cannot be listed (nothing is recorded then)."""
        started = self._clock.now()
        last = await self._last_synced()
        first = last is None
        since = (last or started) - self._overlap
        live = await self._list({"status": "upcoming,unconfirmed", "sortStart": "asc"})
        cancelled = [] if first else await self._list({"status": "cancelled", "afterUpdatedAt": _z(since)})
        past = (
            [] if first else await self._list({"status": "past", "afterStart": _z(since - timedelta(days=1))})
        )
        changed = ended = 0
        for listed in [*cancelled, *live]:
            found = self._snapshot(listed)
            if found is None:
                continue
            business, booking = found
            as_of = listed.updatedAt or listed.createdAt or started
            if as_of < since and not booking.live:
                continue
            # Only news since the last pass is texted; Cal.com has ignored list filters before.
            news = not first and as_of >= since
            changed += await self._notifier.booking_changed(business, booking, as_of, notify=news)
        for listed in past:
            found = self._snapshot(listed)
            if found is None or not found[1].live or listed.end <= since or listed.end > started:
                continue
            ended += await self._notifier.meeting_ended(found[0], found[1], listed.end)
        await self._save(started, first)
        report = ReconcileReport(
            seen=len(live) + len(cancelled) + len(past), changed=changed, ended=ended, seeded=first
        )
        logger.bind(seen=report.seen, changed=report.changed, ended=report.ended, seeded=first).info(
            "Cal.com bookings reconciled"
        )
        return report

    async def run(self, interval: timedelta = timedelta(minutes=5)) -> None:
        """Reconcile forever; also retries webhook events whose processing never finished."""
        while True:
            try:
                if self._events is not None:
                    await self._events.process_stored()
                await self.run_once()
            except ReconcileFailed as failure:
                logger.warning("Cal.com reconcile failed: {}", failure)
            except Exception:
                logger.exception("Cal.com reconcile crashed; retrying at the next interval")
            await asyncio.sleep(interval.total_seconds())

    def _snapshot(self, listed: ListedBooking) -> tuple[BusinessProfile, MirroredBooking] | None:
        business = self._business_for(listed.event_type_id)
        status = _STATUS.get(listed.status)
        if business is None or status is None:
            return None
        attendee = listed.attendees[0] if listed.attendees else CalcomAttendee()
        answers = listed.bookingFieldsResponses
        phone = attendee.phoneNumber or _text(answers.get("attendeePhoneNumber"))
        service = next(
            (s.name for s in business.services if s.event_type_id == listed.event_type_id),
            listed.title or "appointment",
        )
        return business, MirroredBooking(
            uid=listed.uid,
            business_id=business.id,
            status=status,
            start=listed.start,
            end=listed.end,
            service=service,
            attendee_name=attendee.name or _text(answers.get("name")) or "",
            attendee_phone=normalise_phone(phone),
            attendee_email=attendee.email or _text(answers.get("email")),
            rescheduled_from=listed.rescheduledFromUid,
            rescheduled_to=listed.rescheduledToUid,
        )

    def _business_for(self, event_type_id: int | None) -> BusinessProfile | None:
        for business in self._directory:
            if any(
                s.event_type_id == event_type_id for s in business.services if s.event_type_id is not None
            ):
                return business
        return self._directory.default if len(self._directory) == 1 else None

    async def _list(self, params: dict[str, str]) -> list[ListedBooking]:
        found: list[ListedBooking] = []
        for page in range(MAX_PAGES):
            query = {**params, "take": str(PAGE_SIZE), "skip": str(page * PAGE_SIZE)}
            try:
                response = await self._client.get("/bookings", params=query, headers=self._headers)
            except httpx.TransportError as error:
                raise ReconcileFailed(f"Cal.com could not be reached: {error!r}", path="/bookings") from error
            if not response.is_success:
                raise ReconcileFailed(
                    f"Cal.com answered {response.status_code} listing bookings ({params.get('status')})",
                    status=response.status_code,
                    path="/bookings",
                )
            try:
                listing = _Listing.model_validate_json(response.content)
            except ValidationError as error:
                raise ReconcileFailed(
                    f"Cal.com listed bookings in an unexpected shape: {error.errors(include_url=False)[:2]}",
                    status=response.status_code,
                    path="/bookings",
                ) from error
            found += listing.data
            if not listing.pagination.hasNextPage:
                break
        return found

    async def _last_synced(self) -> datetime | None:
        async with self._engine.connect() as connection:
            row = (
                await connection.execute(
                    select(reconcile_state.c.synced_at).where(reconcile_state.c.source == STATE_KEY)
                )
            ).first()
        return row.synced_at if row is not None else None

    async def _save(self, synced_at: datetime, first: bool) -> None:
        if first:
            try:
                async with self._engine.begin() as connection:
                    await connection.execute(
                        insert(reconcile_state).values(source=STATE_KEY, synced_at=synced_at)
                    )
                return
            except IntegrityError:
                pass  # another process finished its first pass at the same time
        async with self._engine.begin() as connection:
            await connection.execute(
                update(reconcile_state)
                .where(reconcile_state.c.source == STATE_KEY, reconcile_state.c.synced_at < synced_at)
                .values(synced_at=synced_at)
            )


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
