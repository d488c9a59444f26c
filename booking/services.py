"""Which of the business's services the caller means, from their own words.

"A cleaning", "my six-month checkup", "my tooth really hurts": the business lists each service with
the words callers use for it (its synonyms), and the service is picked here, deterministically. When
the words fit no service, or fit two equally, the answer is `None` and the agent asks; it never
guesses a service, because booking the wrong length or the wrong provider is a wrong booking.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from booking.models import Service

_WORD = re.compile(r"[a-z0-9]+")


def _words(text: str) -> list[str]:
    joined = text.lower().replace("'", "").replace("-", "")
    return [_stem(w) for w in _WORD.findall(joined)]


def _stem(word: str) -> str:
    """Fold the plural and possessive forms callers use ("cleanings", "teeth's")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _contains(said: set[str], phrase: list[str]) -> bool:
    """Every word of the phrase was said, in any order ("my tooth really hurts" has "tooth hurts")."""
    return bool(phrase) and said.issuperset(phrase)


def match_service(text: str, services: Sequence[Service]) -> Service | None:
    """The one service whose name, key or synonym appears in `text`; `None` if none or a tie."""
    said = set(_words(text))
    best: list[tuple[int, Service]] = []
    for service in services:
        phrases = (service.key.replace("-", " ").replace("_", " "), service.name, *service.synonyms)
        score = max((len(p) for p in map(_words, phrases) if _contains(said, p)), default=0)
        if score:
            best.append((score, service))
    if not best:
        return None
    best.sort(key=lambda pair: pair[0], reverse=True)
    if len(best) > 1 and best[0][0] == best[1][0]:
        return None
    return best[0][1]
