"""Speech-to-text output -> a flat list of normalised tokens.

What a caller says arrives as Whisper text ("Quarter to five, tomorrow?") or raw lower case
("um maybe this coming sunday at three forty p m"). The grammar should not care which: here
digits and spelled numbers become the same `Tok.num`, "15th" and "fifteenth" the same
`Tok.ordinal`, "2:30" a number with a minute, "a.m."/"p m" become "am"/"pm", "o'clock" one word,
"tomorrow's" two ("tomorrow", "is"), "3ish" two ("3", "ish"), and fillers ("um", "like") vanish.
Punctuation survives as separator tokens because commas and full stops end clauses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from booking.dates._lexicon import FILLERS, MONTHS, ORDINALS, TENS, UNITS

_MONTH_BY_NUMBER = {number: name for name, number in MONTHS.items() if len(name) > 4 or name == "may"}
_MONTH_BY_NUMBER.update({6: "june", 7: "july"})

_DIGIT_RANGE = re.compile(r"(?<=\d)\s*[-–—]\s*(?=\d)")
_SCAN = re.compile(
    r"""
      (?P<hm>\d{1,2})[:.](?P<mm>\d{2})(?!\d)
    | (?P<mo>\d{1,2})/(?P<dd>\d{1,2})(?:/\d{2,4})?
    | (?P<ordn>\d{1,2})(?:st|nd|rd|th)\b
    | (?P<num>\d+)
    | (?P<ap>[ap])\.\s?m\b\.?
    | (?P<word>[a-z]+(?:'[a-z]+)*)
    | (?P<sep>[,.;!?]+|\s-\s|--)
    """,
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Tok:
    """One word of the utterance after normalisation.

    `num` is a cardinal ("two", "2", and the hour of "2:30"), `minute` the minutes of a written
    clock time, `ordinal` a day-like ordinal ("15th", "fifteenth"), `sep` a clause separator.
    """

    word: str
    num: int | None = None
    minute: int | None = None
    ordinal: int | None = None
    spelled: bool = False
    sep: bool = False


_SEP = Tok(",", sep=True)
_ISH_STEMS = frozenset(UNITS) | {"noon", "midday", "lunch"}


def tokenize(text: str) -> list[Tok]:
    """Normalise `text` into tokens (see the module docstring)."""
    text = _DIGIT_RANGE.sub(" to ", text.lower().replace("’", "'").replace("‘", "'"))
    raw: list[Tok] = []
    for m in _SCAN.finditer(text):
        kind = m.lastgroup  # the last group that matched: "mm" for a clock, "dd" for a date
        if kind == "word":
            _add_word(raw, m.group("word"))
        elif kind == "mm":
            raw.append(Tok(m.group(0), num=int(m.group("hm")), minute=int(m.group("mm"))))
        elif kind == "num":
            raw.append(Tok(m.group(0), num=int(m.group(0))))
        elif kind == "ordn":
            raw.append(Tok(m.group(0), ordinal=int(m.group("ordn"))))
        elif kind == "ap":
            raw.append(Tok(m.group("ap") + "m"))
        elif kind == "dd":
            month, day = int(m.group("mo")), int(m.group("dd"))
            if month in _MONTH_BY_NUMBER and 1 <= day <= 31:
                raw.append(Tok(_MONTH_BY_NUMBER[month]))
                raw.append(Tok(str(day), ordinal=day))
        elif kind == "sep":
            raw.append(_SEP)
    return _merge(raw)


def _add_word(out: list[Tok], word: str) -> None:
    if "'" in word:
        if word in ("o'clock", "o'clocks"):
            out.append(Tok("oclock"))
            return
        if word.endswith("'s"):
            _add_word(out, word[:-2])
            out.append(Tok("is"))
            return
        word = word.replace("'", "")
    if word in FILLERS:
        return
    if word in UNITS:
        out.append(Tok(word, num=UNITS[word], spelled=True))
    elif word in TENS:
        out.append(Tok(word, num=TENS[word], spelled=True))
    elif word in ORDINALS:
        out.append(Tok(word, ordinal=ORDINALS[word], spelled=True))
    elif word.endswith("ish") and len(word) > 3 and word[:-3] in _ISH_STEMS:
        _add_word(out, word[:-3])
        out.append(Tok("ish"))
    elif word.endswith("ish") and word[:-3].isdigit():
        out.append(Tok(word[:-3], num=int(word[:-3])))
        out.append(Tok("ish"))
    else:
        out.append(Tok(word))


def _merge(raw: list[Tok]) -> list[Tok]:
    """Join what speech splits: "twenty five", "twenty-fifth", "p m", "o clock", "you know"."""
    out: list[Tok] = []
    i, n = 0, len(raw)
    while i < n:
        t = raw[i]
        nxt = raw[i + 1] if i + 1 < n else None
        if nxt is not None and t.spelled and t.num is not None and t.num >= 20 and t.num % 10 == 0:
            if nxt.spelled and nxt.num is not None and 1 <= nxt.num <= 9:
                out.append(Tok(f"{t.word} {nxt.word}", num=t.num + nxt.num, spelled=True))
                i += 2
                continue
            if nxt.spelled and nxt.ordinal is not None and 1 <= nxt.ordinal <= 9:
                out.append(Tok(f"{t.word} {nxt.word}", ordinal=t.num + nxt.ordinal, spelled=True))
                i += 2
                continue
        if nxt is not None and nxt.word == "m" and t.word in ("a", "p") and out and _numeric(out[-1]):
            out.append(Tok(t.word + "m"))
            i += 2
            continue
        if nxt is not None and t.word == "o" and nxt.word == "clock":
            out.append(Tok("oclock"))
            i += 2
            continue
        if nxt is not None and t.word == "you" and nxt.word == "know":
            i += 2
            continue
        out.append(t)
        i += 1
    return out


def _numeric(t: Tok) -> bool:
    return t.num is not None or t.word in ("noon", "midnight", "oclock")
