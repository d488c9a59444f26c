"""A stateful fake of the Cal.com API v2, faithful to ../shared/calcom/contract.md (section 4 checklist).

`FakeCalcom` is an `httpx.MockTransport` handler: `httpx.AsyncClient(transport=httpx.MockTransport(fake))`.
It keeps real state (event types, one host schedule, bookings, reservations that expire) and
answers the way Cal.com does, envelopes and exact error texts included, so the client is tested
against behaviour rather than against patched methods:

- `cal-api-version` is matched exactly per family; anything else gets the legacy (2024-04-15)
  behaviour: `404 Cannot GET /v2/slots?...` for slot routes, `400 Bad Request Exception` for a
  2024-08-13 create body, 500 for other booking routes, `404 Cannot ...` for routes the fake does
  not model under 2024-04-15 (event types, schedules).
- Slots come from the weekly hours minus bookings (accepted; pending too when the event type blocks
  unconfirmed ones), buffers, minimum notice and every unexpired reservation, date-keyed in the
  requested `timeZone`, `.000` milliseconds, `start`/`end` read as UTC with the 00:00 -> 23:59:59 rule.
- Reservations last 5 minutes by the injected clock; `reservedSlotUid` on create consumes them.
- Create, get, list (filters, status semantics, pagination), cancel and reschedule follow section 2.
- 120 requests per 60 s per API key, `X-RateLimit-*-Default` headers on every answer, then a 60 s block.
- Fault knobs for the next matching requests: 5xx, timeouts, refused connections, responses lost
  after the write was committed, 429 with a chosen reset, or any canned response (fixtures).
- Webhooks (section 2.13): `POST/GET/PATCH/DELETE /v2/webhooks`; every booking change made through
  the API (or `end_meeting`) is queued in `deliveries` for each active subscription to its trigger,
  as Cal.com would send it: the exact `JSON.stringify` body, `X-Cal-Signature-256` (hex HMAC, or
  `no-secret-provided`), `X-Cal-Webhook-Version`. Tests deliver, drop, repeat or reorder them.

Every request is recorded in `requests`. `now` always comes from the `Clock`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import re
import string
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from booking.clock import Clock

__all__ = [
    "DEFAULT_API_KEY",
    "FIXTURES",
    "FakeBooking",
    "FakeCalcom",
    "FakeEventType",
    "FakeReservation",
    "WebhookDelivery",
    "load_fixture",
]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "calcom"
DEFAULT_API_KEY = "cal_test_receptionist_0123456789abcdef"

SLOTS_VERSIONS = frozenset({"2024-09-04"})
BOOKINGS_VERSIONS = frozenset({"2024-08-13", "2026-02-25"})
EVENT_TYPES_VERSIONS = frozenset({"2024-06-14"})
SCHEDULES_VERSIONS = frozenset({"2024-06-11", "2024-06-14"})

NO_AUTH = (
    "ApiAuthStrategy - No authentication method provided. Either pass an API key as 'Bearer' header or "
    "OAuth client credentials as 'x-cal-secret-key' and 'x-cal-client-id' headers"
)
INVALID_KEY = "ApiAuthStrategy - api key - Your api key is not valid"
EXPIRED_KEY = "ApiAuthStrategy - api key - Your api key is expired"
SLOT_TAKEN = "User either already has booking at this time or is not available"
TOO_SOON = (
    "The event type can't be booked at the \"start\" time provided. This could be because it's too soon "
    "(violating the minimum booking notice) or too far in the future (outside the event's scheduling "
    "window). Try fetching available slots first using the GET /v2/slots endpoint and then make a booking "
    'with "start" time equal to one of the available slots: https://cal.com/docs/api-reference/v2/slots'
)
IN_THE_PAST = "Attempting to book a meeting in the past."
EXCEPTIONS = {
    400: "BadRequestException",
    401: "UnauthorizedException",
    403: "ForbiddenException",
    404: "NotFoundException",
    409: "ConflictException",
    422: "UnprocessableEntityException",
}
THROTTLED = "CustomThrottlerGuard - Too many requests. Please try again later."

SLOT_PARAMS = frozenset(
    {
        "start",
        "end",
        "eventTypeId",
        "eventTypeSlug",
        "username",
        "usernames",
        "teamSlug",
        "organizationSlug",
        "timeZone",
        "duration",
        "format",
        "bookingUidToReschedule",
    }
)
LIST_STATUSES = ("upcoming", "recurring", "past", "cancelled", "unconfirmed")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DEFAULT_HOURS: Mapping[int, Sequence[tuple[time, time]]] = {d: ((time(9), time(17)),) for d in range(5)}
RATE_WINDOW = timedelta(seconds=60)


def load_fixture(name: str) -> Any:
    """A recorded v2 body from fixtures/calcom/."""
    return json.loads((FIXTURES / name).read_text())


@dataclass
class FakeEventType:
    """The parts of an event type that change what Cal.com offers and how it books."""

    id: int
    slug: str
    title: str
    length_minutes: int
    requires_confirmation: bool = False
    block_unconfirmed: bool = False
    minimum_notice_minutes: int = 0
    before_buffer_minutes: int = 0
    after_buffer_minutes: int = 0
    slot_interval_minutes: int | None = None
    hidden: bool = False


@dataclass
class FakeBooking:
    id: int
    uid: str
    event_type_id: int
    start: datetime
    end: datetime
    status: Literal["accepted", "pending", "cancelled", "rejected"]
    attendee: dict[str, Any]
    metadata: dict[str, Any]
    responses: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    cancellation_reason: str | None = None
    cancelled_by: str | None = None
    rescheduling_reason: str | None = None
    rescheduled_by: str | None = None
    rescheduled_from: str | None = None
    rescheduled_to: str | None = None


@dataclass(frozen=True)
class WebhookDelivery:
    """One webhook POST as Cal.com would make it: the raw body and its headers."""

    trigger: str
    subscriber_url: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeReservation:
    uid: str
    event_type_id: int
    start: datetime
    end: datetime
    until: datetime
    created_at: datetime


FaultKind = Literal["status", "timeout", "connect", "lose_response", "rate_limit", "respond"]


@dataclass
class _Fault:
    kind: FaultKind
    remaining: int
    method: str | None
    path: str | None
    status: int = 503
    body: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, request: httpx.Request) -> bool:
        return (self.method is None or self.method == request.method) and (
            self.path is None or self.path == request.url.path
        )


class _Reply(Exception):
    """Raised inside a handler to answer with an error; never leaves the fake."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass
class _Limiter:
    window_start: datetime
    count: int = 0
    blocked_until: datetime | None = None


Handler = Callable[[httpx.Request, "re.Match[str]"], httpx.Response]


