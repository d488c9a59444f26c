"""`POST /webhooks/calcom`: bookings made or changed outside the phone line reach the runtime here.

Facts this follows (../shared/calcom/contract.md 2.13, ../shared/reliability-notes.md 2):

* **Signature first.** `X-Cal-Signature-256` is the lowercase hex HMAC-SHA256 of the exact raw
  body with `CALCOM_WEBHOOK_SECRET`. It is checked on the raw bytes, in constant time, before any
  parsing; a missing header, a wrong one and the literal `no-secret-provided` (a webhook created
  without a secret) are all refused with 401. The body is capped.
* **Stored, then answered.** Cal.com does not retry a failed delivery, so the event is written to
  `webhook_events` (unique per source, trigger and uid) before the 2xx. A duplicate delivery is
  answered 200 and not processed again. Processing (the mirror and the outbox, local writes only)
  follows in the same request; if it fails or the process dies, the event stays unprocessed and
  `process_stored` picks it up on the next maintenance pass.
* **Order does not matter.** Each event is applied to the mirror as of its `createdAt`, so a late
  BOOKING_CREATED cannot undo a BOOKING_CANCELLED, and a cancelled uid never comes back.
* **Both MEETING_ENDED shapes.** The newer builder wraps the booking in `payload`; the legacy cron
  sends the booking row at the top level with no `createdAt`. Without `payload`, the top level is
  the booking.

`register_webhook` creates (or updates) the Cal.com subscription: `python -m agent webhooks register`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from loguru import logger
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from agent.businesses import BusinessProfile, Directory
from agent.calls import CallStore, webhook_events
from agent.mirror import MirroredBooking
from agent.reminders import Notifier
from agent.sms import normalise_phone
from booking.clock import Clock
from booking.models import BookingStatus

__all__ = [
    "SIGNATURE_HEADER",
    "TRIGGERS",
    "CalcomEvents",
    "RegisteredWebhook",
    "WebhookRegistrationFailed",
    "calcom_signature_ok",
    "calcom_webhook_router",
    "register_webhook",
]

SIGNATURE_HEADER: Final = "X-Cal-Signature-256"
NO_SECRET: Final = "no-secret-provided"
SOURCE: Final = "calcom"
MAX_BODY_BYTES: Final = 256 * 1024
TRIGGERS: Final = (
    "BOOKING_CREATED",
    "BOOKING_REQUESTED",
    "BOOKING_RESCHEDULED",
    "BOOKING_CANCELLED",
    "BOOKING_REJECTED",
    "MEETING_ENDED",
)
"""What `webhooks register` subscribes to."""

_STATUS_BY_TRIGGER: Final[dict[str, BookingStatus]] = {
    "BOOKING_CREATED": "accepted",
    "BOOKING_REQUESTED": "pending",
    "BOOKING_CANCELLED": "cancelled",
    "BOOKING_REJECTED": "rejected",
}


def calcom_signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """True only for the hex HMAC-SHA256 of exactly `body` under `secret` (case-insensitive hex)."""
    if not header or header.strip() == NO_SECRET:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest().encode("ascii")
    return hmac.compare_digest(expected, header.strip().lower().encode("utf-8", "replace"))


# -- the wire shapes (pydantic at the edge) --------------------------------------------------


class CalcomModel(BaseModel):
    """A Cal.com body as read: unknown fields ignored (Cal.com adds them freely), never mutated."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class CalcomAttendee(CalcomModel):
    name: str = ""
    email: str | None = None
    phoneNumber: str | None = None


class CalcomEventTypeRef(CalcomModel):
    id: int | None = None


