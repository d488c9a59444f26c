"""`CalcomCalendar` against `FakeCalcom`: what goes over the wire, and what a caller notices when
Cal.com misbehaves (lost responses, 5xx, 429, every error envelope in contract.md section 1.4).

Requests are also checked against the OpenAPI request schemas (fixtures/calcom/openapi-v2.receptionist-
subset.json), except where contract.md lists the spec as wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from agent.loopback.calcom_api import FakeCalcom, FakeEventType, load_fixture
from booking.calendars.calcom import (
    ATTEMPT_METADATA_KEY,
    DEFAULT_API_URL,
    DEFAULT_CANCEL_REASON,
    CalcomCalendar,
)
from booking.clock import FixedClock
from booking.errors import (
    BookingError,
    CalendarUnavailable,
    InvalidRequest,
    NotFound,
    RateLimited,
    SlotTaken,
    TooSoon,
    Unauthorized,
)
from booking.models import Attendee, BookingRequest, Service, Slot, Window, minutes

ZONE = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 10, 10, 7, tzinfo=ZONE)
TOMORROW = Window(datetime(2026, 3, 11, tzinfo=ZONE), datetime(2026, 3, 12, tzinfo=ZONE))
JANE = Attendee("Jane Doe", "jane@example.com", "America/New_York", phone="+15551234567")
EVENT_TYPES = [
    FakeEventType(456, "consultation", "Consultation", 30),
    FakeEventType(457, "new-patient", "New patient visit", 60, requires_confirmation=True),
    FakeEventType(458, "staff-meeting", "Staff meeting", 60, hidden=True),
]


@dataclass
class Rig:
    """The calendar under test, the fake it talks to, and the clock both read."""

    calendar: CalcomCalendar
    fake: FakeCalcom
    clock: FixedClock
    naps: list[float] = field(default_factory=list)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return self.fake.requests_to(method, f"/v2{path}")

    def body(self, method: str, path: str, index: int = -1) -> Any:
        return json.loads(self.sent(method, path)[index].content)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = FixedClock(NOW)
    fake = FakeCalcom(clock, event_types=EVENT_TYPES)
    naps: list[float] = []

    async def nap(seconds: float) -> None:
        naps.append(seconds)
        clock.advance(timedelta(seconds=seconds))

    async with httpx.AsyncClient(base_url=DEFAULT_API_URL, transport=httpx.MockTransport(fake)) as client:
        yield Rig(CalcomCalendar(client, api_key=fake.api_key, clock=clock, sleep=nap), fake, clock, naps)


async def consultation(rig: Rig) -> Service:
    return next(s for s in await rig.calendar.services() if s.key == "consultation")


async def slot_at(rig: Rig, hour: int, minute: int = 0) -> Slot:
    wanted = datetime(2026, 3, 11, hour, minute, tzinfo=ZONE)
    return next(s for s in await rig.calendar.slots(await consultation(rig), TOMORROW) if s.start == wanted)


def request_for(slot: Slot, attempt: str = "call-7-attempt-1", attendee: Attendee = JANE) -> BookingRequest:
    return BookingRequest(slot=slot, attendee=attendee, attempt_id=attempt, notes="Knee pain")


# -- what goes over the wire -------------------------------------------------------------------


async def test_each_endpoint_family_sends_its_own_api_version(rig: Rig) -> None:
    """Slots 2024-09-04, bookings 2024-08-13, event types 2024-06-14, /me none: no legacy routing."""
    slot = await slot_at(rig, 11)
    booking = await rig.calendar.create(request_for(slot), await rig.calendar.hold(slot))
    await rig.calendar.reschedule(booking.uid, datetime(2026, 3, 11, 14, tzinfo=ZONE))
    await rig.calendar.find(email=JANE.email, window=TOMORROW)

    expected = {"slots": "2024-09-04", "bookings": "2024-08-13", "event-types": "2024-06-14", "me": None}
    families = set()
    for request in rig.fake.requests:
        family = request.url.path.split("/")[2]
        families.add(family)
        assert request.headers.get("cal-api-version") == expected[family], request.url
    assert families == set(expected)


async def test_every_request_carries_short_explicit_timeouts(rig: Rig) -> None:
    """A caller is waiting: 2 s to connect and 4 s to answer, whatever the injected client's defaults."""
    await rig.calendar.slots(await consultation(rig), TOMORROW)
    timeouts = {tuple(sorted(r.extensions["timeout"].items())) for r in rig.fake.requests}
    assert timeouts == {(("connect", 2.0), ("pool", 4.0), ("read", 4.0), ("write", 4.0))}


