"""Emails and phone numbers as callers say them, and as the receptionist reads them back.

Speech-to-text gives "john dot smith at gmail dot com", "j o h n underscore s", "four one five,
five five five, one two three four". These become `john.smith@gmail.com` (checked with
email-validator, no DNS) and `+14155551234` (checked with phonenumbers). Reading back is the
inverse, spelled where a word could be misheard: "j o h n dot smith at gmail dot com",
"four one five, five five five, one two three four".
"""

from __future__ import annotations

import re
from typing import ClassVar

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from booking.errors import BookingError

__all__ = [
    "InvalidEmail",
    "InvalidPhone",
    "parse_spoken_email",
    "parse_spoken_phone",
    "speak_email",
    "speak_phone",
]


class InvalidEmail(BookingError):
    """What the caller said does not make a valid email address."""

    code: ClassVar[str] = "invalid_email"


class InvalidPhone(BookingError):
    """What the caller said does not make a valid phone number."""

    code: ClassVar[str] = "invalid_phone"


_DIGITS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_SYMBOLS = {
    "at": "@",
    "dot": ".",
    "period": ".",
    "point": ".",
    "underscore": "_",
    "underline": "_",
    "dash": "-",
    "hyphen": "-",
    "minus": "-",
    "plus": "+",
}
_REPEATS = {"double": 2, "triple": 3}
_EMAIL_PREAMBLE = frozenset(
    ["my", "the", "email", "e", "mail", "address", "is", "its", "it", "that", "would", "be", "thats", "so"]
)
_FILLERS = frozenset(["um", "uh", "er", "yeah", "yes", "sure", "ok", "okay", "so"])
_EMAIL_NOISE = frozenset(["all", "lowercase", "lower", "case", "sign", "symbol", "letter", "letters"])
_WORD = re.compile(r"[a-z0-9]+|[@._+\-]")
_COMMON_DOMAINS = frozenset(
    [
        "gmail",
        "googlemail",
        "yahoo",
        "ymail",
        "outlook",
        "hotmail",
        "live",
        "msn",
        "icloud",
        "me",
        "mac",
        "aol",
        "proton",
        "protonmail",
        "comcast",
        "verizon",
        "att",
        "com",
        "net",
        "org",
        "edu",
        "gov",
        "co",
        "uk",
        "io",
        "us",
        "ca",
        "au",
        "info",
        "biz",
    ]
)
_SPOKEN_SEPARATORS = {".": "dot", "_": "underscore", "-": "dash", "+": "plus"}


def parse_spoken_email(text: str) -> str:
    """ "john dot smith at gmail dot com" -> "john.smith@gmail.com"; raises `InvalidEmail`."""
    words = _WORD.findall(text.lower().replace("at sign", "at"))
    words = _drop_preamble(words)
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word in _EMAIL_NOISE:
            i += 1
            continue
        if word in _REPEATS and i + 1 < len(words):
            out.append(_email_piece(words[i + 1]) * _REPEATS[word])
            i += 2
            continue
        if i + 2 < len(words) and words[i + 1] == "as" and words[i + 2] == "in" and len(word) == 1:
            out.append(word)
            i += 4
            continue
        if word == "capital" and i + 1 < len(words):
            i += 1
            continue
        out.append(_email_piece(word))
        i += 1
    candidate = "".join(out)
    try:
        return validate_email(candidate, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidEmail("not a valid email address", heard=text, candidate=candidate) from error


def _drop_preamble(words: list[str]) -> list[str]:
    """ "my email address is ...", "um, sure, it's ..." -> what follows."""
    for k, word in enumerate(words[:7]):
        if word in ("is", "its") and all(w in _EMAIL_PREAMBLE or w in _FILLERS for w in words[:k]):
            words = words[k + 1 :]
            break
    while len(words) > 1 and words[0] in _FILLERS:
        words = words[1:]
    return words


def _email_piece(word: str) -> str:
    if word in _SYMBOLS:
        return _SYMBOLS[word]
    return word if word in ("o", "oh") else _DIGITS.get(word, word)


def _spell(chunk: str) -> str:
    return " ".join(_DIGIT_WORDS[int(c)] if c.isdigit() else c for c in chunk)


def _speak_label(chunk: str, *, domain: bool) -> str:
    """Say a word when it cannot be misheard, spell it otherwise ("j o h n", "smith", "one two")."""
    if domain and chunk in _COMMON_DOMAINS:
        return chunk
    spoken = []
    for run in re.findall(r"[a-z]+|\d+|[^a-z\d]+", chunk):
        clear = run.isalpha() and len(run) >= 5 and any(v in run for v in "aeiouy")
        if clear and not re.search(r"(.)\1", run):
            spoken.append(run)
        else:
            spoken.append(_spell(run))
    return " ".join(spoken)


def speak_email(email: str) -> str:
    """ "john.smith@gmail.com" -> "j o h n dot smith at gmail dot com"."""
    local, _, domain = email.lower().partition("@")
    spoken: list[str] = []
    for piece in re.split(r"([._+\-])", local):
        if piece in _SPOKEN_SEPARATORS:
            spoken.append(_SPOKEN_SEPARATORS[piece])
        elif piece:
            spoken.append(_speak_label(piece, domain=False))
    spoken.append("at")
    for piece in re.split(r"([.\-])", domain):
        if piece in _SPOKEN_SEPARATORS:
            spoken.append(_SPOKEN_SEPARATORS[piece])
        elif piece:
            spoken.append(_speak_label(piece, domain=True))
    return " ".join(spoken)


_PHONE_WORD = re.compile(r"[a-z]+|\d|\+")


def parse_spoken_phone(text: str, default_region: str = "US") -> str:
    """ "four one five, five five five, one two three four" -> "+14155551234"; raises `InvalidPhone`."""
    tokens = _PHONE_WORD.findall(text.lower())
    digits: list[str] = []
    repeat = 1
    for token in tokens:
        if token in _REPEATS:
            repeat = _REPEATS[token]
            continue
        if token == "+" or (token == "plus" and not digits):
            digits.append("+")
        elif token.isdigit() or token in _DIGITS:
            digits.append(_DIGITS.get(token, token) * repeat)
        repeat = 1
    candidate = "".join(digits)
    try:
        number = phonenumbers.parse(candidate, default_region)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhone("not a phone number", heard=text, candidate=candidate) from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number", heard=text, candidate=candidate)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def speak_phone(e164: str, default_region: str = "US") -> str:
    """ "+14155551234" -> "four one five, five five five, one two three four".

    Numbers from another country start with their code: "plus four four, seven nine one one, ...".
    """
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhone("not an E.164 phone number", number=e164) from error
    home = phonenumbers.region_code_for_number(number) == default_region
    style = phonenumbers.PhoneNumberFormat.NATIONAL if home else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    formatted = phonenumbers.format_number(number, style)
    groups = re.findall(r"\+?\d+", formatted)
    if home and groups and groups[0] == str(number.country_code) and len(groups) > 3:
        groups = groups[1:]
    spoken = []
    for group in groups:
        words = " ".join(_DIGIT_WORDS[int(d)] for d in group.lstrip("+"))
        spoken.append(f"plus {words}" if group.startswith("+") else words)
    return ", ".join(spoken)
