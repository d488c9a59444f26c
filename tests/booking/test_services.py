"""Callers' words pick the service; no fit or a tie means ask."""

from __future__ import annotations

from datetime import timedelta

import pytest

from booking.models import Service
from booking.services import match_service

SERVICES = [
    Service("cleaning", "teeth cleaning", timedelta(minutes=45), ("cleaning", "checkup", "hygiene")),
    Service(
        "emergency", "emergency visit", timedelta(minutes=30), ("toothache", "tooth hurts", "broken tooth")
    ),
    Service("consultation", "new patient consultation", timedelta(minutes=30), ("consult", "first visit")),
]


@pytest.mark.parametrize(
    ("said", "key"),
    [
        ("I need a cleaning", "cleaning"),
        ("my six month check-up", "cleaning"),
        ("my six month checkup", "cleaning"),
        ("Cleanings", "cleaning"),
        ("my tooth really hurts", "emergency"),
        ("I broke a tooth, well, a broken tooth", "emergency"),
        ("it's my first visit", "consultation"),
        ("a haircut", None),
        ("", None),
    ],
)
def test_service_from_words(said: str, key: str | None) -> None:
    """Synonyms and names match in any order and number; nothing matching means no guess."""
    found = match_service(said, SERVICES)
    assert (found.key if found else None) == key


def test_a_tie_is_not_a_guess() -> None:
    """Words that fit two services equally well pick neither."""
    assert match_service("cleaning or a consult", SERVICES) is None