async def test_the_fake_routes_a_wrong_version_to_legacy_behaviour(rig: Rig) -> None:
    """A wrong or missing header gets Cal.com's legacy answers, which the client reports as bad requests."""
    client = httpx.AsyncClient(base_url=DEFAULT_API_URL, transport=httpx.MockTransport(rig.fake))
    async with client:
        slots = await client.get(
            "/slots",
            params={"start": "2026-03-11T00:00:00Z", "end": "2026-03-12T00:00:00Z", "eventTypeId": "456"},
            headers={"cal-api-version": "2024-08-13"},
        )
        create = await client.post("/bookings", json={"start": "2026-03-11T15:00:00Z"})
        quoted = await client.get("/slots/reservations/x", headers={"cal-api-version": '"2024-09-04"'})
    assert slots.status_code == 404
    assert slots.json()["error"]["message"].startswith("Cannot GET /v2/slots?start=")
    assert create.status_code == 400
    assert create.json()["error"]["message"] == "Bad Request Exception"
    assert quoted.status_code == 404


async def test_booking_start_goes_out_in_utc_with_z(rig: Rig) -> None:
    """15:00 in New York on 11 March (EDT) is sent as 19:00Z, for create and for reschedule."""
    slot = await slot_at(rig, 15)
    booking = await rig.calendar.create(request_for(slot), None)
    await rig.calendar.reschedule(booking.uid, datetime(2026, 3, 11, 16, 30, tzinfo=ZONE))

    assert rig.body("POST", "/bookings")["start"] == "2026-03-11T19:00:00Z"
    assert rig.body("POST", f"/bookings/{booking.uid}/reschedule")["start"] == "2026-03-11T20:30:00Z"
    slots_query = rig.sent("GET", "/slots")[0].url.params
    assert slots_query["timeZone"] == "America/New_York"
    assert slots_query["start"].endswith("Z") and slots_query["end"].endswith("Z")


async def test_create_sends_attendee_details_and_our_attempt_id(rig: Rig) -> None:
    """Name, email, phone and time zone go out; the attempt id comes back on the booking."""
    slot = await slot_at(rig, 11)
    booking = await rig.calendar.create(request_for(slot, attempt="call-42-attempt-3"), None)

    body = rig.body("POST", "/bookings")
    assert body["attendee"] == {
        "name": "Jane Doe",
        "timeZone": "America/New_York",
        "email": "jane@example.com",
        "phoneNumber": "+15551234567",
    }
    assert body["metadata"] == {ATTEMPT_METADATA_KEY: "call-42-attempt-3"}
    assert body["eventTypeId"] == 456
    assert booking.attempt_id == "call-42-attempt-3"
    assert booking.notes == "Knee pain"
    assert booking.attendee == JANE


async def test_a_hold_reserves_the_slot_and_the_booking_consumes_it(rig: Rig) -> None:
    """The hold is a Cal.com reservation; booking with `reservedSlotUid` uses it up."""
    slot = await slot_at(rig, 11)
    hold = await rig.calendar.hold(slot)

    assert rig.body("POST", "/slots/reservations") == {
        "eventTypeId": 456,
        "slotStart": "2026-03-11T15:00:00Z",
    }
    assert hold.expires_at == NOW + timedelta(minutes=5)
    assert list(rig.fake.reservations) == [hold.uid]

    await rig.calendar.create(request_for(slot), hold)
    assert rig.body("POST", "/bookings")["reservedSlotUid"] == hold.uid
    assert rig.fake.reservations == {}


async def test_releasing_a_hold_deletes_the_reservation_and_is_safe_twice(rig: Rig) -> None:
    """A caller who declines gives the time back; releasing again (or after expiry) is not an error."""
    slot = await slot_at(rig, 11)
    hold = await rig.calendar.hold(slot)
    await rig.calendar.release(hold)
    await rig.calendar.release(hold)

    assert len(rig.sent("DELETE", f"/slots/reservations/{hold.uid}")) == 2
    assert slot in await rig.calendar.slots(await consultation(rig), TOMORROW)


async def test_an_expired_hold_books_without_the_reservation(rig: Rig) -> None:
    """After a long pause the lapsed hold is not sent, and the booking still goes through."""
    slot = await slot_at(rig, 11)
    hold = await rig.calendar.hold(slot)
    rig.clock.advance(timedelta(minutes=6))

    booking = await rig.calendar.create(request_for(slot), hold)

    assert booking.status == "accepted"
    assert "reservedSlotUid" not in rig.body("POST", "/bookings")


