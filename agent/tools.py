"""The tools the language model sees, and the only door from the model to the calendar.

Each tool's arguments are a pydantic model whose JSON schema is the tool schema the model gets.
A call is validated, handed to the call's `CallSession` (where the booking rules live), and its
answer rendered into words by `booking.phrasing` and `prompts/phrases.toml` — the model never
words a time, a read-back or a confirmation itself. Every refusal or failure comes back as
`{"error": code, "spoken": sentence}`, so the model can always say something and recover.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from loguru import logger
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.businesses import BusinessProfile
from agent.prompting import Phrases
from booking.contact import speak_email, speak_phone
from booking.errors import BookingError
from booking.models import Booking, Service
from booking.phrasing import speak_slot, speak_slots
from booking.session import Availability, BookingView, CallSession, Found, Outcome, Proposal

Action = Literal["transfer", "hang_up"]

# Refusals the tool layer itself gives (the rest are `booking.errors` codes).
TOOL_ERROR_CODES = ("invalid_arguments", "unknown_tool", "internal_error", "no_transfer_number")


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CheckAvailability(_Args):
    """Find free appointment times. Use the caller's own words for when; times come back ready to say."""

    when: str = Field(max_length=300, description="When the caller wants to come, in their words.")
    service: str | None = Field(None, max_length=200, description="The service in the caller's words.")


class ProposeBooking(_Args):
    """Hold an offered time and read the booking details back to the caller for a yes or no."""

    slot_id: str = Field(max_length=40, description="A slot_id returned by check_availability.")
    name: str = Field(max_length=100, description="The caller's full name.")
    email: str = Field(max_length=254, description="The caller's email address as they said or spelled it.")
    phone: str | None = Field(None, max_length=40, description="A phone number, if not the one calling.")
    notes: str | None = Field(None, max_length=500, description="Anything the office should know.")


class FindBooking(_Args):
    """Look up the caller's own upcoming appointments (never anyone else's)."""

    name: str | None = Field(None, max_length=100, description="The name on the appointment.")
    email: str | None = Field(None, max_length=254, description="The email on the appointment.")


class VerifyCode(_Args):
    """Check the code the caller reads back after find_booking texted it to them."""

    code: str = Field(max_length=40, description="The digits the caller read out.")


class ProposeReschedule(_Args):
    """Read back moving one of the caller's appointments to an offered time, for a yes or no."""

    booking_id: str = Field(max_length=40, description="A booking_id from find_booking or verify_code.")
    slot_id: str = Field(max_length=40, description="A slot_id returned by check_availability.")


class ProposeCancellation(_Args):
    """Read back cancelling one of the caller's appointments, for a yes or no."""

    booking_id: str = Field(max_length=40, description="A booking_id from find_booking or verify_code.")
    reason: str | None = Field(None, max_length=300, description="Why, if the caller said.")


class ConfirmProposal(_Args):
    """Carry out a proposal after the caller clearly said yes to its read-back."""

    proposal_id: str = Field(max_length=40, description="The proposal_id the caller said yes to.")


class TransferToHuman(_Args):
    """Put the caller through to a person at the business."""

    reason: str = Field(max_length=300, description="Why the caller needs a person.")


class EndCall(_Args):
    """Hang up after saying goodbye, when the conversation is finished."""


TOOLS: dict[str, type[_Args]] = {
    "check_availability": CheckAvailability,
    "propose_booking": ProposeBooking,
    "find_booking": FindBooking,
    "verify_code": VerifyCode,
    "propose_reschedule": ProposeReschedule,
    "propose_cancellation": ProposeCancellation,
    "confirm_proposal": ConfirmProposal,
    "transfer_to_human": TransferToHuman,
    "end_call": EndCall,
}


def tool_schemas() -> list[dict[str, Any]]:
    """The tools in OpenAI's function-calling format, straight from the argument models.

    Each caller gets its own copy of schemas built once: pydantic takes ~4 ms to generate them,
    and every call's pipeline asks at its start.
    """
    return copy.deepcopy(_built_schemas())


@functools.cache
def _built_schemas() -> list[dict[str, Any]]:
    schemas = []
    for name, model in TOOLS.items():
        parameters = model.model_json_schema()
        parameters.pop("title", None)
        parameters.pop("description", None)
        for prop in parameters.get("properties", {}).values():
            prop.pop("title", None)
        schemas.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": (model.__doc__ or "").strip(),
                    "parameters": parameters,
                },
            }
        )
    return schemas


