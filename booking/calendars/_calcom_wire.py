"""Pydantic models of the Cal.com API v2 bodies we send and read. Strictly private to `calcom.py`.

Attribute names are the wire names, camelCase and all, so each model reads like the JSON it checks
(see ../shared/calcom/contract.md, section 2). Unknown fields are ignored on the way in; on the way
out only the fields the v2 schemas declare are sent, because Cal.com's validation pipe silently drops
anything else (the one exception, `reservedSlotUid`, is honoured although the OpenAPI schema omits it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator

__all__ = [
    "CancelBody",
    "CreateBookingAttendee",
    "CreateBookingBody",
    "Envelope",
    "ListEnvelope",
    "Me",
    "RescheduleBody",
    "ReserveSlotBody",
    "SlotItem",
    "WireBooking",
    "WireEventType",
    "WireReservation",
    "utc_z",
]

T = TypeVar("T")


def utc_z(moment: datetime) -> str:
    """`2026-03-10T14:00:00Z`: the only start format Cal.com reads as the instant we mean."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _Out(BaseModel):
    """A request body; dumped with `exclude_none=True`, so unset optional fields are not sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Envelope(_In, Generic[T]):
    """`{"status": "success", "data": ...}`, the v2 success shape."""

    status: Literal["success"]
    data: T


class Pagination(_In):
    hasNextPage: bool = False
    totalItems: int | None = None


class ListEnvelope(_In, Generic[T]):
    status: Literal["success"]
    data: list[T]
    pagination: Pagination = Pagination()


class SlotItem(_In):
    """One offered start (`{"start": ...}`; `end` and seat counts are ignored, the service sets the length).

    The OpenAPI file says items are bare strings while the server sends objects; both are read.
    """

    start: AwareDatetime

    @model_validator(mode="before")
    @classmethod
    def _bare_string(cls, raw: object) -> object:
        return {"start": raw} if isinstance(raw, str) else raw


class WireReservation(_In):
    eventTypeId: int
    slotStart: AwareDatetime
    slotEnd: AwareDatetime
    reservationUid: str
    reservationUntil: AwareDatetime


class WireEventType(_In):
    id: int
    slug: str
    title: str
    lengthInMinutes: int
    hidden: bool = False
    confirmationPolicy: dict[str, Any] | None = None

    @property
    def requires_confirmation(self) -> bool:
        """`{"disabled": true}` (or nothing) means off; `always` and `time` policies can leave it pending."""
        policy = self.confirmationPolicy or {}
        return not policy.get("disabled", False) and policy.get("type") is not None


class Me(_In):
    timeZone: str
    name: str | None = None
    username: str | None = None


class WireAttendee(_In):
    name: str
    email: str = ""
    timeZone: str
    phoneNumber: str | None = None


class WireEventTypeRef(_In):
    id: int
    slug: str | None = None


class WireBooking(_In):
    uid: str
    status: Literal["accepted", "pending", "cancelled", "rejected", "awaiting_host"]
    start: AwareDatetime
    end: AwareDatetime
    eventTypeId: int | None = None
    eventType: WireEventTypeRef | None = None
    attendees: list[WireAttendee] = []
    metadata: dict[str, Any] = {}
    bookingFieldsResponses: dict[str, Any] = {}
    rescheduledFromUid: str | None = None
    rescheduledToUid: str | None = None

    @field_validator("metadata", "bookingFieldsResponses", mode="before")
    @classmethod
    def _null_is_empty(cls, value: object) -> object:
        return {} if value is None else value

    @property
    def event_type_id(self) -> int | None:
        return self.eventType.id if self.eventType is not None else self.eventTypeId


class ReserveSlotBody(_Out):
    eventTypeId: int
    slotStart: str
    reservationDuration: int | None = None


class CreateBookingAttendee(_Out):
    name: str
    timeZone: str
    email: str | None = None
    phoneNumber: str | None = None


class CreateBookingBody(_Out):
    start: str
    eventTypeId: int
    attendee: CreateBookingAttendee
    metadata: dict[str, str]
    bookingFieldsResponses: dict[str, str] | None = None
    reservedSlotUid: str | None = None


class RescheduleBody(_Out):
    start: str
    reschedulingReason: str | None = None


class CancelBody(_Out):
    cancellationReason: str