async def test_a_slot_held_by_someone_else_is_hidden_and_cannot_be_held(rig: Rig) -> None:
    """A web visitor's hold hides the time from us too; trying to hold it anyway is SlotTaken."""
    slot = await slot_at(rig, 11)
    rig.fake.reserve_as_someone_else(456, slot.start)
    rig.clock.advance(timedelta(seconds=30))

    assert slot not in await rig.calendar.slots(await consultation(rig), TOMORROW)
    with pytest.raises(SlotTaken) as taken:
        await rig.calendar.hold(slot)
    assert taken.value.context["status"] == 422


async def test_a_phone_only_caller_can_book_and_be_found_by_phone(rig: Rig) -> None:
    """No email: the phone number is the contact method, and finding by phone works."""
    caller = Attendee("Sam Lee", "", "America/New_York", phone="+15557654321")
    booking = await rig.calendar.create(request_for(await slot_at(rig, 11), attendee=caller), None)

    assert "email" not in rig.body("POST", "/bookings")["attendee"]
    found = await rig.calendar.find(phone="+15557654321", window=TOMORROW)
    assert [b.uid for b in found] == [booking.uid]
    assert "attendeeEmail" not in rig.sent("GET", "/bookings")[-1].url.params


# -- lost responses, retries, rate limits ------------------------------------------------------


async def test_a_lost_create_response_finds_the_booking_instead_of_booking_twice(rig: Rig) -> None:
    """Cal.com committed the booking but the answer never came: we find it by attempt id."""
    slot = await slot_at(rig, 11)
    rig.fake.lose_response_next(method="POST", path="/v2/bookings")

    booking = await rig.calendar.create(request_for(slot), await rig.calendar.hold(slot))

    assert len(rig.sent("POST", "/bookings")) == 1
    assert [b.uid for b in rig.fake.live_bookings()] == [booking.uid]
    assert booking.attempt_id == "call-7-attempt-1"
    lookup = rig.sent("GET", "/bookings")[0].url.params
    assert lookup["attendeeEmail"] == JANE.email


async def test_a_create_that_never_arrived_is_sent_again_after_checking(rig: Rig) -> None:
    """A timeout before Cal.com saw the request: the lookup finds nothing, so we create once more."""
    slot = await slot_at(rig, 11)
    rig.fake.time_out_next(method="POST", path="/v2/bookings")

    booking = await rig.calendar.create(request_for(slot), None)

    assert len(rig.sent("POST", "/bookings")) == 2
    assert len(rig.sent("GET", "/bookings")) == 1
    assert [b.uid for b in rig.fake.live_bookings()] == [booking.uid]


async def test_a_lost_reschedule_response_returns_the_new_booking_once(rig: Rig) -> None:
    """The move happened server-side; we follow the old booking to its new uid instead of moving again."""
    booking = await rig.calendar.create(request_for(await slot_at(rig, 11)), None)
    rig.fake.lose_response_next(method="POST", path=f"/v2/bookings/{booking.uid}/reschedule")

    moved = await rig.calendar.reschedule(booking.uid, datetime(2026, 3, 11, 14, tzinfo=ZONE))

    assert len(rig.sent("POST", f"/bookings/{booking.uid}/reschedule")) == 1
    assert moved.start == datetime(2026, 3, 11, 14, tzinfo=ZONE)
    assert [b.uid for b in rig.fake.live_bookings()] == [moved.uid]


async def test_server_errors_on_reads_are_retried_within_a_bound(rig: Rig) -> None:
    """Two 503s then success is invisible to the caller; a persistent outage fails after 3 tries."""
    service = await consultation(rig)
    rig.fake.fail_next(2, status=503, path="/v2/slots")
    assert await rig.calendar.slots(service, TOMORROW)
    assert len(rig.sent("GET", "/slots")) == 3

    rig.fake.fail_next(10, status=500, path="/v2/slots")
    rig.clock.advance(timedelta(minutes=1))
    with pytest.raises(CalendarUnavailable):
        await rig.calendar.slots(service, TOMORROW)
    assert len(rig.sent("GET", "/slots")) == 6


