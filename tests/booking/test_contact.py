"""Spoken emails and phone numbers become valid addresses, and are read back unambiguously."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from booking.contact import (
    InvalidEmail,
    InvalidPhone,
    parse_spoken_email,
    parse_spoken_phone,
    speak_email,
    speak_phone,
)
from booking.errors import BookingError


@pytest.mark.parametrize(
    ("spoken", "email"),
    [
        ("john dot smith at gmail dot com", "john.smith@gmail.com"),
        ("My email is j o h n underscore s at yahoo dot com", "john_s@yahoo.com"),
        ("J as in Juliet, o, h, n at example dot org", "john@example.org"),
        ("double l e n a at outlook dot com", "llena@outlook.com"),
        ("alice one two three at gmail dot com", "alice123@gmail.com"),
        ("mary dash ann at my dash clinic dot co dot uk", "mary-ann@my-clinic.co.uk"),
        ("bob plus dentist at gmail dot com", "bob+dentist@gmail.com"),
        ("John.Smith@Gmail.com", "john.smith@gmail.com"),
    ],
)
def test_spoken_emails_are_normalised(spoken: str, email: str):
    """Words for symbols, spelled letters and digits become one address."""
    assert parse_spoken_email(spoken) == email


@pytest.mark.parametrize("spoken", ["john smith", "at gmail dot com", "john at", "not an email at all"])
def test_invalid_emails_raise_a_typed_error(spoken: str):
    """What cannot be an address raises InvalidEmail with a stable code."""
    with pytest.raises(InvalidEmail) as caught:
        parse_spoken_email(spoken)
    assert caught.value.code == "invalid_email"
    assert isinstance(caught.value, BookingError)


@pytest.mark.parametrize(
    ("email", "spoken"),
    [
        ("john.smith@gmail.com", "j o h n dot smith at gmail dot com"),
        ("llena@outlook.com", "l l e n a at outlook dot com"),
        ("alice123@gmail.com", "alice one two three at gmail dot com"),
        ("bob_s@mybiz.co.uk", "b o b underscore s at mybiz dot co dot uk"),
    ],
)
def test_emails_are_read_back_spelling_what_could_be_misheard(email: str, spoken: str):
    """Short or doubled-letter parts are spelled; clear words and known domains are said."""
    assert speak_email(email) == spoken


_LOCAL = st.from_regex(r"[a-z][a-z0-9]{0,8}([._\-][a-z0-9]{1,6}){0,2}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(local=_LOCAL, domain=st.sampled_from(["gmail.com", "example.org", "clinic.co.uk", "my-site.io"]))
def test_email_round_trip(local: str, domain: str):
    """Reading an address back and hearing it again gives the same address."""
    email = f"{local}@{domain}"
    assert parse_spoken_email(speak_email(email)) == email


@pytest.mark.parametrize(
    ("spoken", "e164"),
    [
        ("four one five, five five five, one two three four", "+14155551234"),
        ("my number is (415) 555-1234", "+14155551234"),
        ("four one five five five five one two three four", "+14155551234"),
        ("two one two, double five five, oh one oh two", "+12125550102"),
        ("plus four four seven nine one one one two three four five six", "+447911123456"),
    ],
)
def test_spoken_phone_numbers_become_e164(spoken: str, e164: str):
    """Digits, digit words, "oh" and "double" become an E.164 number."""
    assert parse_spoken_phone(spoken) == e164


@pytest.mark.parametrize(
    "spoken", ["five five five one two three four", "double five", "no idea", "1234567890123456"]
)
def test_invalid_phone_numbers_raise_a_typed_error(spoken: str):
    """Too short, too long or not a number raises InvalidPhone."""
    with pytest.raises(InvalidPhone) as caught:
        parse_spoken_phone(spoken)
    assert caught.value.code == "invalid_phone"


def test_phone_numbers_are_read_back_in_groups():
    """A home number is read in its usual groups; a foreign one starts with its country code."""
    assert speak_phone("+14155551234") == "four one five, five five five, one two three four"
    assert speak_phone("+447911123456") == "plus four four, seven nine one one, one two three four five six"


@pytest.mark.parametrize("e164", ["+14155551234", "+12125550102", "+447911123456", "+61291234567"])
def test_phone_round_trip(e164: str):
    """Reading a number back and hearing it again gives the same number."""
    assert parse_spoken_phone(speak_phone(e164)) == e164
