"""One phone call's booking state, and the rules the language model cannot talk its way around.

The model sees tools; the tools call a `CallSession`. Everything that decides whether the calendar
is written lives here, in code:

* **Confirm gate.** A proposal (book, move, cancel) is written only when the runtime has spoken its
  read-back to the caller and the caller's next turn says yes (`booking.consent`). The model cannot
  forge a caller turn: turns arrive through `caller_said`, fed by the transport.
* **Nothing invented.** Slots, bookings and proposals are referred to by opaque ids this call
  issued; anything else is refused before the calendar is touched. Booking uids never leave here.
* **Exactly once.** A confirmed proposal keeps its result; confirming again returns it, and a
  confirm that is interrupted does not interrupt the write (it is shielded and finishes).
* **Identity.** A caller sees and changes only bookings verified as theirs: the caller ID matches
  the booking's phone and the name matches, or a code texted to the booking's phone is read back.
* **Holds.** The chosen slot is held while the caller decides, and given back when they decline,
  pick another time, or hang up.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from booking.calendar import Calendar
from booking.clock import Clock
from booking.consent import Consent, read_consent
from booking.contact import parse_spoken_email, parse_spoken_phone
from booking.dates import resolve
from booking.errors import (
    AlreadyBooked,
    BookingError,
    InvalidContact,
    LimitReached,
    NotConfirmedByCaller,
    NoTimeUnderstood,
    ProposalClosed,
    UnknownBooking,
    UnknownProposal,
    UnknownService,
    UnknownSlot,
    VerificationFailed,
    VerificationRequired,
)
from booking.models import Attendee, Booking, BookingRequest, Hold, Service, Slot, Window
from booking.services import match_service

ProposalKind = Literal["book", "reschedule", "cancel"]
OutcomeStatus = Literal["booked", "pending", "rescheduled", "cancelled"]

_LOOK_AHEAD = timedelta(days=14)
_FIND_HORIZON = timedelta(days=366)
_NAME = re.compile(r"^[^\W\d_][\w .'-]{0,99}$", re.UNICODE)


class CodeSender(Protocol):
    """Sends a one-time code to a phone number (a text message, in production)."""

    async def send_code(self, phone: str, code: str) -> None: ...


@dataclass(frozen=True, slots=True)
class CallerId:
    """What the phone network says about the caller.

    `attestation` is Twilio's STIR/SHAKEN verdict (`StirVerstat`) when the call carried one. A
    number with a failed or partial attestation is not trusted to identify anyone; a number without
    one (most forwarded calls) is.
    """

    number: str | None
    attestation: str | None = None

    @property
    def trusted(self) -> bool:
        if self.number is None:
            return False
        return self.attestation is None or self.attestation.startswith("TN-Validation-Passed-A")


@dataclass(frozen=True, slots=True)
class Offer:
    slot_id: str
    slot: Slot


@dataclass(frozen=True, slots=True)
class Availability:
    """The options found for a request. `nearest` means none fitted and these are the closest after."""

    service: Service
    offers: tuple[Offer, ...]
    nearest: bool


@dataclass(frozen=True, slots=True)
class BookingView:
    """A booking as this caller may see it: a per-call handle instead of the calendar's uid."""

    handle: str
    booking: Booking
    service: Service | None


@dataclass(frozen=True, slots=True)
class Proposal:
    """What will be written if the caller says yes; its read-back is spoken by the runtime."""

    id: str
    kind: ProposalKind
    service: Service | None
    slot: Slot | None = None
    attendee: Attendee | None = None
    notes: str | None = None
    existing: BookingView | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    status: OutcomeStatus
    view: BookingView


@dataclass(frozen=True, slots=True)
class Found:
    """The answer to "do I have a booking": verified bookings, or that a code was texted."""

    bookings: tuple[BookingView, ...] = ()
    code_sent_to: str | None = None


@dataclass(slots=True)
class _ProposalState:
    proposal: Proposal
    hold: Hold | None
    created_at: datetime
    spoken_at_turn: int | None = None
    closed: str | None = None
    write: asyncio.Task[Outcome] | None = None


@dataclass(slots=True)
class _PendingCode:
    code: str
    phone: str
    uids: frozenset[str]
    expires_at: datetime
    tries_left: int = 3


@dataclass(slots=True)
class _Limits:
    new_bookings: int = 2
    changes: int = 2
    codes: int = 2


