"""The booking rules of a call hold in code, whatever the model asks for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from booking.errors import (
    AlreadyBooked,
    LimitReached,
    NotConfirmedByCaller,
    NoTimeUnderstood,
    ProposalClosed,
    SlotTaken,
    UnknownBooking,
    UnknownProposal,
    UnknownService,
    UnknownSlot,
    VerificationFailed,
    VerificationRequired,
)
from booking.models import Window
from booking.session import CallSession, Proposal
from tests.support import CALLER, NOW, STRANGER, Practice, practice


@pytest.fixture
async def office(tmp_path: Path) -> AsyncIterator[Practice]:
    async with practice(tmp_path) as p:
        yield p


async def all_bookings(office: Practice) -> list[object]:
    window = Window(NOW, NOW + timedelta(days=365))
    found = await office.calendar.find(email="jane@example.com", window=window)
    return [b for b in found if b.status in ("accepted", "pending")]


async def propose_tuesday_cleaning(session: CallSession) -> Proposal:
    found = await session.check_availability("tuesday at 10", "a cleaning")
    return await session.propose_booking(found.offers[0].slot_id, "Jane Doe", "jane@example.com")


async def book_for_jane(office: Practice) -> None:
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    session.read_back_spoken(proposal.id)
    await session.caller_said("yes please")
    await session.confirm(proposal.id)


# -- availability ---------------------------------------------------------------------------------


async def test_offers_a_few_spread_times_inside_the_asked_window(office: Practice) -> None:
    """'Tuesday afternoon' gives at most three Tuesday-afternoon times, earliest first, spread out."""
    found = await office.session().check_availability("tuesday afternoon", "cleaning")
    starts = [o.slot.start for o in found.offers]
    assert 2 <= len(starts) <= 3
    assert starts == sorted(starts)
    assert all(s.date().isoformat() == "2026-11-24" and 13 <= s.hour < 17 for s in starts)
    assert starts[-1] - starts[0] >= timedelta(hours=2)
    assert not found.nearest


async def test_exact_time_is_offered_when_free(office: Practice) -> None:
    """'Tuesday at 10' offers exactly 10:00 on Tuesday."""
    found = await office.session().check_availability("tuesday at 10", "cleaning")
    assert [(o.slot.start.day, o.slot.start.hour, o.slot.start.minute) for o in found.offers] == [(24, 10, 0)]


async def test_closed_day_offers_the_nearest_instead(office: Practice) -> None:
    """Asking for Saturday (closed) offers the nearest open times after it, marked as such."""
    found = await office.session().check_availability("saturday morning", "cleaning")
    assert found.nearest
    days = [o.slot.start.date().isoformat() for o in found.offers]
    assert days[0] == "2026-11-30"
    assert set(days) <= {"2026-11-30", "2026-12-01"}


async def test_words_without_a_time_are_refused(office: Practice) -> None:
    """'I need a cleaning' names no time: the agent must ask when."""
    with pytest.raises(NoTimeUnderstood):
        await office.session().check_availability("I need a cleaning", "cleaning")


async def test_service_is_chosen_from_the_callers_words(office: Practice) -> None:
    """'my tooth hurts' means the emergency visit; an unknown service is asked about, not guessed."""
    session = office.session()
    found = await session.check_availability("tomorrow morning", "my tooth really hurts")
    assert found.service.key == "emergency"
    with pytest.raises(UnknownService) as caught:
        await office.session().check_availability("tomorrow morning", "a haircut")
    assert "teeth cleaning" in caught.value.context["options"]


# -- rule 1: the confirm gate ---------------------------------------------------------------------


async def test_no_write_before_the_read_back_is_spoken(office: Practice) -> None:
    """Confirming a proposal whose read-back was never spoken is refused and writes nothing."""
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    await session.caller_said("yes")
    with pytest.raises(NotConfirmedByCaller):
        await session.confirm(proposal.id)
    assert await all_bookings(office) == []


async def test_no_write_without_a_caller_answer(office: Practice) -> None:
    """A read-back the caller has not answered yet cannot be confirmed."""
    session = office.session()
    await session.caller_said("yes, book me")
    proposal = await propose_tuesday_cleaning(session)
    session.read_back_spoken(proposal.id)
    with pytest.raises(NotConfirmedByCaller):
        await session.confirm(proposal.id)
    assert await all_bookings(office) == []


@pytest.mark.parametrize("answer", ["no", "wait, actually make it three", "hmm", "yes but not that email"])
async def test_anything_but_a_clear_yes_writes_nothing(office: Practice, answer: str) -> None:
    """After the read-back, a no, a hesitation or a correction is not a yes."""
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    session.read_back_spoken(proposal.id)
    await session.caller_said(answer)
    with pytest.raises((NotConfirmedByCaller, ProposalClosed)):
        await session.confirm(proposal.id)
    assert await all_bookings(office) == []


async def test_yes_after_the_read_back_books(office: Practice) -> None:
    """The caller's yes after the read-back writes exactly the proposed booking."""
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    session.read_back_spoken(proposal.id)
    await session.caller_said("Yes, that's right.")
    outcome = await session.confirm(proposal.id)
    assert outcome.status == "booked"
    assert outcome.view.booking.start == proposal.slot.start  # type: ignore[union-attr]
    assert outcome.view.booking.attendee.phone == CALLER
    assert len(await all_bookings(office)) == 1