@dataclass(frozen=True)
class ToolResult:
    """What a tool call produced.

    `payload` goes back to the model. `speak` is said to the caller verbatim by the runtime (a
    read-back, a transfer notice, a goodbye); when it is a read-back, `proposal_id` names the
    proposal whose read-back it is. `action` asks the transport to transfer or hang up.
    """

    payload: dict[str, Any]
    speak: str | None = None
    proposal_id: str | None = None
    action: Action | None = None

    @property
    def failed(self) -> bool:
        return "error" in self.payload


OutcomeHook = Callable[[Outcome], Awaitable[None]]


class ReceptionistTools:
    """Runs tool calls for one call against its `CallSession`, and words the answers.

    `on_outcome` hears of every booking written (texts, the local mirror); its failure is logged
    and never changes what the caller is told, because the calendar write already happened.
    """

    def __init__(
        self,
        session: CallSession,
        business: BusinessProfile,
        phrases: Phrases,
        on_outcome: OutcomeHook | None = None,
    ) -> None:
        self.session = session
        self._business = business
        self._phrases = phrases
        self._on_outcome = on_outcome
        self._handlers: dict[str, Callable[[Any], Coroutine[Any, Any, ToolResult]]] = {
            "check_availability": self._check_availability,
            "propose_booking": self._propose_booking,
            "find_booking": self._find_booking,
            "verify_code": self._verify_code,
            "propose_reschedule": self._propose_reschedule,
            "propose_cancellation": self._propose_cancellation,
            "confirm_proposal": self._confirm_proposal,
            "transfer_to_human": self._transfer,
            "end_call": self._end_call,
        }

    async def call(self, name: str, arguments: Mapping[str, Any] | str | None) -> ToolResult:
        """Validate and run one tool call; never raises for anything the model or calendar did."""
        model = TOOLS.get(name)
        if model is None:
            return self._error("unknown_tool", tool=name)
        try:
            raw = json.loads(arguments) if isinstance(arguments, str) else dict(arguments or {})
            args = model.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            logger.info("tool {} refused: invalid arguments", name)
            return self._error("invalid_arguments", detail=_first_error(exc))
        try:
            return await self._handlers[name](args)
        except BookingError as error:
            logger.info("tool {} refused: {}", name, error.code)
            return self._error(error.code, **dict(error.context))
        except Exception:
            logger.exception("tool {} failed", name)
            return self._error("internal_error")

    # -- handlers --------------------------------------------------------------------------------

    async def _check_availability(self, args: CheckAvailability) -> ToolResult:
        found: Availability = await self.session.check_availability(args.when, args.service)
        now = self.session.now()
        service = found.service.name
        slots = [
            {"slot_id": o.slot_id, "start": o.slot.start.isoformat(), "spoken": speak_slot(o.slot.start, now)}
            for o in found.offers
        ]
        if not found.offers:
            spoken = self._phrases.say("availability.none", service=service)
        else:
            times = speak_slots([o.slot.start for o in found.offers], now)
            key = "nearest" if found.nearest else ("one_offer" if len(found.offers) == 1 else "offers")
            spoken = self._phrases.say(f"availability.{key}", times=times, service=service)
        return ToolResult({"service": found.service.key, "slots": slots, "spoken": spoken})

    async def _propose_booking(self, args: ProposeBooking) -> ToolResult:
        proposal = await self.session.propose_booking(
            args.slot_id, args.name, args.email, args.phone, args.notes
        )
        return self._proposed(proposal)

    async def _find_booking(self, args: FindBooking) -> ToolResult:
        return self._found(await self.session.find_bookings(args.name, args.email), verified_now=False)

    async def _verify_code(self, args: VerifyCode) -> ToolResult:
        return self._found(await self.session.verify_code(args.code), verified_now=True)

    async def _propose_reschedule(self, args: ProposeReschedule) -> ToolResult:
        return self._proposed(await self.session.propose_reschedule(args.booking_id, args.slot_id))

    async def _propose_cancellation(self, args: ProposeCancellation) -> ToolResult:
        return self._proposed(await self.session.propose_cancellation(args.booking_id, args.reason))

    async def _confirm_proposal(self, args: ConfirmProposal) -> ToolResult:
        outcome: Outcome = await self.session.confirm(args.proposal_id)
        if self._on_outcome is not None:
            try:
                await self._on_outcome(outcome)
            except Exception:
                logger.exception("could not pass on a {} booking", outcome.status)
        booking = outcome.view.booking
        spoken = self._phrases.say(
            f"outcome.{outcome.status}",
            service=self._service_name(outcome.view.service, booking),
            when=speak_slot(booking.start, self.session.now()),
            name=booking.attendee.name,
        )
        return ToolResult({"status": outcome.status, "booking_id": outcome.view.handle, "spoken": spoken})

    async def _transfer(self, args: TransferToHuman) -> ToolResult:
        if self._business.transfer_number is None:
            return self._error("no_transfer_number")
        spoken = self._phrases.say("call.transfer", business_name=self._business.name)
        return ToolResult({"status": "transferring", "spoken": spoken}, speak=spoken, action="transfer")

    async def _end_call(self, args: EndCall) -> ToolResult:
        spoken = self._phrases.say("call.goodbye", business_name=self._business.name)
        return ToolResult({"status": "ending", "spoken": spoken}, speak=spoken, action="hang_up")

    # -- wording ---------------------------------------------------------------------------------

    def _proposed(self, proposal: Proposal) -> ToolResult:
        read_back = self._read_back(proposal)
        return ToolResult(
            {"proposal_id": proposal.id, "read_back": read_back}, speak=read_back, proposal_id=proposal.id
        )

    def _read_back(self, proposal: Proposal) -> str:
        now = self.session.now()
        if proposal.kind == "book":
            assert proposal.slot is not None and proposal.attendee is not None
            attendee = proposal.attendee
            values = {
                "service": self._service_name(proposal.service, None),
                "when": speak_slot(proposal.slot.start, now),
                "name": attendee.name,
                "email": speak_email(attendee.email),
            }
            if attendee.phone and attendee.phone != self.session.caller.number:
                return self._phrases.say(
                    "read_back.book_with_phone", phone=speak_phone(attendee.phone), **values
                )
            return self._phrases.say("read_back.book", **values)
        assert proposal.existing is not None
        existing = proposal.existing.booking
        service = self._service_name(proposal.existing.service, existing)
        if proposal.kind == "reschedule":
            assert proposal.slot is not None
            return self._phrases.say(
                "read_back.reschedule",
                service=service,
                old_when=speak_slot(existing.start, now),
                when=speak_slot(proposal.slot.start, now),
            )
        return self._phrases.say("read_back.cancel", service=service, when=speak_slot(existing.start, now))

    def _found(self, found: Found, *, verified_now: bool) -> ToolResult:
        if found.code_sent_to is not None:
            spoken = self._phrases.say("find.code_sent", last_digits=" ".join(found.code_sent_to[-2:]))
            return ToolResult({"verification": "code_sent", "spoken": spoken})
        now = self.session.now()
        bookings = [self._describe(view, now) for view in found.bookings]
        if not bookings:
            return ToolResult({"bookings": [], "spoken": self._phrases.say("find.none")})
        listing = _join([b["spoken"] for b in bookings])
        spoken = self._phrases.say("find.verified" if verified_now else "find.bookings", bookings=listing)
        return ToolResult({"bookings": bookings, "spoken": spoken})

    def _describe(self, view: BookingView, now: Any) -> dict[str, str]:
        booking = view.booking
        when = speak_slot(booking.start, now)
        service = self._service_name(view.service, booking)
        status = " (waiting for the office to confirm)" if booking.status == "pending" else ""
        return {
            "booking_id": view.handle,
            "start": booking.start.isoformat(),
            "spoken": f"{service} on {when}{status}",
        }

    def _service_name(self, service: Service | None, booking: Booking | None) -> str:
        if service is not None:
            return service.name
        return "appointment" if booking is None else booking.service_key.replace("-", " ")

    def _error(self, code: str, **context: Any) -> ToolResult:
        if code == "unknown_service" and "options" in context:
            context["options"] = _join(list(context["options"]), "or")
        if code == "no_transfer_number":
            spoken = self._phrases.say("call.no_transfer", business_name=self._business.name)
        elif code == "internal_error":
            spoken = self._phrases.say("call.service_trouble", business_name=self._business.name)
        else:
            spoken = self._phrases.error(code, **context)
        return ToolResult({"error": code, "spoken": spoken})


def _join(items: list[str], last: str = "and") -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)
