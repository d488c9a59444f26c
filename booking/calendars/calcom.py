"""The `Calendar` backed by Cal.com API v2, for a caller who is waiting on the line.

What shapes this module (facts and sources in ../shared/calcom/contract.md):

- Every endpoint family has its own `cal-api-version`; an unknown or missing value is silently routed
  to the 2024-04-15 controllers, so each request names its family's version explicitly.
- Booking starts go out as UTC with `Z`: Cal.com reads a string without offset as UTC.
- A slot is held with a reservation and booked with `reservedSlotUid`; the hold also hides the slot
  from every slot listing, ours included.
- There is no idempotency key. `create` puts our attempt id in the booking metadata and, before any
  retry, looks for a booking carrying it; `reschedule` first checks whether the old booking already
  points to a new one. Nothing is created twice.
- Retries (stamina) cover transient failures only, wrap whole operations, and stop within a short
  time budget. A 429 is waited out once if Cal.com's reset is short; otherwise it fails fast as
  `RateLimited`.
- Event types and slot lists are cached briefly (by the injected `Clock`); our writes drop the
  slot cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final, Literal, TypeVar
from zoneinfo import ZoneInfo

import httpx
import stamina
from pydantic import BaseModel, ValidationError

from booking.calendars import _calcom_errors
from booking.calendars._calcom_wire import (
    CancelBody,
    CreateBookingAttendee,
    CreateBookingBody,
    Envelope,
    ListEnvelope,
    Me,
    RescheduleBody,
    ReserveSlotBody,
    SlotItem,
    WireBooking,
    WireEventType,
    WireReservation,
    utc_z,
)
from booking.clock import Clock
from booking.errors import CalendarUnavailable, InvalidRequest, NotFound, RateLimited
from booking.models import Attendee, Booking, BookingRequest, BookingStatus, Hold, Service, Slot, Window

__all__ = [
    "ATTEMPT_METADATA_KEY",
    "DEFAULT_API_URL",
    "DEFAULT_CANCEL_REASON",
    "DEFAULT_TIMEOUT",
    "VERSIONS",
    "CalcomCalendar",
]

DEFAULT_API_URL: Final = "https://api.cal.com/v2"
DEFAULT_TIMEOUT: Final = httpx.Timeout(4.0, connect=2.0)
"""Short on purpose: a caller is listening to silence while we wait."""

Family = Literal["slots", "bookings", "event_types", "me"]
VERSIONS: Final[Mapping[Family, str | None]] = {
    "slots": "2024-09-04",
    "bookings": "2024-08-13",
    "event_types": "2024-06-14",
    "me": None,
}
"""`cal-api-version` per endpoint family (schedules would be 2024-06-11; this backend never reads them)."""

ATTEMPT_METADATA_KEY: Final = "receptionistAttemptId"
DEFAULT_CANCEL_REASON: Final = "Cancelled by the caller over the phone"
"""Cal.com refuses a host-key cancellation without a reason, so one is always sent."""

_LIVE: Final = "upcoming,past"
_PAGE_SIZE: Final = 100
_MAX_PAGES: Final = 5
_STATUS: Final[Mapping[str, BookingStatus]] = {
    "accepted": "accepted",
    "pending": "pending",
    "awaiting_host": "pending",
    "cancelled": "cancelled",
    "rejected": "rejected",
}

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Request:
    """One Cal.com request, and what to say about it if it fails."""

    method: str
    path: str
    family: Family
    auth: bool = True
    params: Mapping[str, str] | None = None
    body: BaseModel | None = None
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Cached:
    at: datetime
    slots: tuple[Slot, ...]


class CalcomCalendar:
    """`booking.calendar.Calendar` over Cal.com API v2.

    `client` must carry the API base URL (`CALCOM_API_URL`, e.g. `https://api.cal.com/v2`); paths
    here are relative to it. `time_zone` and `services` are read from `GET /v2/me` and
    `GET /v2/event-types` (hidden event types left out) when not given; given services must carry
    their Cal.com `event_type_id`. `sleep` is only used to wait out a short 429.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_key: str,
        clock: Clock,
        time_zone: str | None = None,
        services: Sequence[Service] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        attempts: int = 3,
        retry_budget: timedelta = timedelta(seconds=5),
        max_rate_limit_wait: timedelta = timedelta(seconds=3),
        hold_minutes: int | None = None,
        event_type_ttl: timedelta = timedelta(minutes=10),
        slot_ttl: timedelta = timedelta(seconds=20),
        sleep: Sleep = asyncio.sleep,
        owns_client: bool = False,
    ) -> None:
        if not str(client.base_url).strip("/"):
            raise ValueError("the httpx client needs base_url set to the Cal.com API URL")
        missing = [service.key for service in services or () if service.event_type_id is None]
        if missing:
            raise ValueError(f"services without a Cal.com event_type_id: {missing}")
        self._client = client
        self._auth = f"Bearer {api_key}"
        self._clock = clock
        self._zone = ZoneInfo(time_zone) if time_zone else None
        self._fixed_services = tuple(services) if services is not None else None
        self._timeout = timeout
        self._attempts = attempts
        self._retry_budget = retry_budget
        self._max_rate_limit_wait = max_rate_limit_wait.total_seconds()
        self._hold_minutes = hold_minutes
        self._event_type_ttl = event_type_ttl
        self._slot_ttl = slot_ttl
        self._sleep = sleep
        self._owns_client = owns_client
        self._services: tuple[datetime, tuple[Service, ...]] | None = None
        self._slot_cache: dict[tuple[int, datetime, datetime], _Cached] = {}

    @classmethod
    def connect(
        cls,
        api_key: str,
        *,
        clock: Clock,
        api_url: str = DEFAULT_API_URL,
        time_zone: str | None = None,
        services: Sequence[Service] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> CalcomCalendar:
        """A calendar with its own HTTP client, closed by `aclose` (or `async with`)."""
        client = httpx.AsyncClient(base_url=api_url, timeout=DEFAULT_TIMEOUT, transport=transport)
        return cls(
            client, api_key=api_key, clock=clock, time_zone=time_zone, services=services, owns_client=True
        )

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> CalcomCalendar:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- what can be booked, and where -------------------------------------------------------

    async def services(self) -> list[Service]:
        if self._fixed_services is not None:
            return list(self._fixed_services)
        now = self._clock.now()
        if self._services is None or now - self._services[0] >= self._event_type_ttl:
            listing = await self._retrying(
                lambda: self._call(
                    _Request("GET", "/event-types", "event_types"), ListEnvelope[WireEventType]
                )
            )
            self._services = (now, tuple(_service(et) for et in listing.data if not et.hidden))
        return list(self._services[1])

    async def time_zone(self) -> ZoneInfo:
        if self._zone is None:
            self._zone = ZoneInfo((await self._me()).timeZone)
        return self._zone

    async def account_name(self) -> str:
        """The Cal.com account's display name: how a business built from the account introduces itself."""
        me = await self._me()
        return me.name or me.username or "our office"

    async def _me(self) -> Me:
        envelope = await self._retrying(lambda: self._call(_Request("GET", "/me", "me"), Envelope[Me]))
        return envelope.data

    # -- slots and holds ---------------------------------------------------------------------

    async def slots(self, service: Service, window: Window) -> list[Slot]:
        event_type_id = _event_type_id(service)
        now = self._clock.now()
        if window.end < now or (window.end == now and not window.is_instant):
            return []
        key = (event_type_id, window.start, window.end)
        cached = self._slot_cache.get(key)
        if cached is None or now - cached.at >= self._slot_ttl:
            cached = _Cached(now, await self._fetch_slots(service, event_type_id, window, now))
            self._slot_cache[key] = cached
        return [slot for slot in cached.slots if slot.start >= now]

    async def _fetch_slots(
        self, service: Service, event_type_id: int, window: Window, now: datetime
    ) -> tuple[Slot, ...]:
        zone = await self.time_zone()
        end = window.start + timedelta(minutes=1) if window.is_instant else window.end
        query = _Request(
            "GET",
            "/slots",
            "slots",
            auth=False,
            params={
                "start": utc_z(max(window.start, now)),
                "end": utc_z(end),
                "eventTypeId": str(event_type_id),
                "timeZone": zone.key,
            },
        )
        days = await self._retrying(lambda: self._call(query, Envelope[dict[str, list[SlotItem]]]))
        starts = sorted({item.start.astimezone(zone) for day in days.data.values() for item in day})
        # Cal.com may return days outside the range (UTC end-of-day rule): keep only what was asked.
        return tuple(
            Slot(service.key, start, start + service.duration)
            for start in starts
            if window.contains(start) and start >= now
        )

    async def hold(self, slot: Slot) -> Hold:
        service = await self._service(slot.service_key)
        request = _Request(
            "POST",
            "/slots/reservations",
            "slots",
            body=ReserveSlotBody(
                eventTypeId=_event_type_id(service),
                slotStart=utc_z(slot.start),
                reservationDuration=self._hold_minutes,
            ),
            context={"slot_start": slot.start.isoformat()},
        )
        self._slot_cache.clear()
        # A reservation cannot be looked up after a lost response: retry only what never arrived.
        reserved = await self._retrying(
            lambda: self._call(request, Envelope[WireReservation]), retry_unknown=False
        )
        return Hold(reserved.data.reservationUid, slot, reserved.data.reservationUntil)

    async def release(self, hold: Hold) -> None:
        self._slot_cache.clear()
        request = _Request("DELETE", f"/slots/reservations/{hold.uid}", "slots", context={"hold": hold.uid})
        try:
            await self._retrying(lambda: self._exchange(request))
        except NotFound:
            return

    # -- bookings ----------------------------------------------------------------------------

    async def create(self, request: BookingRequest, hold: Hold | None) -> Booking:
        if hold is not None and hold.slot.start != request.slot.start:
            raise InvalidRequest("the hold is for another slot", hold=hold.uid, slot=request.slot.start)
        service = await self._service(request.slot.service_key)
        attendee = request.attendee
        live_hold = hold if hold is not None and hold.expires_at > self._clock.now() else None
        post = _Request(
            "POST",
            "/bookings",
            "bookings",
            body=CreateBookingBody(
                start=utc_z(request.slot.start),
                eventTypeId=_event_type_id(service),
                attendee=CreateBookingAttendee(
                    name=attendee.name,
                    timeZone=attendee.time_zone,
                    email=attendee.email or None,
                    phoneNumber=attendee.phone,
                ),
                metadata={ATTEMPT_METADATA_KEY: request.attempt_id},
                bookingFieldsResponses={"notes": request.notes} if request.notes else None,
                reservedSlotUid=live_hold.uid if live_hold is not None else None,
            ),
            context={"attempt_id": request.attempt_id, "slot_start": request.slot.start.isoformat()},
        )
        sent = False

        async def attempt() -> Booking:
            nonlocal sent
            if sent and (earlier := await self._find_attempt(request)) is not None:
                return earlier
            sent = True
            return await self._booking((await self._call(post, Envelope[WireBooking])).data)

        try:
            return await self._retrying(attempt)
        finally:
            self._slot_cache.clear()

    async def _find_attempt(self, request: BookingRequest) -> Booking | None:
        """The booking a lost create may have made, found by our attempt id in its metadata."""
        start = request.slot.start
        bookings = await self._list(email=request.attendee.email or None, window=Window(start, start))
        return next((b for b in bookings if b.attempt_id == request.attempt_id), None)

    async def get(self, uid: str) -> Booking:
        return await self._booking(await self._retrying(lambda: self._fetch(uid)))

    async def find(
        self, *, email: str | None = None, phone: str | None = None, window: Window
    ) -> list[Booking]:
        if not email and not phone:
            raise InvalidRequest("find needs an email or a phone number")
        bookings = await self._retrying(lambda: self._list(email=email, window=window))
        return [
            booking
            for booking in bookings
            if booking.status not in ("cancelled", "rejected")
            and (not email or booking.attendee.email.lower() == email.lower())
            and (not phone or booking.attendee.phone == phone)
        ]

    async def _list(self, *, email: str | None, window: Window) -> list[Booking]:
        """Live bookings starting in `window`. Cal.com's time filters have been ignored before
        (calcom/cal.diy#18010), so they only narrow the listing; the window is re-applied here."""
        params = {
            "status": _LIVE,
            "afterStart": utc_z(window.start),
            "beforeEnd": utc_z(window.end + timedelta(days=1)),
            "sortStart": "asc",
            "take": str(_PAGE_SIZE),
        }
        if email:
            params["attendeeEmail"] = email
        found: list[Booking] = []
        for page in range(_MAX_PAGES):
            listing = await self._call(
                _Request("GET", "/bookings", "bookings", params={**params, "skip": str(page * _PAGE_SIZE)}),
                ListEnvelope[WireBooking],
            )
            found += [b for b in [await self._booking(w) for w in listing.data] if window.contains(b.start)]
            if not listing.pagination.hasNextPage:
                break
        return found

    async def _fetch(self, uid: str) -> WireBooking:
        request = _Request("GET", f"/bookings/{uid}", "bookings", context={"uid": uid})
        return (await self._call(request, Envelope[WireBooking])).data

    async def reschedule(self, uid: str, new_start: datetime, reason: str | None = None) -> Booking:
        post = _Request(
            "POST",
            f"/bookings/{uid}/reschedule",
            "bookings",
            body=RescheduleBody(start=utc_z(new_start), reschedulingReason=reason),
            context={"uid": uid, "new_start": new_start.isoformat()},
        )
        sent = False

        async def attempt() -> WireBooking:
            nonlocal sent
            if sent and (moved_to := (await self._fetch(uid)).rescheduledToUid) is not None:
                return await self._fetch(moved_to)
            sent = True
            return (await self._call(post, Envelope[WireBooking])).data

        try:
            return await self._booking(await self._retrying(attempt))
        finally:
            self._slot_cache.clear()

    async def cancel(self, uid: str, reason: str | None = None) -> Booking:
        post = _Request(
            "POST",
            f"/bookings/{uid}/cancel",
            "bookings",
            body=CancelBody(cancellationReason=reason or DEFAULT_CANCEL_REASON),
            context={"uid": uid},
        )
        try:
            cancelled = (await self._retrying(lambda: self._call(post, Envelope[WireBooking]))).data
        except InvalidRequest as error:
            if "already been cancelled" not in str(error.context.get("calcom_message")):
                raise
            cancelled = await self._retrying(lambda: self._fetch(uid))
            if cancelled.rescheduledToUid is not None:
                raise NotFound(
                    "that booking was moved; the new one is still booked",
                    uid=uid,
                    rescheduled_to=cancelled.rescheduledToUid,
                ) from error
        finally:
            self._slot_cache.clear()
        return await self._booking(cancelled)

    # -- mapping -----------------------------------------------------------------------------

    async def _service(self, key: str) -> Service:
        for service in await self.services():
            if service.key == key:
                return service
        raise InvalidRequest("unknown service", service_key=key)

    async def _booking(self, wire: WireBooking) -> Booking:
        """Our view of a Cal.com booking. Contact data is read from `attendees` and, failing that, from
        `bookingFieldsResponses`, where Cal.com has been seen to put it (calcom/cal.diy#17703)."""
        zone = await self.time_zone()
        keys = {service.event_type_id: service.key for service in await self.services()}
        answers = wire.bookingFieldsResponses
        first = wire.attendees[0] if wire.attendees else None
        attendee = Attendee(
            name=first.name if first else _text(answers.get("name")) or "",
            email=(first.email if first else "") or _text(answers.get("email")) or "",
            time_zone=first.timeZone if first else zone.key,
            phone=(first.phoneNumber if first else None) or _text(answers.get("attendeePhoneNumber")),
        )
        metadata = {key: str(value) for key, value in wire.metadata.items()}
        slug = wire.eventType.slug if wire.eventType is not None else None
        return Booking(
            uid=wire.uid,
            service_key=keys.get(wire.event_type_id) or slug or str(wire.event_type_id),
            start=wire.start.astimezone(zone),
            end=wire.end.astimezone(zone),
            status=_STATUS[wire.status],
            attendee=attendee,
            notes=_text(answers.get("notes")),
            attempt_id=metadata.get(ATTEMPT_METADATA_KEY),
            rescheduled_from=wire.rescheduledFromUid,
            metadata=metadata,
        )

    # -- HTTP --------------------------------------------------------------------------------

    async def _retrying(self, attempt: Callable[[], Awaitable[T]], *, retry_unknown: bool = True) -> T:
        """Run `attempt`, retrying transient failures (stamina backoff) within the time budget.

        `retry_unknown=False` retries only failures where the request surely never reached Cal.com.
        """

        def transient(error: Exception) -> bool:
            if not isinstance(error, CalendarUnavailable):
                return False
            outcome = error.context.get("outcome")
            return outcome == "not_sent" or (retry_unknown and outcome == "unknown")

        caller = stamina.AsyncRetryingCaller(
            attempts=self._attempts, timeout=self._retry_budget, wait_initial=0.2, wait_max=1.0
        )
        return await caller(transient, attempt)

    async def _call(self, request: _Request, model: type[M]) -> M:
        response = await self._exchange(request)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as error:
            raise CalendarUnavailable(
                "Cal.com answered in an unexpected shape",
                outcome="bad_response",
                method=request.method,
                path=request.path,
                status=response.status_code,
                problems=error.errors(include_url=False)[:3],
                **request.context,
            ) from error

    async def _exchange(self, request: _Request) -> httpx.Response:
        """One request; a short 429 is waited out once, any other failure becomes a typed error."""
        try:
            return await self._send(request)
        except RateLimited as error:
            if error.retry_after is None or error.retry_after > self._max_rate_limit_wait:
                raise
            await self._sleep(error.retry_after)
            return await self._send(request)

    async def _send(self, request: _Request) -> httpx.Response:
        headers = {"Accept": "application/json"}
        if (version := VERSIONS[request.family]) is not None:
            headers["cal-api-version"] = version
        if request.auth:
            headers["Authorization"] = self._auth
        where = {"method": request.method, "path": request.path, **request.context}
        try:
            response = await self._client.request(
                request.method,
                request.path,
                params=request.params,
                json=request.body.model_dump(exclude_none=True) if request.body is not None else None,
                headers=headers,
                timeout=self._timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            raise CalendarUnavailable(
                "could not reach Cal.com", outcome="not_sent", reason=repr(error), **where
            ) from error
        except httpx.TransportError as error:
            raise CalendarUnavailable(
                "Cal.com did not answer", outcome="unknown", reason=repr(error), **where
            ) from error
        if response.is_success:
            return response
        raise _calcom_errors.from_response(response, **request.context)


def _event_type_id(service: Service) -> int:
    if service.event_type_id is None:
        raise InvalidRequest("service has no Cal.com event type", service_key=service.key)
    return service.event_type_id


def _service(event_type: WireEventType) -> Service:
    return Service(
        key=event_type.slug,
        name=event_type.title,
        duration=timedelta(minutes=event_type.lengthInMinutes),
        requires_confirmation=event_type.requires_confirmation,
        event_type_id=event_type.id,
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