async def test_latest_answer_counts(office: Practice) -> None:
    """'Wait, what time?' then 'ok yes' books: the answer that counts is the latest one."""
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    session.read_back_spoken(proposal.id)
    await session.caller_said("wait, what time was that?")
    await session.caller_said("ok, yes")
    assert (await session.confirm(proposal.id)).status == "booked"


# -- rule 2: nothing invented ---------------------------------------------------------------------


async def test_invented_ids_are_refused_before_the_calendar(office: Practice) -> None:
    """A slot, booking or proposal id this call never issued is refused."""
    session = office.session()
    with pytest.raises(UnknownSlot):
        await session.propose_booking("ST_deadbeef", "Jane Doe", "jane@example.com")
    with pytest.raises(UnknownBooking):
        await session.propose_cancellation("BK_deadbeef")
    with pytest.raises(UnknownProposal):
        await session.confirm("PR_deadbeef")
    assert await all_bookings(office) == []


async def test_slot_ids_are_per_call(office: Practice) -> None:
    """A slot id offered to one caller means nothing in another call."""
    first = office.session()
    found = await first.check_availability("tuesday at 10", "cleaning")
    with pytest.raises(UnknownSlot):
        await office.session().propose_booking(found.offers[0].slot_id, "Jane Doe", "jane@example.com")


# -- rule 3: exactly once -------------------------------------------------------------------------


async def test_confirming_twice_returns_the_same_booking(office: Practice) -> None:
    """A repeated confirm returns the first result and creates nothing new."""
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    session.read_back_spoken(proposal.id)
    await session.caller_said("yes")
    first, second = await session.confirm(proposal.id), await session.confirm(proposal.id)
    assert first == second
    assert len(await all_bookings(office)) == 1


async def test_concurrent_confirms_write_once(office: Practice) -> None:
    """Two confirms racing (a barge-in retry) give one booking."""
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    session.read_back_spoken(proposal.id)
    await session.caller_said("yes")
    outcomes = await asyncio.gather(session.confirm(proposal.id), session.confirm(proposal.id))
    assert outcomes[0] == outcomes[1]
    assert len(await all_bookings(office)) == 1


async def test_an_interrupted_confirm_still_finishes_the_write(office: Practice) -> None:
    """Cancelling the confirm (the caller barged in) does not cancel the write that was sent."""
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    session.read_back_spoken(proposal.id)
    await session.caller_said("yes")
    task = asyncio.ensure_future(session.confirm(proposal.id))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    outcome = await session.confirm(proposal.id)
    assert outcome.status == "booked"
    assert len(await all_bookings(office)) == 1