class CalcomBookingPayload(CalcomModel):
    """The booking inside a delivery; every field but `uid` may be missing in some shape."""

    uid: str
    startTime: AwareDatetime | None = None
    endTime: AwareDatetime | None = None
    eventTypeId: int | None = None
    eventType: CalcomEventTypeRef | None = None
    eventTitle: str | None = None
    type: str | None = None
    title: str | None = None
    status: str | None = None
    attendees: list[CalcomAttendee] = []
    responses: dict[str, Any] = {}
    smsReminderNumber: str | None = None
    rescheduleUid: str | None = None
    rescheduleStartTime: AwareDatetime | None = None
    rescheduleEndTime: AwareDatetime | None = None
    requestReschedule: bool = False

    @field_validator("attendees", "responses", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object, info: Any) -> object:
        if value is None:
            return [] if info.field_name == "attendees" else {}
        return value

    @field_validator("eventType", mode="before")
    @classmethod
    def _event_type_object(cls, value: object) -> object:
        return value if isinstance(value, dict) else None

    @property
    def event_type_id(self) -> int | None:
        if self.eventTypeId is not None:
            return self.eventTypeId
        return self.eventType.id if self.eventType is not None else None

    def answer(self, key: str) -> str | None:
        """A booking-form answer; webhook payloads wrap it as `{label, value}`, booking rows do not."""
        value = self.responses.get(key)
        if isinstance(value, dict):
            value = value.get("value")
        return value if isinstance(value, str) and value else None


class CalcomDelivery(CalcomModel):
    """`{"triggerEvent", "createdAt", "payload"}`, or the legacy MEETING_ENDED with the booking on top."""

    triggerEvent: str = Field(min_length=1)
    createdAt: AwareDatetime | None = None
    payload: dict[str, Any] | None = None

    def booking(self, document: dict[str, Any]) -> CalcomBookingPayload:
        return CalcomBookingPayload.model_validate(self.payload if self.payload is not None else document)


# -- processing ------------------------------------------------------------------------------

Outcome = Literal["processed", "duplicate", "ignored"]


@dataclass(frozen=True, slots=True)
class Received:
    trigger: str
    uid: str
    outcome: Outcome