async def test_a_hold_is_retried_only_when_it_surely_never_arrived(rig: Rig) -> None:
    """A refused connection is retried; a lost reservation response is not (it cannot be looked up)."""
    slot = await slot_at(rig, 11)
    rig.fake.refuse_connection_next(method="POST", path="/v2/slots/reservations")
    hold = await rig.calendar.hold(slot)
    assert len(rig.sent("POST", "/slots/reservations")) == 2
    await rig.calendar.release(hold)

    rig.fake.lose_response_next(method="POST", path="/v2/slots/reservations")
    with pytest.raises(CalendarUnavailable) as lost:
        await rig.calendar.hold(slot)
    assert lost.value.context["outcome"] == "unknown"
    assert len(rig.sent("POST", "/slots/reservations")) == 3


async def test_a_short_rate_limit_is_waited_out(rig: Rig) -> None:
    """A 429 resetting in 2 s costs the caller 2 s, not a failure."""
    service = await consultation(rig)
    rig.fake.rate_limit_next(reset_seconds=2, path="/v2/slots")

    assert await rig.calendar.slots(service, TOMORROW)
    assert rig.naps == [2.0]
    assert len(rig.sent("GET", "/slots")) == 2


async def test_a_long_rate_limit_fails_fast(rig: Rig) -> None:
    """A 429 resetting in 42 s is more than a caller can bear: RateLimited at once, no retries."""
    service = await consultation(rig)
    rig.fake.rate_limit_next(reset_seconds=42, path="/v2/slots")

    with pytest.raises(RateLimited) as limited:
        await rig.calendar.slots(service, TOMORROW)
    assert limited.value.retry_after == 42
    assert rig.naps == []
    assert len(rig.sent("GET", "/slots")) == 1


async def test_the_fake_enforces_cal_coms_per_minute_limit(rig: Rig) -> None:
    """Past the per-minute budget Cal.com blocks for 60 s: the client fails fast, and works after."""
    service = await consultation(rig)
    rig.fake.rate_limit = 2
    for hour in (1, 2):
        window = Window(TOMORROW.start + timedelta(hours=hour), TOMORROW.end)
        await rig.calendar.slots(service, window)
    with pytest.raises(RateLimited) as limited:
        await rig.calendar.slots(service, Window(TOMORROW.start + timedelta(hours=3), TOMORROW.end))
    assert limited.value.retry_after == 60
    assert rig.naps == []
    rig.clock.advance(timedelta(seconds=61))
    assert await rig.calendar.slots(service, Window(TOMORROW.start + timedelta(hours=4), TOMORROW.end))


async def test_a_refused_api_key_is_unauthorized(rig: Rig) -> None:
    """A wrong key is reported as Unauthorized, not as a missing service."""
    client = httpx.AsyncClient(base_url=DEFAULT_API_URL, transport=httpx.MockTransport(rig.fake))
    async with client:
        calendar = CalcomCalendar(client, api_key="cal_live_wrong", clock=rig.clock)
        with pytest.raises(Unauthorized) as refused:
            await calendar.services()
    assert refused.value.context["calcom_message"] == "ApiAuthStrategy - api key - Your api key is not valid"


# -- every error envelope ----------------------------------------------------------------------

EXPECTED_ERRORS: dict[str, type[BookingError]] = {
    "slot_taken": SlotTaken,
    "slot_taken_without_details": SlotTaken,
    "team_slot_taken": SlotTaken,
    "too_soon": TooSoon,
    "in_the_past": TooSoon,
    "validation": InvalidRequest,
    "reserved_by_someone_else_400": SlotTaken,
    "reserved_by_someone_else_409": SlotTaken,
    "booking_conflict_race": SlotTaken,
    "error_with_code_no_users": SlotTaken,
    "error_with_code_out_of_bounds": TooSoon,
    "prisma_conflict": SlotTaken,
    "prisma_not_found": NotFound,
    "prisma_internal": CalendarUnavailable,
    "internal": CalendarUnavailable,
    "bad_gateway_html": CalendarUnavailable,
    "cancel_reason_required": InvalidRequest,
    "already_cancelled": InvalidRequest,
    "booking_not_found": NotFound,
    "cancel_not_found": NotFound,
    "event_type_not_found": NotFound,
    "reschedule_cancelled": NotFound,
    "reschedule_already_moved": NotFound,
    "reservation_already_booked": SlotTaken,
    "reservation_already_reserved": SlotTaken,
    "legacy_route": InvalidRequest,
    "invalid_time_range": InvalidRequest,
    "invalid_api_key": Unauthorized,
    "expired_api_key": Unauthorized,
    "list_without_auth": Unauthorized,
    "rate_limited": RateLimited,
}
RECORDED_ERRORS: dict[str, Any] = load_fixture("errors.json")


