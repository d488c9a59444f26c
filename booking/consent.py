"""Did the caller just say yes? A deterministic reading of the caller's own words.

The confirm gate (`booking.session`) writes to the calendar only when the caller's turn after a
read-back says yes. That decision must not depend on the language model, which can be talked into
anything; it is made here, from the words speech-to-text heard. Any hesitation, correction or
negation wins over a yes in the same turn ("yes, actually make it three" is not a yes), because a
wrong booking costs the caller more than one more question. A refusal ("no") is told apart from a
hesitation ("wait", "actually"): only a refusal gives the held slot back.
"""

from __future__ import annotations

import re
from typing import Literal

Consent = Literal["yes", "no", "unclear"]

# Phrases that contain a negative word but mean yes; removed before the negative check.
_POSITIVE_IDIOMS = (
    "no problem",
    "no worries",
    "why not",
    "not a problem",
    "can't wait",
    "cannot wait",
    "no doubt",
)
_YES = re.compile(
    r"\b(yes|yeah|yea|yep|yup|ya|yah|sure|surely|certainly|correct|right|absolutely|definitely|"
    r"affirmative|ok|okay|alright|perfect|great|fine|good|confirm|confirmed|exactly|indeed|"
    r"please|uh huh|mm hmm|go ahead|do it|book it|that works|works for me|sounds good|let's do it|"
    r"go for it|of course|that's it|you got it|that's me)\b"
)
# A refusal: the caller does not want this proposal (its hold is given back).
_NO = re.compile(r"\b(no|nope|nah|not|don't|dont|never|wrong|incorrect|negative)\b")
# A hesitation or correction: not a yes, but not a refusal either (the hold is kept).
_HESITATION = re.compile(
    r"\b(wait|hold on|hang on|actually|change|different|another|instead|mistake|stop|rather|maybe|"
    r"unsure|but|except|rethink|think about|let me think|one sec|one second|second thought|"
    r"what about|how about|or)\b"
)
# Sounds that carry no decision ("um, yes please" is a yes).
_FILLERS = re.compile(r"\b(um+|uh+|erm|er|hmm+|mm|well|so|oh)\b")
_AGREEMENT = re.compile(r"\b(uh huh|mm hmm)\b")


def _normalise(text: str) -> str:
    lowered = text.lower().replace("’", "'").replace("-", " ")
    lowered = re.sub(r"[^a-z' ]+", " ", lowered)
    return re.sub(r"\s+", " ", lowered).strip()


def read_consent(text: str) -> Consent:
    """Classify one caller turn: a clear yes, a no, or unclear (hesitation, correction, nothing)."""
    words = _normalise(text)
    for idiom in _POSITIVE_IDIOMS:
        words = words.replace(idiom, " yes ")
    agreement = bool(_AGREEMENT.search(words))
    words = _FILLERS.sub(" ", _AGREEMENT.sub(" ", words))
    if _NO.search(words):
        return "no"
    if _HESITATION.search(words):
        return "unclear"
    if agreement or _YES.search(words):
        return "yes"
    return "unclear"