@dataclass(slots=True)
class _Counters:
    new_bookings: int = 0
    changes: int = 0
    codes: int = 0


def _token(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def _same_name(said: str, on_booking: str) -> bool:
    """The caller's name matches the booking's: the same full name, or the same first or last name."""
    said_parts: list[str] = re.findall(r"[a-z]+", said.lower())
    booked_parts: list[str] = re.findall(r"[a-z]+", on_booking.lower())
    if not said_parts or not booked_parts:
        return False
    if said_parts == booked_parts:
        return True
    if len(said_parts) == 1:
        return said_parts[0] in (booked_parts[0], booked_parts[-1])
    return said_parts[0] == booked_parts[0] and said_parts[-1] == booked_parts[-1]


class CallSession:
    """The booking side of one call. Create one per call; `close()` when the call ends."""

    def __init__(
        self,
        *,
        calendar: Calendar,
        clock: Clock,
        time_zone: ZoneInfo,
        services: Sequence[Service],
        caller: CallerId,
        codes: CodeSender | None = None,
        max_offers: int = 3,
        proposal_ttl: timedelta = timedelta(minutes=10),
        code_ttl: timedelta = timedelta(minutes=5),
    ) -> None:
        self._calendar = calendar
        self._clock = clock
        self._zone = time_zone
        self._services = tuple(services)
        self._caller = caller
        self._codes = codes
        self._max_offers = max_offers
        self._proposal_ttl = proposal_ttl
        self._code_ttl = code_ttl
        self._turns: list[str] = []
        self._offers: dict[str, Slot] = {}
        self._proposals: dict[str, _ProposalState] = {}
        self._views: dict[str, BookingView] = {}
        self._pending_code: _PendingCode | None = None
        self._service: Service | None = None
        self._limits = _Limits()
        self._used = _Counters()

    # -- what the transport tells us -------------------------------------------------------------

    @property
    def caller(self) -> CallerId:
        return self._caller

    @property
    def time_zone(self) -> ZoneInfo:
        return self._zone

    def now(self) -> datetime:
        return self._clock.now().astimezone(self._zone)

    async def caller_said(self, text: str) -> Consent:
        """Record one finished caller turn. A clear "no" after a read-back gives that slot back."""
        self._turns.append(text)
        consent = read_consent(text)
        if consent == "no":
            for state in list(self._proposals.values()):
                if state.closed is None and state.write is None and state.spoken_at_turn is not None:
                    await self._close(state, "declined")
        return consent

    def read_back_spoken(self, proposal_id: str) -> None:
        """The runtime finished speaking this proposal's read-back; the caller's next turn answers it."""
        state = self._state(proposal_id)
        state.spoken_at_turn = len(self._turns)

    async def close(self) -> None:
        """The call ended: give back every slot still held."""
        for state in list(self._proposals.values()):
            if state.closed is None and state.write is None:
                await self._close(state, "call ended")

    # -- tools -----------------------------------------------------------------------------------

    def choose_service(self, words: str | None) -> Service:
        """The service the caller means; the one already chosen in this call, or the only one."""
        if words:
            service = match_service(words, self._services)
            if service is None:
                raise UnknownService(
                    "the words fit no single service", said=words, options=[s.name for s in self._services]
                )
            self._service = service
            return service
        if self._service is not None:
            return self._service
        if len(self._services) == 1:
            return self._services[0]
        raise UnknownService("no service named yet", options=[s.name for s in self._services])

    async def check_availability(self, when: str, service_words: str | None = None) -> Availability:
        """Free times for what the caller asked, a few and spread out; the nearest ones if none fit."""
        service = self.choose_service(service_words)
        now = self.now()
        windows = resolve(when, now)
        if not windows:
            raise NoTimeUnderstood("no time in the words", said=when)
        per_window = max(1, -(-self._max_offers // len(windows)))
        chosen: list[Slot] = []
        for window in windows:
            chosen.extend(await self._options_in(service, window, per_window))
        nearest = not chosen
        if nearest:
            after = max(max(w.end for w in windows), now)
            found = await self._calendar.slots(service, Window(after, after + _LOOK_AHEAD))
            chosen = _first_days(found, self._max_offers, self._zone)
        chosen = sorted(set(chosen), key=lambda s: s.start)[: max(self._max_offers, len(windows))]
        offers = tuple(Offer(self._offer_id(slot), slot) for slot in chosen)
        return Availability(service=service, offers=offers, nearest=nearest)

    async def propose_booking(
        self, slot_id: str, name: str, email: str, phone: str | None = None, notes: str | None = None
    ) -> Proposal:
        """Hold the slot and prepare the booking; nothing is written until the caller says yes."""
        slot = self._offer(slot_id)
        if self._used.new_bookings >= self._limits.new_bookings:
            raise LimitReached("new bookings per call", limit=self._limits.new_bookings)
        attendee = Attendee(
            name=_clean_name(name),
            email=_clean_email(email),
            phone=_clean_phone(phone) if phone else self._caller.number,
            time_zone=self._zone.key,
        )
        await self._refuse_duplicate(attendee, slot.service_key)
        await self._release_open("book")
        hold = await self._calendar.hold(slot)
        proposal = Proposal(
            id=_token("PR"),
            kind="book",
            service=self._service_of(slot.service_key),
            slot=slot,
            attendee=attendee,
            notes=(notes or None),
        )
        self._proposals[proposal.id] = _ProposalState(proposal, hold, self._clock.now())
        return proposal

    async def find_bookings(self, name: str | None = None, email: str | None = None) -> Found:
        """The caller's own upcoming bookings, or a code texted to prove they are theirs."""
        now = self._clock.now()
        window = Window(now, now + _FIND_HORIZON)
        found: dict[str, Booking] = {}
        if self._caller.number:
            for booking in await self._calendar.find(phone=self._caller.number, window=window):
                found[booking.uid] = booking
        if email:
            for booking in await self._calendar.find(email=_clean_email(email), window=window):
                found[booking.uid] = booking
        live = [b for b in found.values() if b.status in ("accepted", "pending") and b.start > now]
        if name:
            named = [b for b in live if _same_name(name, b.attendee.name)]
            live = named or live
        verified_uids = {v.booking.uid for v in self._views.values()}
        verified = [
            b
            for b in live
            if b.uid in verified_uids
            or (
                self._caller.trusted
                and b.attendee.phone == self._caller.number
                and name is not None
                and _same_name(name, b.attendee.name)
            )
        ]
        if verified:
            return self._found(verified)
        if not live:
            return Found()
        if (
            name is None
            and self._caller.trusted
            and any(b.attendee.phone == self._caller.number for b in live)
        ):
            raise VerificationRequired("the name on the booking is needed", need="name")
        return Found(code_sent_to=await self._send_code(live))

    async def verify_code(self, code: str) -> Found:
        """Check the code the caller read back; on success their bookings become visible."""
        pending = self._pending_code
        if pending is None:
            raise VerificationFailed("no code was sent in this call")
        if self._clock.now() >= pending.expires_at or pending.tries_left <= 0:
            self._pending_code = None
            raise VerificationFailed("the code expired", reason="expired")
        digits = re.sub(r"\D", "", code)
        if not hmac.compare_digest(digits, pending.code):
            pending.tries_left -= 1
            raise VerificationFailed(
                "the code does not match", reason="mismatch", tries_left=pending.tries_left
            )
        self._pending_code = None
        return self._found([await self._calendar.get(uid) for uid in sorted(pending.uids)])

    async def propose_reschedule(self, booking_id: str, slot_id: str) -> Proposal:
        """Prepare moving a verified booking to an offered slot (held meanwhile)."""
        view = self._verified(booking_id)
        slot = self._offer(slot_id)
        self._check_change_limit()
        await self._release_open("reschedule")
        hold = await self._calendar.hold(slot)
        proposal = Proposal(
            id=_token("PR"), kind="reschedule", service=view.service, slot=slot, existing=view
        )
        self._proposals[proposal.id] = _ProposalState(proposal, hold, self._clock.now())
        return proposal

    async def propose_cancellation(self, booking_id: str, reason: str | None = None) -> Proposal:
        """Prepare cancelling a verified booking."""
        view = self._verified(booking_id)
        self._check_change_limit()
        proposal = Proposal(
            id=_token("PR"), kind="cancel", service=view.service, existing=view, notes=reason or None
        )
        self._proposals[proposal.id] = _ProposalState(proposal, None, self._clock.now())
        return proposal

    async def confirm(self, proposal_id: str) -> Outcome:
        """Write the proposal, once, if and only if the caller said yes to its read-back."""
        state = self._state(proposal_id)
        if state.write is not None:
            return await asyncio.shield(state.write)
        if state.closed is not None:
            raise ProposalClosed("the proposal is no longer open", reason=state.closed)
        self._check_consent(state)
        if self._clock.now() - state.created_at > self._proposal_ttl:
            await self._close(state, "expired")
            raise ProposalClosed("the proposal expired", reason="expired")
        state.write = asyncio.ensure_future(self._write(state))
        try:
            return await asyncio.shield(state.write)
        except BookingError as error:
            if error.retryable:
                state.write = None
            raise

    # -- internals -------------------------------------------------------------------------------

    def _check_consent(self, state: _ProposalState) -> None:
        if state.spoken_at_turn is None:
            raise NotConfirmedByCaller("the read-back has not been spoken to the caller")
        answers = self._turns[state.spoken_at_turn :]
        if not answers:
            raise NotConfirmedByCaller("the caller has not answered the read-back")
        consent = read_consent(answers[-1])
        if consent != "yes":
            raise NotConfirmedByCaller("the caller did not say yes", consent=consent)

    async def _write(self, state: _ProposalState) -> Outcome:
        proposal = state.proposal
        if proposal.kind == "book":
            assert proposal.slot is not None and proposal.attendee is not None
            request = BookingRequest(
                slot=proposal.slot, attendee=proposal.attendee, attempt_id=proposal.id, notes=proposal.notes
            )
            booking = await self._calendar.create(request, state.hold)
            self._used.new_bookings += 1
            status: OutcomeStatus = "pending" if booking.status == "pending" else "booked"
            return Outcome(status, self._view(booking))
        existing = proposal.existing
        assert existing is not None
        if proposal.kind == "reschedule":
            assert proposal.slot is not None
            if state.hold is not None:
                await self._calendar.release(state.hold)
            moved = await self._calendar.reschedule(
                existing.booking.uid, proposal.slot.start, "Rescheduled by phone"
            )
            self._used.changes += 1
            return Outcome("rescheduled", self._replace_view(existing.handle, moved))
        cancelled = await self._calendar.cancel(existing.booking.uid, proposal.notes or "Cancelled by phone")
        self._used.changes += 1
        return Outcome("cancelled", self._replace_view(existing.handle, cancelled))

    async def _options_in(self, service: Service, window: Window, limit: int) -> list[Slot]:
        if window.is_instant:
            day_start = window.start.replace(hour=0, minute=0, second=0, microsecond=0)
            day = Window(day_start, day_start + timedelta(days=1))
            found = await self._calendar.slots(service, day)
            exact = [s for s in found if s.start == window.start]
            if exact:
                return exact
            return sorted(
                sorted(found, key=lambda s: abs(s.start - window.start))[:limit], key=lambda s: s.start
            )
        found = await self._calendar.slots(service, window)
        return _spread(found, limit)

    def _offer_id(self, slot: Slot) -> str:
        for slot_id, known in self._offers.items():
            if known == slot:
                return slot_id
        slot_id = _token("ST")
        self._offers[slot_id] = slot
        return slot_id

    def _offer(self, slot_id: str) -> Slot:
        slot = self._offers.get(slot_id)
        if slot is None:
            raise UnknownSlot("this call never offered that slot", slot_id=slot_id)
        return slot

    def _service_of(self, key: str) -> Service | None:
        return next((s for s in self._services if s.key == key), None)

    def _found(self, bookings: list[Booking]) -> Found:
        """Verified bookings become visible; a later "move it" means the service they are for."""
        views = tuple(self._view(b) for b in sorted(bookings, key=lambda b: b.start))
        if self._service is None:
            self._service = next((v.service for v in views if v.service is not None), None)
        return Found(bookings=views)

    def _view(self, booking: Booking) -> BookingView:
        for view in self._views.values():
            if view.booking.uid == booking.uid:
                return self._replace_view(view.handle, booking)
        view = BookingView(_token("BK"), booking, self._service_of(booking.service_key))
        self._views[view.handle] = view
        return view

    def _replace_view(self, handle: str, booking: Booking) -> BookingView:
        view = (
            replace(self._views[handle], booking=booking)
            if handle in self._views
            else BookingView(handle, booking, self._service_of(booking.service_key))
        )
        self._views[handle] = view
        return view

    def _verified(self, handle: str) -> BookingView:
        view = self._views.get(handle)
        if view is None:
            raise UnknownBooking("this call has no verified booking with that id", booking_id=handle)
        if view.booking.status not in ("accepted", "pending"):
            raise UnknownBooking("that booking is no longer active", booking_id=handle)
        return view

    def _state(self, proposal_id: str) -> _ProposalState:
        state = self._proposals.get(proposal_id)
        if state is None:
            raise UnknownProposal("this call made no such proposal", proposal_id=proposal_id)
        return state

    async def _refuse_duplicate(self, attendee: Attendee, service_key: str) -> None:
        """No second upcoming booking of the same service for the same person by mistake.

        The refusal names no time or detail: the caller may not (yet) be who the email says.
        """
        now = self._clock.now()
        found = await self._calendar.find(email=attendee.email, window=Window(now, now + _FIND_HORIZON))
        if any(
            b.service_key == service_key and b.status in ("accepted", "pending") and b.start > now
            for b in found
        ):
            raise AlreadyBooked(
                "an upcoming booking of this service exists for this email", service=service_key
            )

    def _check_change_limit(self) -> None:
        if self._used.changes >= self._limits.changes:
            raise LimitReached("changes per call", limit=self._limits.changes)

    async def _release_open(self, kind: ProposalKind) -> None:
        for state in list(self._proposals.values()):
            if state.proposal.kind == kind and state.closed is None and state.write is None:
                await self._close(state, "replaced")

    async def _close(self, state: _ProposalState, why: str) -> None:
        state.closed = why
        if state.hold is not None:
            hold, state.hold = state.hold, None
            # If the calendar is unreachable the hold lapses by itself at `hold.expires_at`;
            # the caller's "no" (or hang-up) must not fail because of it.
            with contextlib.suppress(BookingError):
                await self._calendar.release(hold)

    async def _send_code(self, bookings: list[Booking]) -> str:
        phones = [b.attendee.phone for b in bookings if b.attendee.phone]
        if not phones or self._codes is None:
            raise VerificationFailed("no phone on the booking to send a code to", reason="no_phone")
        if self._used.codes >= self._limits.codes:
            raise LimitReached("codes per call", limit=self._limits.codes)
        phone = phones[0]
        code = f"{secrets.randbelow(1_000_000):06d}"
        uids = frozenset(b.uid for b in bookings if b.attendee.phone == phone)
        await self._codes.send_code(phone, code)
        self._used.codes += 1
        self._pending_code = _PendingCode(code, phone, uids, self._clock.now() + self._code_ttl)
        return phone


def _clean_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not _NAME.match(cleaned):
        raise InvalidContact("that is not a name", field="name")
    return cleaned


def _clean_email(email: str) -> str:
    try:
        return parse_spoken_email(email)
    except BookingError as error:
        raise InvalidContact("that email address does not work", field="email") from error


def _clean_phone(phone: str) -> str:
    try:
        return parse_spoken_phone(phone)
    except BookingError as error:
        raise InvalidContact("that phone number does not work", field="phone") from error


def _spread(slots: list[Slot], limit: int) -> list[Slot]:
    """At most `limit` slots, earliest first and spread across the window, not bunched at its start."""
    if len(slots) <= limit:
        return slots
    if limit == 1:
        return slots[:1]
    step = (len(slots) - 1) / (limit - 1)
    return [slots[round(i * step)] for i in range(limit)]


def _first_days(slots: list[Slot], limit: int, zone: ZoneInfo) -> list[Slot]:
    """The nearest options: from the first day with room, then the next, spread within each day."""
    by_day: dict[object, list[Slot]] = {}
    for slot in slots:
        by_day.setdefault(slot.start.astimezone(zone).date(), []).append(slot)
    days = list(by_day.values())[:2]
    if not days:
        return []
    first = _spread(days[0], limit - 1 if len(days) > 1 else limit)
    rest = _spread(days[1], limit - len(first)) if len(days) > 1 and len(first) < limit else []
    return first + rest


__all__ = [
    "Availability",
    "BookingView",
    "CallSession",
    "CallerId",
    "CodeSender",
    "Found",
    "Offer",
    "Outcome",
    "Proposal",
]
