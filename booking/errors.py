"""Every way a booking operation can fail, as one exception tree with stable codes.

    BookingError                      code
    ├── SlotTaken                     slot_taken            someone else has that time now
    ├── NotFound                      not_found             no such booking, slot or hold
    ├── OutsideHours                  outside_hours         the business is closed then
    ├── TooSoon                       too_soon              inside the minimum notice (or in the past)
    ├── InvalidRequest                invalid_request       the calendar refused the request as malformed
    ├── Unauthorized                  unauthorized          the calendar credentials were refused
    ├── RateLimited                   rate_limited          the calendar asked us to slow down (retryable)
    ├── CalendarUnavailable           calendar_unavailable  timeouts, 5xx, network (retryable)
    └── Refusal                                             the conversation rules said no
        ├── UnknownService            unknown_service       the words fit no service (or two): ask
        ├── NoTimeUnderstood          no_time_understood    nothing in the words names a time
        ├── UnknownSlot               unknown_slot          a slot id this call never offered
        ├── UnknownBooking            unknown_booking       a booking handle this call never issued
        ├── UnknownProposal           unknown_proposal      a proposal id this call never made
        ├── ProposalClosed            proposal_closed       declined, replaced or expired: propose again
        ├── NotConfirmedByCaller      not_confirmed_by_caller  no yes from the caller after the read-back
        ├── VerificationRequired      verification_required the caller must prove the booking is theirs
        ├── VerificationFailed        verification_failed   wrong or expired code, or no way to verify
        ├── InvalidContact            invalid_contact       the name, email or phone cannot be used
        ├── AlreadyBooked             already_booked        this person already has this service ahead
        └── LimitReached              limit_reached         too many bookings or changes in one call

The conversation layer turns `code` into one spoken sentence (prompts/); `context` carries what a
log line or a retry needs (slot, uid, HTTP status, the calendar's own message). Nothing here is
worded for a caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class BookingError(Exception):
    """Base of every booking failure. `code` is stable: prompts, fixtures and tools key on it."""

    code: ClassVar[str] = "booking_error"
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: Mapping[str, Any] = context

    def __str__(self) -> str:
        if not self.context:
            return f"[{self.code}] {self.message}"
        details = ", ".join(f"{k}={v!r}" for k, v in self.context.items())
        return f"[{self.code}] {self.message} ({details})"


class SlotTaken(BookingError):
    code = "slot_taken"


class NotFound(BookingError):
    code = "not_found"


class OutsideHours(BookingError):
    code = "outside_hours"


class TooSoon(BookingError):
    code = "too_soon"


class InvalidRequest(BookingError):
    code = "invalid_request"


class Unauthorized(BookingError):
    code = "unauthorized"


class RateLimited(BookingError):
    code = "rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **context: Any) -> None:
        super().__init__(message, retry_after=retry_after, **context)
        self.retry_after = retry_after


class CalendarUnavailable(BookingError):
    code = "calendar_unavailable"
    retryable = True


class Refusal(BookingError):
    """A rule of the conversation refused the request; the model can recover by asking the caller."""

    code = "refusal"


class UnknownService(Refusal):
    code = "unknown_service"


class NoTimeUnderstood(Refusal):
    code = "no_time_understood"


class UnknownSlot(Refusal):
    code = "unknown_slot"


class UnknownBooking(Refusal):
    code = "unknown_booking"


class UnknownProposal(Refusal):
    code = "unknown_proposal"


class ProposalClosed(Refusal):
    code = "proposal_closed"


class NotConfirmedByCaller(Refusal):
    code = "not_confirmed_by_caller"


class VerificationRequired(Refusal):
    code = "verification_required"


class VerificationFailed(Refusal):
    code = "verification_failed"


class InvalidContact(Refusal):
    code = "invalid_contact"


class AlreadyBooked(Refusal):
    code = "already_booked"


class LimitReached(Refusal):
    code = "limit_reached"


ALL_ERRORS: tuple[type[BookingError], ...] = (
    SlotTaken,
    NotFound,
    OutsideHours,
    TooSoon,
    InvalidRequest,
    Unauthorized,
    RateLimited,
    CalendarUnavailable,
    UnknownService,
    NoTimeUnderstood,
    UnknownSlot,
    UnknownBooking,
    UnknownProposal,
    ProposalClosed,
    NotConfirmedByCaller,
    VerificationRequired,
    VerificationFailed,
    InvalidContact,
    AlreadyBooked,
    LimitReached,
)