def test_every_recorded_error_has_an_expected_mapping() -> None:
    """No recorded envelope is left untested."""
    assert set(RECORDED_ERRORS) == set(EXPECTED_ERRORS)


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
async def test_every_error_envelope_maps_to_a_typed_error(rig: Rig, name: str) -> None:
    """Each recorded Cal.com error body becomes the typed error the conversation layer expects."""
    recorded = RECORDED_ERRORS[name]
    await rig.calendar.services()
    rig.fake.respond_next(
        recorded["status"], recorded.get("body"), text=recorded.get("text"), headers=recorded["headers"], n=3
    )

    with pytest.raises(BookingError) as raised:
        await rig.calendar.get("bFJeNb2uX8ANpT3JL5EfXw")

    assert type(raised.value) is EXPECTED_ERRORS[name]
    assert raised.value.context["status"] == recorded["status"]
    if "body" in recorded:
        body = recorded["body"]
        message = body["error"]["message"] if "error" in body else body["message"]
        assert raised.value.context["calcom_message"] == message


async def test_the_exact_already_has_booking_text_comes_from_a_real_double_booking(rig: Rig) -> None:
    """Booking a taken time through the fake yields Cal.com's exact 400 text as SlotTaken."""
    slot = await slot_at(rig, 11)
    await rig.calendar.create(request_for(slot), None)
    with pytest.raises(SlotTaken) as taken:
        await rig.calendar.create(request_for(slot, attempt="call-8-attempt-1"), None)
    assert taken.value.context["status"] == 400
    assert taken.value.context["calcom_message"] == (
        "User either already has booking at this time or is not available"
    )


async def test_booking_inside_the_minimum_notice_is_too_soon(rig: Rig) -> None:
    """An event type with 2 h notice refuses 11:00 today at 10:07."""
    rig.fake.event_types[456].minimum_notice_minutes = 120
    slot = Slot(
        "consultation", datetime(2026, 3, 10, 11, tzinfo=ZONE), datetime(2026, 3, 10, 11, 30, tzinfo=ZONE)
    )
    with pytest.raises(TooSoon):
        await rig.calendar.create(request_for(slot), None)


# -- caching -----------------------------------------------------------------------------------


async def test_slot_lists_are_cached_briefly_and_dropped_after_our_writes(rig: Rig) -> None:
    """Repeated questions cost one request; a booking or the passing of 20 s refreshes the list."""
    service = await consultation(rig)
    first = await rig.calendar.slots(service, TOMORROW)
    await rig.calendar.slots(service, TOMORROW)
    assert len(rig.sent("GET", "/slots")) == 1

    booking = await rig.calendar.create(request_for(first[0]), None)
    assert first[0] not in await rig.calendar.slots(service, TOMORROW)
    assert len(rig.sent("GET", "/slots")) == 2

    await rig.calendar.cancel(booking.uid, reason="changed plans")
    assert first[0] in await rig.calendar.slots(service, TOMORROW)
    assert len(rig.sent("GET", "/slots")) == 3

    rig.clock.advance(timedelta(seconds=21))
    await rig.calendar.slots(service, TOMORROW)
    assert len(rig.sent("GET", "/slots")) == 4
    assert len(rig.sent("GET", "/event-types")) == 1


async def test_services_and_time_zone_come_from_cal_com(rig: Rig) -> None:
    """Visible event types become services (slug, title, length, confirmation); the zone comes from /me."""
    services = await rig.calendar.services()
    assert services == [
        Service("consultation", "Consultation", minutes(30), event_type_id=456),
        Service(
            "new-patient", "New patient visit", minutes(60), requires_confirmation=True, event_type_id=457
        ),
    ]
    assert (await rig.calendar.time_zone()).key == "America/New_York"
    assert all(r.headers["Authorization"] == f"Bearer {rig.fake.api_key}" for r in rig.fake.requests)


async def test_slots_parse_the_real_object_shape_and_drop_days_outside_the_window(rig: Rig) -> None:
    """The recorded body's objects are read; its out-of-range day and past times are not offered."""
    service = await consultation(rig)
    rig.fake.respond_next(200, load_fixture("slots.json"), path="/v2/slots")
    today = Window(datetime(2026, 3, 10, tzinfo=ZONE), datetime(2026, 3, 11, tzinfo=ZONE))

    offered = await rig.calendar.slots(service, today)

    assert [s.start for s in offered] == [datetime(2026, 3, 10, 10, 30, tzinfo=ZONE)]
    assert offered[0].end == datetime(2026, 3, 10, 11, tzinfo=ZONE)


