"""Turn any Cal.com v2 error response into one of our typed `BookingError`s. Strictly private.

Cal.com answers errors in at least six body shapes (contract.md 1.4): the Nest envelope with a
nested `error.message`, validation errors under `error.details.errors`, `ErrorWithCode` with a
duplicated top-level `message`, the bare `{"statusCode", "message"}` of library errors, Prisma
codes, and plain text from a gateway. `error.code` is a class name, not an enum, so the decision is
made on HTTP status plus message text, as the contract's client rule says.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

import httpx

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

__all__ = ["ErrorBody", "from_response", "parse_error_body", "rate_limit_reset"]

SLOT_TAKEN_TEXTS = (
    "already has booking at this time or is not available",
    "someone else reserved this booking time slot",
    "already reserved by another user",
    "can't reserve a slot if the event is already booked",
    "booking_conflict_error",
    "no_available_users_found",
    "no more seats left",
)
TOO_SOON_TEXTS = (
    'can\'t be booked at the "start" time provided',
    "attempting to book a meeting in the past",
    "booking_time_out_of_bounds",
)
GONE_TEXTS = ("because it has been cancelled",)
_RESCHEDULED_TO = re.compile(r"rescheduled already to booking with uid=([\w-]+)")


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """What we could read from an error response, whatever its shape."""

    message: str
    code: str | None = None
    details: Any = None


def parse_error_body(response: httpx.Response) -> ErrorBody:
    """`error.message` if present, else the top-level `message`, else the raw text or reason phrase."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return ErrorBody(message=response.text.strip()[:300] or response.reason_phrase)
    if not isinstance(body, dict):
        return ErrorBody(message=str(body)[:300])
    error = body.get("error")
    if isinstance(error, dict):
        return ErrorBody(
            message=_text(error.get("message")) or _text(body.get("message")) or response.reason_phrase,
            code=_text(error.get("code")),
            details=error.get("details"),
        )
    return ErrorBody(
        message=_text(body.get("message")) or _text(error) or response.reason_phrase,
        code=_text(body.get("code")),
    )


def _text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "; ".join(value)
    return None


def rate_limit_reset(response: httpx.Response) -> float | None:
    """Seconds until the limit resets: the longest `X-RateLimit-Reset-<name>`, else `Retry-After`.

    Cal.com's Reset headers count seconds remaining (not a Unix time) and it sends no `Retry-After`.
    """
    waits = [
        seconds
        for name, value in response.headers.items()
        if name.lower().startswith("x-ratelimit-reset") or name.lower() == "retry-after"
        if (seconds := _seconds(value)) is not None
    ]
    return max(waits) if waits else None


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def from_response(response: httpx.Response, **context: Any) -> BookingError:
    """The typed error for a non-2xx response; `context` is added to what the response says."""
    body = parse_error_body(response)
    status = response.status_code
    lowered = body.message.lower()
    context = {
        "status": status,
        "calcom_message": body.message,
        "calcom_code": body.code,
        "method": response.request.method,
        "path": response.request.url.path,
        **context,
    }
    if body.details is not None and status == 400 and body.message == "Bad Request Exception":
        context["calcom_details"] = body.details

    if status == 429:
        return RateLimited("Cal.com rate limit reached", retry_after=rate_limit_reset(response), **context)
    if status in (401, 403):
        return Unauthorized("Cal.com refused the credentials", **context)
    if status >= 500:
        return CalendarUnavailable("Cal.com failed", outcome="unknown", **context)
    if any(text in lowered for text in SLOT_TAKEN_TEXTS) or status == 409:
        return SlotTaken("that time is no longer free", **context)
    if any(text in lowered for text in TOO_SOON_TEXTS):
        return TooSoon("that time is too soon or out of the booking window", **context)
    if any(text in lowered for text in GONE_TEXTS):
        if match := _RESCHEDULED_TO.search(body.message):
            context["rescheduled_to"] = match.group(1)
        return NotFound("that booking was cancelled or moved", **context)
    if status == 404 and not body.message.startswith("Cannot "):
        return NotFound("Cal.com has no such record", **context)
    return InvalidRequest("Cal.com rejected the request", **context)
