"""When the transcript says the caller has finished, the agent need not wait out Smart-Turn's doubt."""

from __future__ import annotations

import pytest

from agent.phone import sounds_finished


@pytest.mark.parametrize(
    "text",
    [
        "Yes, please.",
        "My name is Jane Doe, that's jane at example dot com.",
        "Can I talk to a real person?",
        "That's all, thank you. Goodbye!",
        "Tuesday.",
    ],
)
def test_finished_sentences(text: str) -> None:
    """A transcript ending a sentence ends the caller's turn."""
    assert sounds_finished(text)


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a cleaning and",
        "My email is...",
        "So I was thinking, um.",
        "Next Tuesday at",
        "",
        "Could you book me for the",
        "I need it for my…",
        "well, I guess,",
    ],
)
def test_unfinished_thoughts_keep_the_turn_open(text: str) -> None:
    """A dangling word, a trailing ellipsis or no final punctuation means the caller is still going."""
    assert not sounds_finished(text)