# -- rule 4: truthful outcomes --------------------------------------------------------------------


async def test_service_needing_approval_is_pending_not_booked(office: Practice) -> None:
    """A service that requires confirmation comes back as pending, never as booked."""
    session = office.session()
    found = await session.check_availability("wednesday at 10", "whitening")
    proposal = await session.propose_booking(found.offers[0].slot_id, "Jane Doe", "jane@example.com")
    session.read_back_spoken(proposal.id)
    await session.caller_said("yes")
    assert (await session.confirm(proposal.id)).status == "pending"


async def test_slot_taken_between_offer_and_yes(office: Practice) -> None:
    """If someone else takes the time first, the proposal fails with SlotTaken and nothing is booked."""
    session = office.session()
    found = await session.check_availability("tuesday at 10", "cleaning")
    other = office.session(caller=STRANGER)
    other_found = await other.check_availability("tuesday at 10", "cleaning")
    await other.propose_booking(other_found.offers[0].slot_id, "Sam Roe", "sam@example.com")
    with pytest.raises(SlotTaken):
        await session.propose_booking(found.offers[0].slot_id, "Jane Doe", "jane@example.com")


# -- rule 5: identity -----------------------------------------------------------------------------


async def test_caller_id_and_name_verify_the_callers_own_booking(office: Practice) -> None:
    """From the booking's own number, with the right name, the caller sees their booking."""
    await book_for_jane(office)
    found = await office.session().find_bookings(name="Jane Doe")
    assert len(found.bookings) == 1
    assert found.bookings[0].handle.startswith("BK_")
    assert found.code_sent_to is None


async def test_name_is_asked_before_anything_is_revealed(office: Practice) -> None:
    """A matching number with no name given asks for the name first."""
    await book_for_jane(office)
    with pytest.raises(VerificationRequired):
        await office.session().find_bookings()


async def test_another_number_gets_a_code_not_the_booking(office: Practice) -> None:
    """A caller from another number learns nothing until they read back the code texted to the booking."""
    await book_for_jane(office)
    session = office.session(caller=STRANGER)
    found = await session.find_bookings(name="Jane Doe", email="jane@example.com")
    assert found.bookings == ()
    assert found.code_sent_to == CALLER
    assert [phone for phone, _ in office.codes.sent] == [CALLER]
    with pytest.raises(UnknownBooking):
        await session.propose_cancellation("BK_guess")


async def test_wrong_code_is_refused_and_right_code_verifies(office: Practice) -> None:
    """A wrong code is refused; the texted code unlocks the booking for cancelling."""
    await book_for_jane(office)
    session = office.session(caller=STRANGER)
    await session.find_bookings(name="Jane Doe", email="jane@example.com")
    code = office.codes.sent[-1][1]
    with pytest.raises(VerificationFailed):
        await session.verify_code("000000" if code != "000000" else "111111")
    found = await session.verify_code(" ".join(code))
    assert len(found.bookings) == 1


async def test_code_expires(office: Practice) -> None:
    """A code read back after five minutes is refused."""
    await book_for_jane(office)
    session = office.session(caller=STRANGER)
    await session.find_bookings(email="jane@example.com")
    office.clock.advance(timedelta(minutes=6))
    with pytest.raises(VerificationFailed):
        await session.verify_code(office.codes.sent[-1][1])


async def test_failed_attestation_does_not_trust_the_number(office: Practice) -> None:
    """A spoofable caller ID (failed STIR/SHAKEN) needs the texted code even from the right number."""
    await book_for_jane(office)
    session = office.session(attestation="TN-Validation-Failed-C")
    found = await session.find_bookings(name="Jane Doe")
    assert found.bookings == ()
    assert found.code_sent_to == CALLER


# -- rule 6: holds released -----------------------------------------------------------------------


async def test_declining_gives_the_slot_back(office: Practice) -> None:
    """After the caller says no, another caller can take that time."""
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    session.read_back_spoken(proposal.id)
    await session.caller_said("no")
    assert proposal.slot is not None
    await office.calendar.hold(proposal.slot)


