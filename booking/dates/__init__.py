"""Understand when a caller wants to come: free speech -> time windows in the business's zone.

    resolve("next Tuesday afternoon", now) -> [Window(Tue 12:00, Tue 17:00)]

The pipeline is a small compositional grammar, not a table of phrases:

    _tokens     text -> tokens (numbers spoken or written become one form)
    _grammar    tokens -> atoms ("Tuesday", "after 3", "the 15th") and marks ("or", "except", "no wait")
    _discourse  atoms + marks -> options to offer and groups to exclude
    _resolve    options + `now` -> windows, never in the past

`now` is always passed in (nothing here reads the clock) and must be aware, in the business zone.
An exact time is a window with `start == end`; a part of day, day, week or range is `[start, end)`;
nothing said about time gives `[]`.
"""

from __future__ import annotations

from datetime import datetime

from booking.dates._discourse import read
from booking.dates._grammar import parse
from booking.dates._resolve import resolve_reading
from booking.dates._tokens import tokenize
from booking.models import Window

__all__ = ["resolve"]


def resolve(text: str, now: datetime) -> list[Window]:
    """The windows of time `text` asks for, relative to `now` (aware, business zone)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"resolve needs a timezone-aware now, got {now!r}")
    return resolve_reading(read(parse(tokenize(text))), now)