async def test_slots_also_read_the_bare_string_shape_the_openapi_file_documents(rig: Rig) -> None:
    """Should Cal.com ever match its own schema (strings, not objects), the offer still works."""
    service = await consultation(rig)
    body = {"status": "success", "data": {"2026-03-11": ["2026-03-11T09:00:00.000-04:00"]}}
    rig.fake.respond_next(200, body, path="/v2/slots")

    offered = await rig.calendar.slots(service, TOMORROW)

    assert [s.start for s in offered] == [datetime(2026, 3, 11, 9, tzinfo=ZONE)]


async def test_find_refilters_when_cal_com_ignores_its_time_filters(rig: Rig) -> None:
    """Cal.com has ignored afterStart/beforeEnd before; other days' bookings must not leak in."""
    rig.fake.ignore_list_time_filters = True
    booking = await rig.calendar.create(request_for(await slot_at(rig, 11)), None)
    later = Slot(
        "consultation", datetime(2026, 3, 13, 9, tzinfo=ZONE), datetime(2026, 3, 13, 9, 30, tzinfo=ZONE)
    )
    await rig.calendar.create(request_for(later, attempt="call-9-attempt-1"), None)

    found = await rig.calendar.find(email=JANE.email, window=TOMORROW)

    assert [b.uid for b in found] == [booking.uid]


# -- reschedule and cancel ---------------------------------------------------------------------


async def test_reschedule_gives_a_new_uid_and_marks_the_old_booking(rig: Rig) -> None:
    """Cal.com moves by creating a new booking; the old one is cancelled and points to it."""
    booking = await rig.calendar.create(request_for(await slot_at(rig, 11)), None)

    moved = await rig.calendar.reschedule(
        booking.uid, datetime(2026, 3, 11, 14, tzinfo=ZONE), reason="traffic"
    )

    assert moved.uid != booking.uid
    assert moved.rescheduled_from == booking.uid
    assert moved.attempt_id == booking.attempt_id
    assert (await rig.calendar.get(booking.uid)).status == "cancelled"
    assert rig.fake.bookings[booking.uid].rescheduled_to == moved.uid
    assert rig.body("POST", f"/bookings/{booking.uid}/reschedule")["reschedulingReason"] == "traffic"


async def test_cancel_always_sends_a_reason(rig: Rig) -> None:
    """Cal.com refuses a host cancellation without a reason, so a default one is sent."""
    first = await rig.calendar.create(request_for(await slot_at(rig, 11)), None)
    second = await rig.calendar.create(request_for(await slot_at(rig, 14), attempt="call-7-attempt-2"), None)

    await rig.calendar.cancel(first.uid, reason="feeling better")
    cancelled = await rig.calendar.cancel(second.uid)

    assert rig.body("POST", f"/bookings/{first.uid}/cancel") == {"cancellationReason": "feeling better"}
    assert rig.body("POST", f"/bookings/{second.uid}/cancel") == {"cancellationReason": DEFAULT_CANCEL_REASON}
    assert cancelled.status == "cancelled"


async def test_cancelling_twice_is_fine_but_a_moved_booking_is_not_cancelled(rig: Rig) -> None:
    """A repeat cancel returns the cancelled booking; cancelling the old half of a move is NotFound."""
    booking = await rig.calendar.create(request_for(await slot_at(rig, 11)), None)
    await rig.calendar.cancel(booking.uid, reason="first")
    assert (await rig.calendar.cancel(booking.uid, reason="again")).status == "cancelled"

    other = await rig.calendar.create(request_for(await slot_at(rig, 12), attempt="call-7-attempt-2"), None)
    moved = await rig.calendar.reschedule(other.uid, datetime(2026, 3, 11, 15, tzinfo=ZONE))
    with pytest.raises(NotFound) as gone:
        await rig.calendar.cancel(other.uid, reason="wrong one")
    assert gone.value.context["rescheduled_to"] == moved.uid


async def test_connect_builds_and_closes_its_own_client(rig: Rig) -> None:
    """The factory used by the wiring needs only the key, the clock and CALCOM_API_URL."""
    calendar = CalcomCalendar.connect(
        rig.fake.api_key, clock=rig.clock, transport=httpx.MockTransport(rig.fake)
    )
    async with calendar:
        assert [s.key for s in await calendar.services()] == ["consultation", "new-patient"]


# -- requests against the OpenAPI schemas ------------------------------------------------------