async def test_picking_another_time_releases_the_first(office: Practice) -> None:
    """Proposing a second time gives the first held time back."""
    session = office.session()
    first = await propose_tuesday_cleaning(session)
    found = await session.check_availability("wednesday at 10", "cleaning")
    await session.propose_booking(found.offers[0].slot_id, "Jane Doe", "jane@example.com")
    assert first.slot is not None
    await office.calendar.hold(first.slot)


async def test_hanging_up_releases_holds(office: Practice) -> None:
    """When the call ends before a yes, the held time is free again."""
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    await session.close()
    assert proposal.slot is not None
    await office.calendar.hold(proposal.slot)


async def test_held_time_is_not_free_for_others(office: Practice) -> None:
    """While one caller decides, the held time cannot be taken by another."""
    session = office.session()
    proposal = await propose_tuesday_cleaning(session)
    assert proposal.slot is not None
    with pytest.raises(SlotTaken):
        await office.calendar.hold(proposal.slot)


# -- rule 7: reschedule is a reschedule -----------------------------------------------------------


async def test_reschedule_moves_the_booking(office: Practice) -> None:
    """A verified reschedule leaves one booking, at the new time; the old time is free."""
    await book_for_jane(office)
    session = office.session()
    found = await session.find_bookings(name="Jane")
    old = found.bookings[0].booking
    offers = await session.check_availability("wednesday at 2", None)
    proposal = await session.propose_reschedule(found.bookings[0].handle, offers.offers[0].slot_id)
    session.read_back_spoken(proposal.id)
    await session.caller_said("yes please")
    outcome = await session.confirm(proposal.id)
    assert outcome.status == "rescheduled"
    active = await all_bookings(office)
    assert [b.start for b in active] == [offers.offers[0].slot.start]  # type: ignore[attr-defined]
    free_again = await office.calendar.slots(
        offers.service, Window(old.start, old.start + timedelta(minutes=1))
    )
    assert [s.start for s in free_again] == [old.start]


async def test_cancel_needs_a_yes_too(office: Practice) -> None:
    """Cancelling a verified booking is proposed, read back, and done only after yes."""
    await book_for_jane(office)
    session = office.session()
    found = await session.find_bookings(name="Jane Doe")
    proposal = await session.propose_cancellation(found.bookings[0].handle, "feeling better")
    with pytest.raises(NotConfirmedByCaller):
        await session.confirm(proposal.id)
    session.read_back_spoken(proposal.id)
    await session.caller_said("yes, cancel it")
    assert (await session.confirm(proposal.id)).status == "cancelled"
    assert await all_bookings(office) == []


async def test_changes_per_call_are_limited(office: Practice) -> None:
    """A third change in one call is refused (more goes to a person)."""
    await book_for_jane(office)
    session = office.session()
    found = await session.find_bookings(name="Jane Doe")
    handle = found.bookings[0].handle
    for when in ("wednesday at 10", "thursday at 10"):
        offers = await session.check_availability(when, None)
        proposal = await session.propose_reschedule(handle, offers.offers[0].slot_id)
        session.read_back_spoken(proposal.id)
        await session.caller_said("yes")
        await session.confirm(proposal.id)
    with pytest.raises(LimitReached):
        await session.propose_cancellation(handle)


async def test_no_second_booking_of_the_same_service_by_mistake(office: Practice) -> None:
    """Someone who already has a cleaning ahead is offered a move, not a second cleaning."""
    await book_for_jane(office)
    session = office.session()
    found = await session.check_availability("wednesday at 10", "cleaning")
    with pytest.raises(AlreadyBooked):
        await session.propose_booking(found.offers[0].slot_id, "Jane Doe", "jane@example.com")
    emergency = await session.check_availability("wednesday at 10", "my tooth hurts")
    proposal = await session.propose_booking(emergency.offers[0].slot_id, "Jane Doe", "jane@example.com")
    assert proposal.kind == "book"
