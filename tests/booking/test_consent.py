"""The caller's own words decide whether a read-back was accepted."""

from __future__ import annotations

import pytest

from booking.consent import read_consent


@pytest.mark.parametrize(
    "text",
    [
        "Yes",
        "yeah go ahead",
        "Um, yes please.",
        "Yes, cancel it",
        "sure",
        "That's correct.",
        "uh huh",
        "No problem, go ahead",
        "perfect",
        "ok book it",
        "Sounds good!",
        "yep that's right",
    ],
)
def test_clear_yes(text: str) -> None:
    """Plain agreement, with or without fillers, is a yes."""
    assert read_consent(text) == "yes"


@pytest.mark.parametrize("text", ["no", "No, that's wrong.", "nope", "not yet", "don't book it", "no thanks"])
def test_refusal(text: str) -> None:
    """A refusal is a no (the held time is given back)."""
    assert read_consent(text) == "no"


@pytest.mark.parametrize(
    "text",
    [
        "wait",
        "yes, actually make it three",
        "hmm",
        "Can you do Thursday instead?",
        "yes but at 3",
        "hold on",
        "maybe",
        "",
        "what time was that again",
        "one second",
    ],
)
def test_hesitation_is_not_a_yes(text: str) -> None:
    """Hesitations, corrections and unrelated words are never taken as a yes."""
    assert read_consent(text) == "unclear"