SPEC: dict[str, Any] = load_fixture("openapi-v2.receptionist-subset.json")
KNOWN_SPEC_DEFECTS = {("CreateBookingInput_2024_08_13", "reservedSlotUid")}
"""contract.md "Known OpenAPI defects": honoured by the server, missing from the schema."""


def request_problems(request: httpx.Request) -> list[str]:
    """Where `request` disagrees with its operation in the spec (params, headers, body schema)."""
    method = request.method.lower()
    for template, item in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if method in item and re.match(pattern, request.url.path):
            operation = item[method]
            break
    else:
        return [f"{request.method} {request.url.path} is not in the spec"]
    problems = []
    parameters = operation.get("parameters", [])
    declared = {p["name"] for p in parameters if p["in"] == "query"}
    for parameter in parameters:
        where = request.headers if parameter["in"] == "header" else request.url.params
        if (
            parameter["in"] in ("header", "query")
            and parameter.get("required")
            and parameter["name"] not in where
        ):
            problems.append(f"missing required {parameter['in']} {parameter['name']}")
    problems += [f"undeclared query parameter {name}" for name in request.url.params if name not in declared]
    if "requestBody" in operation:
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        problems += schema_problems(json.loads(request.content), schema, "body")
    elif request.content:
        problems.append("a body where the spec has none")
    return problems


