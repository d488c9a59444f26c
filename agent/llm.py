"""The language model as the text conversation sees it: messages and tools in, text or tool calls out.

Two implementations: `OpenAIChat` (the real model, through `OPENAI_BASE_URL`, used by `chat` and
`simulate --live`) and `ScriptedLLM` (a fixed plan of assistant turns, used by scripted calls and
tests, so a whole call runs with no model at all). The phone pipeline uses Pipecat's own OpenAI
service instead, with the same tools.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agent.errors import RuntimeFailure

if TYPE_CHECKING:
    from openai import AsyncOpenAI


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AssistantTurn:
    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()


class LLMUnavailable(RuntimeFailure):
    """The model did not answer (timeout, 5xx, rate limit, bad key); the caller must hear something."""


class LLM(Protocol):
    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
    ) -> AssistantTurn:
        """The assistant's next turn for this conversation."""
        ...


class OpenAIChat:
    """OpenAI's chat completions API (or any compatible server), with short, explicit timeouts.

    The SDK is imported when a chat is made, not with this module: it takes ~0.8 s, and every
    command imports this module (through the conversation), most never to talk to a model.
    """

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str | None = None,
        timeout_seconds: float = 15.0,
        max_tokens: int = 300,
    ) -> None:
        from openai import AsyncOpenAI

        self._client: AsyncOpenAI = AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout_seconds, max_retries=1
        )
        self._model = model
        self._max_tokens = max_tokens

    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
    ) -> AssistantTurn:
        import openai

        try:
            response = await self._client.chat.completions.create(
                model=self._model,
                messages=list(messages),  # type: ignore[arg-type]
                tools=list(tools),  # type: ignore[arg-type]
                temperature=0.2,
                max_completion_tokens=self._max_tokens,
            )
        except openai.OpenAIError as exc:
            raise LLMUnavailable(f"The language model did not answer: {type(exc).__name__}.") from exc
        message = response.choices[0].message
        calls = tuple(
            ToolCall(id=c.id, name=c.function.name, arguments=_arguments(c.function.arguments))
            for c in (message.tool_calls or [])
            if c.type == "function"
        )
        return AssistantTurn(text=message.content or None, tool_calls=calls)


def _arguments(raw: str) -> dict[str, Any]:
    try:
        parsed = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_unparseable": raw}
    return parsed if isinstance(parsed, dict) else {"_unparseable": raw}


PlannedTurn = AssistantTurn | Callable[[Sequence[dict[str, Any]]], AssistantTurn]


@dataclass
class ScriptedLLM:
    """Plays back planned assistant turns in order; runs out loudly rather than improvising.

    A planned turn is an `AssistantTurn`, or a function of the conversation so far that returns one
    (so a script can use the slot id the previous tool result offered).
    """

    turns: list[PlannedTurn]
    seen: list[list[dict[str, Any]]] = field(default_factory=list)

    async def complete(
        self, messages: Sequence[dict[str, Any]], tools: Sequence[dict[str, Any]]
    ) -> AssistantTurn:
        self.seen.append(list(messages))
        if not self.turns:
            raise LLMUnavailable("The script has no more assistant turns.")
        planned = self.turns.pop(0)
        return planned if isinstance(planned, AssistantTurn) else planned(messages)