class FakeCalcom:
    """One Cal.com user (the business) with its event types, schedule, bookings and reservations."""

    def __init__(
        self,
        clock: Clock,
        *,
        time_zone: str = "America/New_York",
        weekly_hours: Mapping[int, Sequence[tuple[time, time]]] = DEFAULT_HOURS,
        closed_dates: Iterable[date] = (),
        event_types: Iterable[FakeEventType] = (),
        api_key: str = DEFAULT_API_KEY,
        expired_api_keys: Iterable[str] = (),
        rate_limit: int = 120,
        reserved_conflict_status: Literal[400, 409] = 409,
        ignore_list_time_filters: bool = False,
        seed: int = 0,
    ) -> None:
        self.clock = clock
        self.time_zone = ZoneInfo(time_zone)
        self.weekly_hours = {day: tuple(spans) for day, spans in weekly_hours.items()}
        self.closed_dates = frozenset(closed_dates)
        self.event_types = {et.id: et for et in event_types} or {
            456: FakeEventType(456, "consultation", "Consultation", 30)
        }
        self.api_key = api_key
        self.expired_api_keys = frozenset(expired_api_keys)
        self.rate_limit = rate_limit
        self.reserved_conflict_status = reserved_conflict_status
        self.ignore_list_time_filters = ignore_list_time_filters
        self.bookings: dict[str, FakeBooking] = {}
        self.reservations: dict[str, FakeReservation] = {}
        self.requests: list[httpx.Request] = []
        self.me = {**load_fixture("me.json")["data"], "timeZone": time_zone}
        self._event_type_template = load_fixture("event-types.json")["data"][0]
        self._faults: list[_Fault] = []
        self._limiters: dict[str, _Limiter] = {}
        self._rng = random.Random(seed)
        self._next_id = 1001
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/v2/slots"), self._get_slots),
            ("POST", re.compile(r"/v2/slots/reservations"), self._reserve),
            ("GET", re.compile(r"/v2/slots/reservations/(?P<uid>[^/]+)"), self._get_reservation),
            ("DELETE", re.compile(r"/v2/slots/reservations/(?P<uid>[^/]+)"), self._delete_reservation),
            ("POST", re.compile(r"/v2/bookings"), self._create_booking),
            ("GET", re.compile(r"/v2/bookings"), self._list_bookings),
            ("GET", re.compile(r"/v2/bookings/(?P<uid>[^/]+)"), self._get_booking),
            ("POST", re.compile(r"/v2/bookings/(?P<uid>[^/]+)/cancel"), self._cancel),
            ("POST", re.compile(r"/v2/bookings/(?P<uid>[^/]+)/reschedule"), self._reschedule),
            ("POST", re.compile(r"/v2/bookings/(?P<uid>[^/]+)/confirm"), self._confirm),
            ("POST", re.compile(r"/v2/bookings/(?P<uid>[^/]+)/decline"), self._decline),
            ("GET", re.compile(r"/v2/event-types"), self._list_event_types),
            ("GET", re.compile(r"/v2/event-types/(?P<id>\d+)"), self._get_event_type),
            ("GET", re.compile(r"/v2/me"), self._get_me),
            ("GET", re.compile(r"/v2/schedules/default"), self._get_schedule),
            ("POST", re.compile(r"/v2/webhooks"), self._create_webhook),
            ("GET", re.compile(r"/v2/webhooks"), self._list_webhooks),
            ("PATCH", re.compile(r"/v2/webhooks/(?P<id>\d+)"), self._update_webhook),
            ("DELETE", re.compile(r"/v2/webhooks/(?P<id>\d+)"), self._delete_webhook),
        ]
        self.webhooks: dict[int, dict[str, Any]] = {}
        self.deliveries: list[WebhookDelivery] = []

    # -- fault injection ---------------------------------------------------------------------

    def fail_next(
        self, n: int = 1, *, status: int = 503, method: str | None = None, path: str | None = None
    ) -> None:
        """The next `n` matching requests get a 5xx without being processed."""
        self._faults.append(_Fault("status", n, method, path, status=status))

    def time_out_next(self, n: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """The next `n` matching requests time out unprocessed (the client cannot know that)."""
        self._faults.append(_Fault("timeout", n, method, path))

    def refuse_connection_next(
        self, n: int = 1, *, method: str | None = None, path: str | None = None
    ) -> None:
        """The next `n` matching requests never reach the server (the connection is refused)."""
        self._faults.append(_Fault("connect", n, method, path))

    def lose_response_next(self, n: int = 1, *, method: str | None = None, path: str | None = None) -> None:
        """The next `n` matching requests are processed (and committed), then the response is lost."""
        self._faults.append(_Fault("lose_response", n, method, path))

    def rate_limit_next(
        self, n: int = 1, *, reset_seconds: int = 30, method: str | None = None, path: str | None = None
    ) -> None:
        """The next `n` matching requests get Cal.com's 429, `X-RateLimit-Reset-Default` = `reset_seconds`."""
        headers = self._rate_headers(self.rate_limit, 0, reset_seconds)
        self._faults.append(
            _Fault(
                "rate_limit",
                n,
                method,
                path,
                status=429,
                headers=headers,
                body=self._nest(429, "ThrottlerException", THROTTLED, path or "/v2"),
            )
        )

    def respond_next(
        self,
        status: int,
        body: Any = None,
        *,
        text: str | None = None,
        headers: Mapping[str, str] | None = None,
        n: int = 1,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """The next `n` matching requests get this canned response (e.g. a body from errors.json)."""
        self._faults.append(
            _Fault(
                "respond", n, method, path, status=status, body=body, text=text, headers=dict(headers or {})
            )
        )

    # -- direct state access for tests -------------------------------------------------------

    def requests_to(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def reserve_as_someone_else(
        self, event_type_id: int, start: datetime, minutes: int = 5
    ) -> FakeReservation:
        """A hold made by another booker (a web visitor), hiding that time from everyone."""
        return self._add_reservation(self.event_types[event_type_id], start.astimezone(UTC), minutes)

    def live_bookings(self) -> list[FakeBooking]:
        return [b for b in self.bookings.values() if b.status in ("accepted", "pending")]

    # -- entry point -------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        fault = next((f for f in self._faults if f.remaining > 0 and f.matches(request)), None)
        if fault is not None:
            fault.remaining -= 1
            if fault.kind == "timeout":
                raise httpx.ReadTimeout("fake Cal.com: read timed out", request=request)
            if fault.kind == "connect":
                raise httpx.ConnectError("fake Cal.com: connection refused", request=request)
            if fault.kind == "status":
                return self._server_error(request, fault.status)
            if fault.kind in ("rate_limit", "respond"):
                if fault.text is not None:
                    return httpx.Response(fault.status, text=fault.text, headers=fault.headers)
                return httpx.Response(fault.status, json=fault.body, headers=fault.headers)
        response = self._handle(request)
        if fault is not None and fault.kind == "lose_response":
            raise httpx.ReadTimeout("fake Cal.com: response lost after commit", request=request)
        return response

    def _handle(self, request: httpx.Request) -> httpx.Response:
        key = self._bearer(request)
        limiter_headers, throttled = self._throttle(key or "anonymous")
        if throttled:
            body = self._nest(429, "ThrottlerException", THROTTLED, request.url.path)
            return httpx.Response(429, json=body, headers=limiter_headers)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.url.path)
            if match is None or method != request.method:
                continue
            try:
                response = handler(request, match)
            except _Reply as reply:
                response = httpx.Response(reply.status, json=reply.body)
            response.headers.update(limiter_headers)
            return response
        return self._cannot(request, limiter_headers)

    def _cannot(self, request: httpx.Request, headers: Mapping[str, str] | None = None) -> httpx.Response:
        target = request.url.path + (f"?{request.url.query.decode()}" if request.url.query else "")
        reply = self._error(request, 404, f"Cannot {request.method} {target}")
        return httpx.Response(404, json=reply.body, headers=headers)

    def _server_error(self, request: httpx.Request, status: int) -> httpx.Response:
        if status == 500:
            body = {
                "status": "error",
                "timestamp": self._stamp(self._now()),
                "path": request.url.path,
                "error": {"code": "INTERNAL_SERVER_ERROR", "message": "Internal server error."},
            }
            return httpx.Response(500, json=body)
        return httpx.Response(
            status,
            text=f"<html><body>{status} error from the edge</body></html>",
            headers={"Content-Type": "text/html"},
        )

    # -- auth, versions, rate limits ---------------------------------------------------------

    @staticmethod
    def _bearer(request: httpx.Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        return token.strip() or None if scheme == "Bearer" else None

    def _authenticate(
        self, request: httpx.Request, *, required: bool, forbidden_when_missing: bool = False
    ) -> bool:
        """True when the host's key was sent. Raises like Cal.com for a bad key or a missing required one."""
        key = self._bearer(request)
        if key is None:
            if not required:
                return False
            if forbidden_when_missing:
                raise self._error(request, 403, "PermissionsGuard - no authentication provided.")
            raise self._error(request, 401, NO_AUTH)
        if key in self.expired_api_keys:
            raise self._error(request, 401, EXPIRED_KEY)
        if key != self.api_key:
            raise self._error(request, 401, INVALID_KEY)
        return True

    @staticmethod
    def _version(request: httpx.Request, accepted: frozenset[str]) -> bool:
        return request.headers.get("cal-api-version") in accepted

    def _throttle(self, tracker: str) -> tuple[dict[str, str], bool]:
        now = self._now()
        limiter = self._limiters.setdefault(tracker, _Limiter(window_start=now))
        if limiter.blocked_until is not None and now < limiter.blocked_until:
            return self._rate_headers(self.rate_limit, 0, _ceil(limiter.blocked_until - now)), True
        if now >= limiter.window_start + RATE_WINDOW or limiter.blocked_until is not None:
            limiter.window_start, limiter.count, limiter.blocked_until = now, 0, None
        limiter.count += 1
        if limiter.count > self.rate_limit:
            limiter.blocked_until = now + RATE_WINDOW
            return self._rate_headers(self.rate_limit, 0, _ceil(RATE_WINDOW)), True
        reset = _ceil(limiter.window_start + RATE_WINDOW - now)
        return self._rate_headers(self.rate_limit, self.rate_limit - limiter.count, reset), False

    @staticmethod
    def _rate_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
        return {
            "X-RateLimit-Limit-Default": str(limit),
            "X-RateLimit-Remaining-Default": str(remaining),
            "X-RateLimit-Reset-Default": str(reset),
        }

    # -- envelopes ---------------------------------------------------------------------------

    def _nest(self, status: int, exception: str, message: str, path: str) -> dict[str, Any]:
        """Envelope 1: a Nest `HttpException` through Cal.com's filter."""
        reason = httpx.codes.get_reason_phrase(status)
        return {
            "status": "error",
            "timestamp": self._stamp(self._now()),
            "path": path,
            "error": {
                "code": exception,
                "message": message,
                "details": {"message": message, "error": reason, "statusCode": status},
            },
        }

    def _error(self, request: httpx.Request, status: int, message: str) -> _Reply:
        return _Reply(status, self._nest(status, EXCEPTIONS[status], message, request.url.path))

    def _bad_request(self, request: httpx.Request, message: str) -> _Reply:
        return self._error(request, 400, message)

    def _invalid(self, request: httpx.Request, *problems: tuple[str, str]) -> _Reply:
        """Envelope 2: class-validator errors."""
        errors = [
            {"property": prop, "constraints": {"isDefined": text}, "children": []} for prop, text in problems
        ]
        body = {
            "status": "error",
            "timestamp": self._stamp(self._now()),
            "path": request.url.path,
            "error": {
                "code": "BadRequestException",
                "message": "Bad Request Exception",
                "details": {"errors": errors},
            },
        }
        return _Reply(400, body)

    @staticmethod
    def _bare(status: int, message: str) -> _Reply:
        """Envelope 4: a library `HttpError` reaching Nest's default handler."""
        return _Reply(status, {"statusCode": status, "message": message})

    @staticmethod
    def _ok(data: Any, status: int = 200, **extra: Any) -> httpx.Response:
        return httpx.Response(status, json={"status": "success", "data": data, **extra})

    # -- slots -------------------------------------------------------------------------------

    def _get_slots(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, SLOTS_VERSIONS):
            return self._cannot(request)
        self._authenticate(request, required=False)
        query = request.url.params
        unknown = sorted(set(query.keys()) - SLOT_PARAMS)
        if unknown:
            raise self._invalid(request, *((name, f"property {name} should not exist") for name in unknown))
        if "start" not in query or "end" not in query:
            raise self._invalid(
                request,
                ("start", "start must be a valid ISO 8601 date string"),
                ("end", "end must be a valid ISO 8601 date string"),
            )
        start = _query_instant(query["start"], end_of_day=False)
        end = _query_instant(query["end"], end_of_day=True)
        if start is None or end is None:
            raise self._invalid(request, ("start", "start must be a valid ISO 8601 date string"))
        if end <= start:
            raise self._bad_request(
                request, "Invalid time range given - check the 'start' and 'end' query parameters."
            )
        if "eventTypeId" not in query:
            raise self._invalid(request, ("eventTypeId", "eventTypeId must be a number"))
        event_type = self.event_types.get(_int(query["eventTypeId"]) or -1)
        if event_type is None:
            raise self._error(request, 404, "Event Type not found")
        zone_name = query.get("timeZone")
        try:
            zone = ZoneInfo(zone_name) if zone_name else None
        except (ZoneInfoNotFoundError, ValueError):
            raise self._invalid(request, ("timeZone", "timeZone must be a valid IANA time zone")) from None
        ranged = query.get("format") == "range"
        ignore = query.get("bookingUidToReschedule")
        days: dict[str, list[dict[str, str]]] = {}
        for slot in self._free_starts(event_type, start, end, ignore_uid=ignore):
            shown = slot.astimezone(zone or UTC)
            item = {"start": _iso_ms(shown, zone)}
            if ranged:
                item["end"] = _iso_ms(shown + timedelta(minutes=event_type.length_minutes), zone)
            days.setdefault(shown.date().isoformat(), []).append(item)
        return httpx.Response(200, json={"data": days, "status": "success"})

    def _free_starts(
        self, event_type: FakeEventType, start: datetime, end: datetime, ignore_uid: str | None = None
    ) -> list[datetime]:
        length = timedelta(minutes=event_type.length_minutes)
        step = timedelta(minutes=event_type.slot_interval_minutes or event_type.length_minutes)
        earliest = self._now() + timedelta(minutes=event_type.minimum_notice_minutes)
        found = []
        for open_at, close_at in self._openings(start - timedelta(days=1), end + timedelta(days=1)):
            moment = open_at
            while moment + length <= close_at:
                if (
                    start <= moment <= end
                    and moment >= earliest
                    and not self._busy(event_type, moment, moment + length, ignore_uid=ignore_uid)
                    and not self._reserved(moment, moment + length)
                ):
                    found.append(moment)
                moment += step
        return sorted(found)

    def _openings(self, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """Opening spans as UTC intervals, for every local day touching `[start, end]`."""
        day = start.astimezone(self.time_zone).date()
        last = end.astimezone(self.time_zone).date()
        spans = []
        while day <= last:
            hours = () if day in self.closed_dates else self.weekly_hours.get(day.weekday(), ())
            for open_at, close_at in hours:
                spans.append((self._instant(day, open_at), self._instant(day, close_at)))
            day += timedelta(days=1)
        return spans

    def _instant(self, day: date, wall: time) -> datetime:
        return datetime.combine(day, wall, tzinfo=self.time_zone).astimezone(UTC)

    def _open(self, start: datetime, end: datetime) -> bool:
        return any(o <= start and end <= c for o, c in self._openings(start, end))

    def _busy(
        self, event_type: FakeEventType, start: datetime, end: datetime, *, ignore_uid: str | None = None
    ) -> bool:
        before = timedelta(minutes=event_type.before_buffer_minutes)
        after = timedelta(minutes=event_type.after_buffer_minutes)
        for booking in self.bookings.values():
            if booking.uid == ignore_uid:
                continue
            blocks = booking.status == "accepted" or (
                booking.status == "pending" and self.event_types[booking.event_type_id].block_unconfirmed
            )
            if blocks and booking.start < end + after and start - before < booking.end:
                return True
        return False

    def _reserved(self, start: datetime, end: datetime) -> bool:
        return any(r.start < end and start < r.end for r in self._live_reservations())

    def _live_reservations(self) -> list[FakeReservation]:
        now = self._now()
        return [r for r in self.reservations.values() if r.until > now]

    # -- reservations ------------------------------------------------------------------------

    def _reserve(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, SLOTS_VERSIONS):
            return self._cannot(request)
        authed = self._authenticate(request, required=False)
        body = _json_object(request)
        if not isinstance(body.get("eventTypeId"), int | float) or not isinstance(body.get("slotStart"), str):
            raise self._invalid(
                request,
                ("eventTypeId", "eventTypeId must be a number"),
                ("slotStart", "slotStart must be a string"),
            )
        if "reservationDuration" in body and not authed:
            raise self._error(
                request,
                401,
                "reservationDuration can only be used for authenticated requests - use access token, api key "
                "or OAuth credentials",
            )
        event_type_id = int(body["eventTypeId"])
        event_type = self.event_types.get(event_type_id)
        if event_type is None:
            raise self._error(request, 404, f"Event Type with ID={event_type_id} not found")
        if "slotDuration" in body:
            raise self._bad_request(
                request, "You passed 'slotDuration' but this event type is not a variable length event type."
            )
        start = _parse_utc(body["slotStart"])
        if start is None:
            raise self._bad_request(request, "Invalid start date")
        end = start + timedelta(minutes=event_type.length_minutes)
        if self._busy(event_type, start, end):
            raise self._error(request, 422, "Can't reserve a slot if the event is already booked.")
        if self._reserved(start, end):
            raise self._error(
                request,
                422,
                "This time slot is already reserved by another user. Please choose a different time.",
            )
        minutes = int(body.get("reservationDuration") or 5)
        reservation = self._add_reservation(event_type, start, minutes)
        return self._ok({**self._reservation_output(reservation), "reservationDuration": minutes}, 201)

    def _add_reservation(self, event_type: FakeEventType, start: datetime, minutes: int) -> FakeReservation:
        now = self._now()
        reservation = FakeReservation(
            uid=str(uuid.UUID(int=self._rng.getrandbits(128), version=4)),
            event_type_id=event_type.id,
            start=start,
            end=start + timedelta(minutes=event_type.length_minutes),
            until=now + timedelta(minutes=minutes),
            created_at=now,
        )
        self.reservations[reservation.uid] = reservation
        return reservation

    def _reservation_output(self, reservation: FakeReservation) -> dict[str, Any]:
        return {
            "eventTypeId": reservation.event_type_id,
            "slotStart": self._stamp(reservation.start),
            "slotEnd": self._stamp(reservation.end),
            "slotDuration": int((reservation.end - reservation.start).total_seconds() // 60),
            "reservationUid": reservation.uid,
            "reservationUntil": self._stamp(reservation.until),
        }

    def _get_reservation(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, SLOTS_VERSIONS):
            return self._cannot(request)
        reservation = self.reservations.get(match["uid"])
        live = reservation is not None and reservation.until > self._now()
        return self._ok(self._reservation_output(reservation) if reservation is not None and live else None)

    def _delete_reservation(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, SLOTS_VERSIONS):
            return self._cannot(request)
        self._authenticate(request, required=False)
        if self.reservations.pop(match["uid"], None) is None:
            body = {
                "status": "error",
                "timestamp": self._stamp(self._now()),
                "path": request.url.path,
                "error": {
                    "code": "NOT_FOUND",
                    "message": "Invalid Query: The requested record was not found.",
                },
            }
            raise _Reply(404, body)
        return httpx.Response(200, json={"status": "success"})

    # -- bookings ----------------------------------------------------------------------------

    def _create_booking(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, BOOKINGS_VERSIONS):
            raise self._invalid(
                request,
                ("end", "end must be a valid ISO 8601 date string"),
                ("responses", "responses should not be null or undefined"),
            )
        self._authenticate(request, required=False)
        body = _json_object(request)
        attendee = body.get("attendee")
        if not isinstance(body.get("start"), str) or not isinstance(attendee, dict):
            raise self._invalid(
                request,
                ("start", "start must be a valid ISO 8601 date string"),
                ("attendee", "attendee should not be null or undefined"),
            )
        if not isinstance(attendee.get("name"), str) or not isinstance(attendee.get("timeZone"), str):
            raise self._invalid(
                request,
                ("attendee.name", "name must be a string"),
                ("attendee.timeZone", "timeZone must be a valid IANA time zone"),
            )
        if not attendee.get("email") and not attendee.get("phoneNumber"):
            raise self._bad_request(
                request, "Attendee must have at least one contact method (email or phone number)"
            )
        metadata = body.get("metadata") or {}
        if (
            not isinstance(metadata, dict)
            or len(metadata) > 50
            or any(len(k) > 40 or not isinstance(v, str) or len(v) > 500 for k, v in metadata.items())
        ):
            raise self._invalid(
                request,
                (
                    "metadata",
                    "metadata must have at most 50 keys, each key up to 40 "
                    "characters, and string values up to 500 characters",
                ),
            )
        event_type = self._event_type_for(request, body)
        if "lengthInMinutes" in body:
            raise self._bad_request(
                request,
                "Can't specify 'lengthInMinutes' because event type does not have multiple possible lengths. "
                "Please, remove the 'lengthInMinutes' field from the request.",
            )
        start = _parse_utc(body["start"])
        if start is None:
            raise self._invalid(request, ("start", "start must be a valid ISO 8601 date string"))
        end = start + timedelta(minutes=event_type.length_minutes)
        self._check_bookable(request, event_type, start, end)
        reservation_uid = body.get("reservedSlotUid")
        if isinstance(reservation_uid, str):
            self._check_first_in_line(request, reservation_uid)
        responses = {"name": attendee["name"], "guests": []}
        if attendee.get("email"):
            responses["email"] = attendee["email"]
        if attendee.get("phoneNumber"):
            responses["attendeePhoneNumber"] = attendee["phoneNumber"]
        fields = body.get("bookingFieldsResponses")
        if isinstance(fields, dict):
            responses.update(fields)
        booking = self._add_booking(
            event_type,
            start,
            end,
            status="pending" if event_type.requires_confirmation else "accepted",
            attendee={
                key: attendee[key]
                for key in ("name", "email", "timeZone", "phoneNumber", "language")
                if key in attendee
            },
            metadata=dict(metadata),
            responses=responses,
        )
        if isinstance(reservation_uid, str):
            self.reservations.pop(reservation_uid, None)
        self._emit("BOOKING_CREATED" if booking.status == "accepted" else "BOOKING_REQUESTED", booking)
        return self._ok(self._booking_output(booking), 201)

    def _event_type_for(self, request: httpx.Request, body: Mapping[str, Any]) -> FakeEventType:
        event_type_id = body.get("eventTypeId")
        if event_type_id is None and isinstance(body.get("eventTypeSlug"), str) and "username" in body:
            slug, username = body["eventTypeSlug"], body["username"]
            found = next((et for et in self.event_types.values() if et.slug == slug), None)
            if found is None or username != self.me["username"]:
                raise self._error(
                    request, 404, f"Event type with slug {slug} belonging to user {username} not found."
                )
            return found
        if not isinstance(event_type_id, int | float):
            raise self._bad_request(
                request,
                "Either eventTypeId or eventTypeSlug + username or eventTypeSlug + teamSlug must be provided",
            )
        event_type = self.event_types.get(int(event_type_id))
        if event_type is None:
            raise self._error(request, 404, f"Event type with id {int(event_type_id)} not found.")
        return event_type

    def _check_bookable(
        self,
        request: httpx.Request,
        event_type: FakeEventType,
        start: datetime,
        end: datetime,
        *,
        ignore_uid: str | None = None,
    ) -> None:
        now = self._now()
        if start < now:
            raise self._bad_request(request, IN_THE_PAST)
        if start < now + timedelta(minutes=event_type.minimum_notice_minutes):
            raise self._bad_request(request, TOO_SOON)
        if not self._open(start, end) or self._busy(event_type, start, end, ignore_uid=ignore_uid):
            raise self._bad_request(request, SLOT_TAKEN)

    def _check_first_in_line(self, request: httpx.Request, reservation_uid: str) -> None:
        mine = self.reservations.get(reservation_uid)
        if mine is None or mine.until <= self._now():
            return
        earlier = [
            r
            for r in self._live_reservations()
            if r.uid != mine.uid and r.start == mine.start and r.created_at < mine.created_at
        ]
        if earlier:
            seconds = _ceil(min(r.until for r in earlier) - self._now())
            message = (
                f"Someone else reserved this booking time slot before you. This time slot will be freed up "
                f"in {seconds} seconds."
            )
            raise self._error(request, self.reserved_conflict_status, message)

    def _add_booking(
        self, event_type: FakeEventType, start: datetime, end: datetime, **fields: Any
    ) -> FakeBooking:
        now = self._now()
        booking = FakeBooking(
            id=self._next_id,
            uid=self._uid(),
            event_type_id=event_type.id,
            start=start,
            end=end,
            created_at=now,
            updated_at=now,
            **fields,
        )
        self._next_id += 1
        self.bookings[booking.uid] = booking
        return booking

    def _uid(self) -> str:
        alphabet = string.ascii_letters + string.digits
        return "".join(self._rng.choice(alphabet) for _ in range(22))

    def _booking_output(self, booking: FakeBooking) -> dict[str, Any]:
        event_type = self.event_types[booking.event_type_id]
        attendee = booking.attendee
        email = attendee.get("email", "")
        phone = attendee.get("phoneNumber")
        output: dict[str, Any] = {
            "id": booking.id,
            "uid": booking.uid,
            "title": f"{event_type.title} between {self.me['name']} and {attendee['name']}",
            "description": "",
            "hosts": [
                {
                    "id": self.me["id"],
                    "name": self.me["name"],
                    "email": self.me["email"],
                    "displayEmail": self.me["email"],
                    "username": self.me["username"],
                    "timeZone": self.me["timeZone"],
                }
            ],
            "status": booking.status,
            "start": self._stamp(booking.start),
            "end": self._stamp(booking.end),
            "duration": int((booking.end - booking.start).total_seconds() // 60),
            "eventTypeId": event_type.id,
            "eventType": {"id": event_type.id, "slug": event_type.slug},
            "meetingUrl": phone or "",
            "location": phone or "",
            "absentHost": False,
            "createdAt": self._stamp(booking.created_at),
            "updatedAt": self._stamp(booking.updated_at),
            "metadata": booking.metadata,
            "icsUid": f"{booking.uid}@Cal.com",
            "attendees": [
                {
                    "name": attendee["name"],
                    "email": email,
                    "displayEmail": email,
                    "timeZone": attendee["timeZone"],
                    "language": attendee.get("language", "en"),
                    "absent": False,
                    **({"phoneNumber": phone} if phone else {}),
                }
            ],
            "guests": [],
            "bookingFieldsResponses": booking.responses,
        }
        optional = {
            "cancellationReason": booking.cancellation_reason,
            "cancelledByEmail": booking.cancelled_by,
            "reschedulingReason": booking.rescheduling_reason,
            "rescheduledByEmail": booking.rescheduled_by,
            "rescheduledFromUid": booking.rescheduled_from,
            "rescheduledToUid": booking.rescheduled_to,
        }
        output.update({key: value for key, value in optional.items() if value is not None})
        return output

    def _booking_or_404(self, request: httpx.Request, uid: str, message: str) -> FakeBooking:
        booking = self.bookings.get(uid)
        if booking is None:
            raise self._error(request, 404, message)
        return booking

    def _get_booking(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, BOOKINGS_VERSIONS):
            return self._server_error(request, 500)
        self._authenticate(request, required=False)
        uid = match["uid"]
        booking = self._booking_or_404(request, uid, f"Booking with uid={uid} was not found in the database")
        return self._ok(self._booking_output(booking))

    def _list_bookings(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, BOOKINGS_VERSIONS):
            return self._server_error(request, 500)
        self._authenticate(request, required=True, forbidden_when_missing=True)
        query = request.url.params
        statuses = [s for s in query.get("status", "").split(",") if s]
        if any(s not in LIST_STATUSES for s in statuses):
            raise self._bad_request(
                request, "Invalid status. Allowed are upcoming, recurring, past, cancelled, unconfirmed"
            )
        take = _int(query.get("take", "100"))
        skip = _int(query.get("skip", "0"))
        if take is None or not 1 <= take <= 250 or skip is None or skip < 0:
            raise self._invalid(request, ("take", "take must not be greater than 250"))
        found = [b for b in self.bookings.values() if self._listed(b, query, statuses)]
        order = query.get("sortStart") or ("desc" if statuses in (["past"], ["cancelled"]) else "asc")
        found.sort(key=lambda b: b.start, reverse=order == "desc")
        page = found[skip : skip + take]
        total = len(found)
        pages = max(1, math.ceil(total / take))
        pagination = {
            "totalItems": total,
            "remainingItems": max(0, total - skip - len(page)),
            "returnedItems": len(page),
            "itemsPerPage": take,
            "currentPage": skip // take + 1,
            "totalPages": pages,
            "hasNextPage": skip + len(page) < total,
            "hasPreviousPage": skip > 0,
        }
        return self._ok([self._booking_output(b) for b in page], pagination=pagination)

    def _listed(self, booking: FakeBooking, query: httpx.QueryParams, statuses: list[str]) -> bool:
        now = self._now()
        live = booking.status in ("accepted", "pending")
        matches = {
            "upcoming": booking.end >= now and live,
            "recurring": False,
            "past": booking.end <= now and live,
            "cancelled": booking.status in ("cancelled", "rejected"),
            "unconfirmed": booking.end >= now and booking.status == "pending",
        }
        if statuses and not any(matches[s] for s in statuses):
            return False
        email = query.get("attendeeEmail")
        if email and str(booking.attendee.get("email", "")).lower() != email.lower():
            return False
        name = query.get("attendeeName")
        if name and name.lower() not in booking.attendee["name"].lower():
            return False
        if query.get("bookingUid") and booking.uid != query["bookingUid"]:
            return False
        ids = [i for i in [*query.get("eventTypeIds", "").split(","), query.get("eventTypeId", "")] if i]
        if ids and str(booking.event_type_id) not in ids:
            return False
        if self.ignore_list_time_filters:
            return True
        after = _parse_utc(query["afterStart"]) if "afterStart" in query else None
        before = _parse_utc(query["beforeEnd"]) if "beforeEnd" in query else None
        return (after is None or booking.start >= after) and (before is None or booking.end <= before)

    def _cancel(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, BOOKINGS_VERSIONS):
            return self._server_error(request, 500)
        host = self._authenticate(request, required=False)
        uid = match["uid"]
        booking = self._booking_or_404(request, uid, f"Booking with uid={uid} not found")
        body = _json_object(request)
        reason = body.get("cancellationReason")
        if booking.status in ("cancelled", "rejected"):
            raise self._bare(400, "This booking has already been cancelled.")
        if host and not reason:
            raise self._bare(400, "Cancellation reason is required when you are the host")
        if booking.end <= self._now():
            raise self._bare(400, "Cannot cancel a booking that has already ended")
        booking.status = "cancelled"
        booking.cancellation_reason = reason if isinstance(reason, str) else None
        booking.cancelled_by = self.me["email"] if host else booking.attendee.get("email")
        booking.updated_at = self._now()
        self._emit(
            "BOOKING_CANCELLED",
            booking,
            cancellationReason=booking.cancellation_reason,
            cancelledBy=booking.cancelled_by,
            requestReschedule=False,
        )
        return self._ok(self._booking_output(booking))

    def _reschedule(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, BOOKINGS_VERSIONS):
            return self._server_error(request, 500)
        self._authenticate(request, required=False)
        uid = match["uid"]
        old = self._booking_or_404(request, uid, f"Booking with uid={uid} was not found in the database")
        body = _json_object(request)
        if not isinstance(body.get("start"), str):
            raise self._invalid(request, ("start", "start must be a valid ISO 8601 date string"))
        if old.rescheduled_to is not None:
            raise self._bad_request(
                request,
                f"Can't reschedule booking with uid={uid} because it has been cancelled and rescheduled "
                f"already to booking with uid={old.rescheduled_to}. You probably want to reschedule "
                f"{old.rescheduled_to} instead by passing it within the request URL.",
            )
        if old.status in ("cancelled", "rejected"):
            raise self._bad_request(
                request,
                f"Can't reschedule booking with uid={uid} because it has been cancelled. Please provide uid "
                "of a booking that is not cancelled.",
            )
        start = _parse_utc(body["start"])
        if start is None:
            raise self._invalid(request, ("start", "start must be a valid ISO 8601 date string"))
        event_type = self.event_types[old.event_type_id]
        end = start + (old.end - old.start)
        self._check_bookable(request, event_type, start, end, ignore_uid=old.uid)
        by = body.get("rescheduledBy")
        confirmed = not event_type.requires_confirmation or by == self.me["email"]
        new = self._add_booking(
            event_type,
            start,
            end,
            status="accepted" if confirmed else "pending",
            attendee=dict(old.attendee),
            metadata=dict(old.metadata),
            responses=dict(old.responses),
            rescheduling_reason=body.get("reschedulingReason"),
            rescheduled_by=by if isinstance(by, str) else None,
            rescheduled_from=old.uid,
        )
        old.status = "cancelled"
        old.rescheduled_to = new.uid
        old.updated_at = self._now()
        self._emit(
            "BOOKING_RESCHEDULED" if new.status == "accepted" else "BOOKING_REQUESTED",
            new,
            rescheduleUid=old.uid,
            rescheduleId=old.id,
            rescheduleStartTime=_webhook_time(old.start),
            rescheduleEndTime=_webhook_time(old.end),
            rescheduledBy=new.rescheduled_by,
        )
        return self._ok(self._booking_output(new), 201)

    def _confirm(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return self._decide(request, match["uid"], "accepted")

    def _decline(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        return self._decide(request, match["uid"], "rejected")

    def _decide(
        self, request: httpx.Request, uid: str, status: Literal["accepted", "rejected"]
    ) -> httpx.Response:
        if not self._version(request, BOOKINGS_VERSIONS):
            return self._server_error(request, 500)
        self._authenticate(request, required=True)
        booking = self._booking_or_404(request, uid, f"Booking with uid={uid} was not found in the database")
        booking.status = status
        booking.updated_at = self._now()
        self._emit("BOOKING_CREATED" if status == "accepted" else "BOOKING_REJECTED", booking)
        return self._ok(self._booking_output(booking))

    # -- event types, me, schedule -----------------------------------------------------------

    def _event_type_output(self, event_type: FakeEventType) -> dict[str, Any]:
        policy = (
            {"type": "always", "blockUnconfirmedBookingsInBooker": event_type.block_unconfirmed}
            if event_type.requires_confirmation
            else {"disabled": True}
        )
        return {
            **self._event_type_template,
            "id": event_type.id,
            "slug": event_type.slug,
            "title": event_type.title,
            "lengthInMinutes": event_type.length_minutes,
            "minimumBookingNotice": event_type.minimum_notice_minutes,
            "beforeEventBuffer": event_type.before_buffer_minutes,
            "afterEventBuffer": event_type.after_buffer_minutes,
            "slotInterval": event_type.slot_interval_minutes,
            "hidden": event_type.hidden,
            "confirmationPolicy": policy,
            "ownerId": self.me["id"],
            "users": [self.me["username"]],
            "bookingUrl": f"https://cal.com/{self.me['username']}/{event_type.slug}",
        }

    def _list_event_types(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, EVENT_TYPES_VERSIONS):
            return self._cannot(request)
        by_username = request.url.params.get("username")
        self._authenticate(request, required=by_username is None)
        shown = [et for et in self.event_types.values() if by_username is None or not et.hidden]
        if by_username is not None and by_username != self.me["username"]:
            shown = []
        return self._ok([self._event_type_output(et) for et in shown])

    def _get_event_type(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, EVENT_TYPES_VERSIONS):
            return self._cannot(request)
        self._authenticate(request, required=True)
        event_type = self.event_types.get(int(match["id"]))
        if event_type is None:
            raise self._error(request, 404, f"Event type with id {match['id']} not found")
        return self._ok(self._event_type_output(event_type))

    def _get_me(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._authenticate(request, required=True)
        return self._ok(self.me)

    def _get_schedule(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        if not self._version(request, SCHEDULES_VERSIONS):
            return self._cannot(request)
        self._authenticate(request, required=True)
        availability = [
            {
                "days": [
                    WEEKDAYS[day] for day in sorted(self.weekly_hours) if span in self.weekly_hours[day]
                ],
                "startTime": span[0].strftime("%H:%M"),
                "endTime": span[1].strftime("%H:%M"),
            }
            for span in dict.fromkeys(s for spans in self.weekly_hours.values() for s in spans)
        ]
        schedule = {
            **load_fixture("schedule-default.json")["data"],
            "ownerId": self.me["id"],
            "timeZone": self.time_zone.key,
            "availability": availability,
        }
        return self._ok(schedule)

    # -- webhooks ----------------------------------------------------------------------------

    @staticmethod
    def signature(body: bytes, secret: str | None) -> str:
        """`X-Cal-Signature-256`: hex HMAC-SHA256 of the raw body, or `no-secret-provided`."""
        if not secret:
            return "no-secret-provided"
        return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()

    def webhook_payload(self, booking: FakeBooking, **extra: Any) -> dict[str, Any]:
        """The 2021-10-20 `payload` for a booking (the CalendarEvent shape of contract 2.13)."""
        event_type = self.event_types[booking.event_type_id]
        attendee = booking.attendee
        first, _, last = attendee["name"].partition(" ")
        zone = ZoneInfo(attendee.get("timeZone", "UTC"))
        responses: dict[str, Any] = {"name": {"label": "your_name", "value": attendee["name"]}}
        if attendee.get("email"):
            responses["email"] = {"label": "email_address", "value": attendee["email"]}
        if attendee.get("phoneNumber"):
            responses["attendeePhoneNumber"] = {"label": "phone_number", "value": attendee["phoneNumber"]}
        offset = booking.start.astimezone(zone).utcoffset()
        payload: dict[str, Any] = {
            "bookerUrl": "https://cal.com",
            "type": event_type.slug,
            "title": f"{event_type.title} between {self.me['name']} and {attendee['name']}",
            "description": "",
            "additionalNotes": "",
            "customInputs": {},
            "startTime": _webhook_time(booking.start),
            "endTime": _webhook_time(booking.end),
            "organizer": {
                "id": self.me["id"],
                "name": self.me["name"],
                "email": self.me["email"],
                "username": self.me["username"],
                "timeZone": self.me["timeZone"],
                "language": {"locale": "en"},
                "timeFormat": "h:mma",
            },
            "responses": responses,
            "userFieldsResponses": {},
            "attendees": [
                {
                    "name": attendee["name"],
                    "firstName": first,
                    "lastName": last,
                    "email": attendee.get("email", ""),
                    **({"phoneNumber": attendee["phoneNumber"]} if attendee.get("phoneNumber") else {}),
                    "timeZone": attendee.get("timeZone", "UTC"),
                    "language": {"locale": attendee.get("language", "en")},
                    "utcOffset": int(offset.total_seconds() // 60) if offset is not None else 0,
                }
            ],
            "location": attendee.get("phoneNumber", ""),
            "destinationCalendar": None,
            "hideCalendarNotes": False,
            "requiresConfirmation": event_type.requires_confirmation,
            "eventTypeId": event_type.id,
            "seatsPerTimeSlot": None,
            "seatsShowAttendees": True,
            "uid": booking.uid,
            "iCalUID": f"{booking.uid}@Cal.com",
            "appsStatus": [],
            "eventTitle": event_type.title,
            "eventDescription": None,
            "price": 0,
            "currency": "usd",
            "length": event_type.length_minutes,
            "bookingId": booking.id,
            "metadata": dict(booking.metadata),
            "status": booking.status.upper(),
            "smsReminderNumber": None,
        }
        payload.update(extra)
        return payload

    def end_meeting(self, uid: str, *, legacy: bool = False) -> None:
        """MEETING_ENDED for an accepted booking: the builder shape, or the legacy cron's unwrapped row."""
        booking = self.bookings[uid]
        if legacy:
            row = {
                "id": booking.id,
                "uid": booking.uid,
                "title": self.webhook_payload(booking)["title"],
                "description": "",
                "startTime": self._stamp(booking.start),
                "endTime": self._stamp(booking.end),
                "location": booking.attendee.get("phoneNumber", ""),
                "metadata": dict(booking.metadata),
                "responses": dict(booking.responses),
                "attendees": [
                    {
                        "name": booking.attendee["name"],
                        "email": booking.attendee.get("email", ""),
                        "timeZone": booking.attendee.get("timeZone", "UTC"),
                    }
                ],
                "user": {"id": self.me["id"], "email": self.me["email"], "name": self.me["name"]},
                "eventTypeId": booking.event_type_id,
                "status": booking.status.upper(),
            }
            self._deliver("MEETING_ENDED", {"triggerEvent": "MEETING_ENDED", **row})
            return
        slug = self.event_types[booking.event_type_id].slug
        self._emit("MEETING_ENDED", booking, eventType={"id": booking.event_type_id, "slug": slug})

    def _emit(self, trigger: str, booking: FakeBooking, **extra: Any) -> None:
        payload = self.webhook_payload(booking, **extra)
        self._deliver(
            trigger, {"triggerEvent": trigger, "createdAt": self._stamp(self._now()), "payload": payload}
        )

    def _deliver(self, trigger: str, document: dict[str, Any]) -> None:
        raw = json.dumps(document, separators=(",", ":")).encode()
        for webhook in self.webhooks.values():
            if webhook["active"] and trigger in webhook["triggers"]:
                headers = {
                    "Content-Type": "application/json",
                    "X-Cal-Signature-256": self.signature(raw, webhook.get("secret")),
                    "X-Cal-Webhook-Version": "2021-10-20",
                }
                self.deliveries.append(WebhookDelivery(trigger, webhook["subscriberUrl"], raw, headers))

    def _webhook_output(self, webhook: dict[str, Any]) -> dict[str, Any]:
        return {
            key: webhook.get(key)
            for key in ("id", "userId", "subscriberUrl", "triggers", "active", "payloadTemplate", "secret")
        }

    def _create_webhook(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._authenticate(request, required=True)
        body = _json_object(request)
        problems = [
            (name, text)
            for name, text, ok in (
                (
                    "subscriberUrl",
                    "subscriberUrl must be a string",
                    isinstance(body.get("subscriberUrl"), str),
                ),
                ("triggers", "triggers must be an array", isinstance(body.get("triggers"), list)),
                ("active", "active must be a boolean value", isinstance(body.get("active"), bool)),
            )
            if not ok
        ]
        if problems:
            raise self._invalid(request, *problems)
        webhook_id = max(self.webhooks, default=0) + 1
        self.webhooks[webhook_id] = {
            "id": webhook_id,
            "userId": self.me["id"],
            "subscriberUrl": body["subscriberUrl"],
            "triggers": list(body["triggers"]),
            "active": body["active"],
            "payloadTemplate": body.get("payloadTemplate"),
            "secret": body.get("secret"),
        }
        return self._ok(self._webhook_output(self.webhooks[webhook_id]), 201)

    def _list_webhooks(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._authenticate(request, required=True)
        return self._ok([self._webhook_output(w) for w in self.webhooks.values()])

    def _update_webhook(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._authenticate(request, required=True)
        webhook = self.webhooks.get(int(match["id"]))
        if webhook is None:
            raise self._error(request, 404, f"Webhook with id {match['id']} not found")
        body = _json_object(request)
        webhook.update(
            {k: v for k, v in body.items() if k in ("subscriberUrl", "triggers", "active", "secret")}
        )
        return self._ok(self._webhook_output(webhook))

    def _delete_webhook(self, request: httpx.Request, match: re.Match[str]) -> httpx.Response:
        self._authenticate(request, required=True)
        webhook = self.webhooks.pop(int(match["id"]), None)
        if webhook is None:
            raise self._error(request, 404, f"Webhook with id {match['id']} not found")
        return self._ok(self._webhook_output(webhook))

    # -- time --------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    @staticmethod
    def _stamp(moment: datetime) -> str:
        """A JSON-serialised JS `Date`: `2026-03-10T14:00:00.000Z`."""
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _webhook_time(moment: datetime) -> str:
    """Webhook `startTime`/`endTime`: `2026-03-10T14:00:00Z`, no milliseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso_ms(moment: datetime, zone: ZoneInfo | None) -> str:
    """Slot time as Cal.com prints it: milliseconds, and the zone's offset (`Z` when no zone was asked)."""
    if zone is None:
        return FakeCalcom._stamp(moment)
    text = moment.astimezone(zone).isoformat(timespec="milliseconds")
    return text if zone.key != "UTC" else text.replace("+00:00", "Z")


def _parse_utc(text: str) -> datetime | None:
    """`DateTime.fromISO(text, {zone: "utc"})`: a string without an offset is UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _query_instant(text: str, *, end_of_day: bool) -> datetime | None:
    """Slots `start`/`end`: UTC; a date-only or 00:00:00Z `end` means 23:59:59Z of that day."""
    parsed = _parse_utc(text)
    if parsed is None:
        return None
    if end_of_day and parsed.time() == time(0):
        return parsed.replace(hour=23, minute=59, second=59)
    return parsed


def _json_object(request: httpx.Request) -> dict[str, Any]:
    if not request.content:
        return {}
    try:
        body = json.loads(request.content)
    except json.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _ceil(span: timedelta) -> int:
    return max(0, math.ceil(span.total_seconds()))