def schema_problems(value: Any, schema: dict[str, Any], where: str, name: str | None = None) -> list[str]:
    """A small JSON-schema check: $ref, allOf, oneOf, types, enums, required and undeclared fields."""
    if "$ref" in schema:
        ref = schema["$ref"].rsplit("/", 1)[-1]
        return schema_problems(value, SPEC["components"]["schemas"][ref], where, ref)
    if "allOf" in schema:
        return [p for part in schema["allOf"] for p in schema_problems(value, part, where, name)]
    if "oneOf" in schema:
        outcomes = [schema_problems(value, option, where) for option in schema["oneOf"]]
        return min(outcomes, key=len)
    kinds: dict[str, type | tuple[type, ...]] = {
        "string": str,
        "boolean": bool,
        "object": dict,
        "array": list,
        "number": (int, float),
    }
    kind = schema.get("type")
    if kind in kinds and (
        not isinstance(value, kinds[kind]) or (kind == "number" and isinstance(value, bool))
    ):
        return [f"{where} should be a {kind}, got {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}={value!r} is not one of {schema['enum']}"]
    problems = []
    if isinstance(value, dict) and "properties" in schema:
        problems += [f"{where}.{key} is required" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in schema["properties"]:
                problems += schema_problems(item, schema["properties"][key], f"{where}.{key}")
            elif (name, key) not in KNOWN_SPEC_DEFECTS:
                problems.append(f"{where}.{key} is not in {name} (Cal.com would silently drop it)")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += schema_problems(item, schema["items"], f"{where}[{index}]")
    return problems


async def test_every_request_matches_the_openapi_schemas(rig: Rig) -> None:
    """A whole call's worth of requests (list, hold, book, find, move, cancel, release) fits the spec."""
    slot = await slot_at(rig, 11)
    hold = await rig.calendar.hold(slot)
    booking = await rig.calendar.create(request_for(slot), hold)
    await rig.calendar.get(booking.uid)
    await rig.calendar.find(email=JANE.email, window=TOMORROW)
    moved = await rig.calendar.reschedule(booking.uid, datetime(2026, 3, 11, 14, tzinfo=ZONE), reason="later")
    await rig.calendar.cancel(moved.uid)
    await rig.calendar.release(await rig.calendar.hold(await slot_at(rig, 9)))

    assert len(rig.fake.requests) >= 10
    assert {str(r.url): request_problems(r) for r in rig.fake.requests if request_problems(r)} == {}


def test_the_schema_check_catches_fields_cal_com_would_drop() -> None:
    """The checker is not vacuous: a v1-style field or a missing attendee time zone is reported."""
    request = httpx.Request(
        "POST",
        f"{DEFAULT_API_URL}/bookings",
        headers={"cal-api-version": "2024-08-13"},
        json={"start": "2026-03-11T15:00:00Z", "end": "2026-03-11T15:30:00Z", "attendee": {"name": "Jane"}},
    )
    problems = request_problems(request)
    assert "body.end is not in CreateBookingInput_2024_08_13 (Cal.com would silently drop it)" in problems
    assert "body.attendee.timeZone is required" in problems


# -- the fake's bodies keep the recorded shapes ------------------------------------------------


FREE_FORM = frozenset({"metadata", "bookingFieldsResponses", "confirmationPolicy"})
"""Objects whose keys vary (free-form maps, a union of policies): only shared keys are compared."""
DATE_KEY = re.compile(r"\d{4}-\d{2}-\d{2}")


def shape_problems(actual: Any, recorded: Any, where: str = "") -> list[str]:
    """Keys and JSON types of `recorded` that `actual` lacks (extra keys in `actual` are fine)."""
    if isinstance(recorded, dict):
        if not isinstance(actual, dict):
            return [f"{where} is not an object"]
        if recorded and all(DATE_KEY.fullmatch(key) for key in recorded):
            sample = next(iter(recorded.values()))
            return [p for day in actual.values() for p in shape_problems(day, sample, f"{where}[day]")]
        free = where.rsplit(".", 1)[-1] in FREE_FORM
        problems = [] if free else [f"{where}.{key} missing" for key in recorded if key not in actual]
        for key in recorded.keys() & actual.keys():
            problems += shape_problems(actual[key], recorded[key], f"{where}.{key}")
        return problems
    if isinstance(recorded, list) and recorded:
        if not isinstance(actual, list):
            return [f"{where} is not a list"]
        return [p for item in actual for p in shape_problems(item, recorded[0], f"{where}[]")]
    if recorded is None or actual is None or type(recorded) is type(actual):
        return []
    return [f"{where}: {type(actual).__name__} where Cal.com sends {type(recorded).__name__}"]


async def test_the_fake_answers_in_the_recorded_shapes(rig: Rig) -> None:
    """Booking, list, reservations, event types, /me, schedule and slots match recorded v2 bodies."""
    slot = await slot_at(rig, 11)
    await rig.calendar.create(request_for(slot), await rig.calendar.hold(slot))
    hold = await rig.calendar.hold(await slot_at(rig, 12))

    client = httpx.AsyncClient(base_url=DEFAULT_API_URL, transport=httpx.MockTransport(rig.fake))
    async with client:
        headers = {"Authorization": f"Bearer {rig.fake.api_key}"}
        pairs = {
            "booking.json": await client.post(
                "/bookings",
                headers={**headers, "cal-api-version": "2024-08-13"},
                json={
                    "start": "2026-03-11T19:00:00Z",
                    "eventTypeId": 456,
                    "attendee": {
                        "name": "Jane Doe",
                        "email": "jane@example.com",
                        "timeZone": "America/New_York",
                        "phoneNumber": "+15551234567",
                    },
                },
            ),
            "bookings-list.json": await client.get(
                "/bookings",
                headers={**headers, "cal-api-version": "2024-08-13"},
                params={"status": "upcoming"},
            ),
            "reservation.json": await client.post(
                "/slots/reservations",
                headers={"cal-api-version": "2024-09-04"},
                json={"eventTypeId": 456, "slotStart": "2026-03-11T20:00:00Z"},
            ),
            "event-types.json": await client.get(
                "/event-types", headers={**headers, "cal-api-version": "2024-06-14"}
            ),
            "me.json": await client.get("/me", headers=headers),
            "schedule-default.json": await client.get(
                "/schedules/default", headers={**headers, "cal-api-version": "2024-06-11"}
            ),
            "slots-range.json": await client.get(
                "/slots",
                headers={"cal-api-version": "2024-09-04"},
                params={
                    "start": "2026-03-11",
                    "end": "2026-03-11",
                    "eventTypeId": "456",
                    "timeZone": "America/New_York",
                    "format": "range",
                },
            ),
            "slots-empty.json": await client.get(
                "/slots",
                headers={"cal-api-version": "2024-09-04"},
                params={"start": "2026-03-14", "end": "2026-03-15", "eventTypeId": "456"},
            ),
            "reservation-released.json": await client.delete(
                f"/slots/reservations/{hold.uid}", headers={"cal-api-version": "2024-09-04"}
            ),
        }
    assert pairs["slots-empty.json"].json() == load_fixture("slots-empty.json")
    assert pairs["reservation-released.json"].json() == load_fixture("reservation-released.json")
    for fixture, response in pairs.items():
        assert response.is_success, (fixture, response.text)
        assert shape_problems(response.json(), load_fixture(fixture)) == [], fixture
    slot_start = pairs["slots-range.json"].json()["data"]["2026-03-11"][0]["start"]
    assert re.fullmatch(r"2026-03-11T09:00:00\.000-04:00", slot_start)