class CalcomEvents:
    """Stores Cal.com deliveries once and applies them to the mirror and the outbox."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        calls: CallStore,
        directory: Directory,
        notifier: Notifier,
        clock: Clock,
    ) -> None:
        self._engine = engine
        self._calls = calls
        self._directory = directory
        self._notifier = notifier
        self._clock = clock

    async def receive(self, document: dict[str, Any]) -> Received:
        """Store a verified, parsed delivery, then process it; `ValueError` for a shape we cannot key."""
        try:
            delivery = CalcomDelivery.model_validate(document)
            uid = _uid(delivery, document)
        except ValidationError as error:
            raise ValueError(
                f"not a Cal.com webhook delivery: {error.errors(include_url=False)[:2]}"
            ) from error
        trigger = delivery.triggerEvent
        received_at = self._clock.now()
        stored = await self._calls.record_webhook(
            source=SOURCE, trigger=trigger, uid=uid, payload=document, received_at=received_at
        )
        if not stored:
            logger.bind(trigger=trigger, uid=uid).info("Cal.com webhook repeated; already stored")
            return Received(trigger, uid, "duplicate")
        try:
            handled = await self._process(trigger, document, received_at)
        except Exception:
            logger.bind(trigger=trigger, uid=uid).exception(
                "Cal.com webhook stored; processing will be retried"
            )
            return Received(trigger, uid, "processed")
        await self._mark_processed(trigger, uid)
        return Received(trigger, uid, "processed" if handled else "ignored")

    async def process_stored(self, grace: timedelta = timedelta(minutes=1), limit: int = 100) -> int:
        """Process events stored but never processed (the process died, or processing failed)."""
        cutoff = self._clock.now() - grace
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    select(
                        webhook_events.c.trigger,
                        webhook_events.c.uid,
                        webhook_events.c.payload,
                        webhook_events.c.received_at,
                    )
                    .where(
                        webhook_events.c.source == SOURCE,
                        webhook_events.c.processed_at.is_(None),
                        webhook_events.c.received_at <= cutoff,
                    )
                    .order_by(webhook_events.c.received_at, webhook_events.c.id)
                    .limit(limit)
                )
            ).all()
        done = 0
        for row in rows:
            try:
                await self._process(row.trigger, row.payload, row.received_at)
            except Exception:
                logger.bind(trigger=row.trigger, uid=row.uid).exception("stored Cal.com webhook failed again")
                continue
            await self._mark_processed(row.trigger, row.uid)
            done += 1
        return done

    async def _mark_processed(self, trigger: str, uid: str) -> None:
        async with self._engine.begin() as connection:
            await connection.execute(
                update(webhook_events)
                .where(
                    webhook_events.c.source == SOURCE,
                    webhook_events.c.trigger == trigger,
                    webhook_events.c.uid == uid,
                )
                .values(processed_at=self._clock.now())
            )

    async def _process(self, trigger: str, document: dict[str, Any], received_at: datetime) -> bool:
        if trigger not in (*_STATUS_BY_TRIGGER, "BOOKING_RESCHEDULED", "MEETING_ENDED"):
            logger.bind(trigger=trigger).info("Cal.com webhook trigger not used; ignored")
            return False
        try:
            delivery = CalcomDelivery.model_validate(document)
            payload = delivery.booking(document)
        except ValidationError as error:
            problems = error.errors(include_url=False)[:2]
            logger.bind(trigger=trigger).warning(
                "Cal.com webhook without a usable booking; ignored: {}", problems
            )
            return False
        log = logger.bind(trigger=trigger, uid=payload.uid)
        business = self._business_for(payload.event_type_id)
        if business is None:
            log.warning("Cal.com webhook for an event type no business offers; ignored")
            return False
        if payload.startTime is None or payload.endTime is None:
            log.warning("Cal.com webhook without start or end time; ignored")
            return False
        as_of = delivery.createdAt or (payload.endTime if trigger == "MEETING_ENDED" else received_at)
        booking = self._snapshot(business, payload, _status(trigger, payload))
        if trigger == "MEETING_ENDED":
            if (payload.status or "ACCEPTED").upper() == "ACCEPTED":
                await self._notifier.meeting_ended(business, booking, payload.endTime)
            return True
        if payload.rescheduleUid:
            await self._moved(business, payload, booking, as_of)
        await self._notifier.booking_changed(
            business, booking, as_of, reschedule_requested=payload.requestReschedule
        )
        log.info("Cal.com webhook applied")
        return True

    async def _moved(
        self, business: BusinessProfile, payload: CalcomBookingPayload, new: MirroredBooking, as_of: datetime
    ) -> None:
        """The old booking of a reschedule: cancelled, pointing at the new uid (no cancellation text)."""
        old_uid = payload.rescheduleUid
        assert old_uid is not None
        known = await self._notifier.mirror.get(old_uid)
        start = known.start if known else payload.rescheduleStartTime
        end = known.end if known else payload.rescheduleEndTime
        if start is None or end is None:
            return
        old = MirroredBooking(
            uid=old_uid,
            business_id=business.id,
            status="cancelled",
            start=start,
            end=end,
            service=new.service,
            attendee_name=new.attendee_name,
            attendee_phone=new.attendee_phone,
            attendee_email=new.attendee_email,
            rescheduled_to=new.uid,
        )
        await self._notifier.booking_changed(business, old, as_of)

    def _business_for(self, event_type_id: int | None) -> BusinessProfile | None:
        for business in self._directory:
            if any(
                s.event_type_id == event_type_id for s in business.services if s.event_type_id is not None
            ):
                return business
        return self._directory.default if len(self._directory) == 1 else None

    @staticmethod
    def _snapshot(
        business: BusinessProfile, payload: CalcomBookingPayload, status: BookingStatus
    ) -> MirroredBooking:
        assert payload.startTime is not None and payload.endTime is not None
        attendee = payload.attendees[0] if payload.attendees else CalcomAttendee()
        service = next(
            (s.name for s in business.services if s.event_type_id == payload.event_type_id),
            payload.eventTitle or payload.type or payload.title or "appointment",
        )
        phone = attendee.phoneNumber or payload.answer("attendeePhoneNumber") or payload.smsReminderNumber
        return MirroredBooking(
            uid=payload.uid,
            business_id=business.id,
            status=status,
            start=payload.startTime,
            end=payload.endTime,
            service=service,
            attendee_name=attendee.name or payload.answer("name") or "",
            attendee_phone=normalise_phone(phone),
            attendee_email=attendee.email or payload.answer("email"),
            rescheduled_from=payload.rescheduleUid,
        )


def _status(trigger: str, payload: CalcomBookingPayload) -> BookingStatus:
    if trigger in _STATUS_BY_TRIGGER:
        return _STATUS_BY_TRIGGER[trigger]
    return "pending" if (payload.status or "").upper() == "PENDING" else "accepted"


def _uid(delivery: CalcomDelivery, document: dict[str, Any]) -> str:
    """The booking uid the event is about; a body hash for the rare trigger that names none."""
    source = delivery.payload if delivery.payload is not None else document
    for key in ("uid", "bookingUid"):
        if isinstance(value := source.get(key), str) and value:
            return value[:128]
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()[:64]


# -- the endpoint ----------------------------------------------------------------------------


def calcom_webhook_router(
    *, secret: str, events: CalcomEvents, path: str = "/webhooks/calcom", max_body_bytes: int = MAX_BODY_BYTES
) -> APIRouter:
    """`POST /webhooks/calcom`; mount only when `CALCOM_WEBHOOK_SECRET` is set."""
    if not secret:
        raise ValueError("the Cal.com webhook endpoint needs CALCOM_WEBHOOK_SECRET")
    router = APIRouter()

    @router.post(path, include_in_schema=False)
    async def calcom_webhook(request: Request) -> JSONResponse:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_body_bytes:
            return JSONResponse({"error": "body too large"}, status_code=413)
        body = await request.body()
        if len(body) > max_body_bytes:
            return JSONResponse({"error": "body too large"}, status_code=413)
        if not calcom_signature_ok(secret, body, request.headers.get(SIGNATURE_HEADER)):
            logger.warning("Cal.com webhook refused: missing or wrong {}", SIGNATURE_HEADER)
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        try:
            document = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return JSONResponse({"error": "body is not JSON"}, status_code=400)
        if not isinstance(document, dict):
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400)
        try:
            received = await events.receive(document)
        except ValueError as error:
            logger.warning("Cal.com webhook refused: {}", error)
            return JSONResponse({"error": "not a Cal.com webhook delivery"}, status_code=400)
        return JSONResponse({"received": True, "outcome": received.outcome})

    return router


# -- registration ----------------------------------------------------------------------------


class WebhookRegistrationFailed(Exception):
    """Cal.com did not create or update the subscription; the message says what it answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class RegisteredWebhook:
    id: int
    subscriber_url: str
    triggers: tuple[str, ...]
    created: bool


async def register_webhook(
    client: httpx.AsyncClient,
    *,
    api_key: str,
    subscriber_url: str,
    secret: str,
    triggers: Sequence[str] = TRIGGERS,
) -> RegisteredWebhook:
    """Subscribe `subscriber_url` to `triggers` with `secret`; an existing subscription to the same
    URL is updated instead of duplicated. `client` carries the Cal.com API base URL."""
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    body = {"subscriberUrl": subscriber_url, "triggers": list(triggers), "active": True, "secret": secret}
    listing = await _webhook_call(client.get("/webhooks", params={"take": "250"}, headers=headers))
    existing = next(
        (
            w
            for w in listing.get("data") or []
            if isinstance(w, dict) and w.get("subscriberUrl") == subscriber_url
        ),
        None,
    )
    if existing is not None:
        answer = await _webhook_call(client.patch(f"/webhooks/{existing['id']}", json=body, headers=headers))
    else:
        answer = await _webhook_call(
            client.post("/webhooks", json={**body, "version": "2021-10-20"}, headers=headers)
        )
    data = answer.get("data") or {}
    webhook_id: Any = data.get("id", existing["id"] if existing else 0)
    return RegisteredWebhook(
        id=int(webhook_id),
        subscriber_url=str(data.get("subscriberUrl", subscriber_url)),
        triggers=tuple(data.get("triggers", triggers)),
        created=existing is None,
    )


async def _webhook_call(pending: Any) -> dict[str, Any]:
    try:
        response: httpx.Response = await pending
    except httpx.TransportError as error:
        raise WebhookRegistrationFailed(f"Cal.com could not be reached: {error!r}") from error
    try:
        document = response.json()
    except ValueError:
        document = None
    if not response.is_success or not isinstance(document, dict):
        problem = document.get("error") if isinstance(document, dict) else None
        message = problem.get("message") if isinstance(problem, dict) else None
        if message is None and isinstance(document, dict):
            message = document.get("message")
        raise WebhookRegistrationFailed(
            f"Cal.com answered {response.status_code} to {response.request.method} "
            f"{response.request.url.path}: {message or response.reason_phrase}",
            status=response.status_code,
        )
    return document
