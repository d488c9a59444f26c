"""The conversation core shared by `chat`, scripted calls and tests: caller text in, agent speech out.

One caller turn runs the model until it has something to say, calling tools as it asks. The rules
that keep speech truthful are applied here, not left to the model:

* a tool's `speak` (a read-back, a transfer notice, a goodbye) is said verbatim by the runtime, and
  the model is not run again after it — the caller answers the read-back, not the model;
* a read-back counts as spoken (`CallSession.read_back_spoken`) only once it has been delivered;
* if the model fails, the caller hears one sentence and is transferred (or told how to reach the
  office) — never silence.

The phone pipeline drives the same `ReceptionistTools` and `CallSession` through Pipecat.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from loguru import logger

from agent.llm import LLM, AssistantTurn, LLMUnavailable
from agent.prompting import Phrases
from agent.tools import Action, ReceptionistTools, tool_schemas

Recorder = Callable[[str, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class ToolEvent:
    name: str
    arguments: dict[str, Any]
    result: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Reply:
    """What the agent did in answer to one caller turn."""

    spoken: tuple[str, ...]
    tools: tuple[ToolEvent, ...] = ()
    action: Action | None = None


@dataclass(frozen=True, slots=True)
class Line:
    who: Literal["caller", "agent"]
    text: str


async def no_record(kind: str, data: dict[str, Any]) -> None:
    return None


@dataclass
class Conversation:
    tools: ReceptionistTools
    llm: LLM
    phrases: Phrases
    system_prompt: str
    business_name: str
    can_transfer: bool
    record: Recorder = no_record
    max_rounds: int = 6
    messages: list[dict[str, Any]] = field(default_factory=list)
    transcript: list[Line] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.messages.append({"role": "system", "content": self.system_prompt})
        self._schemas = tool_schemas()

    async def greet(self) -> str:
        greeting = self.phrases.say("call.greeting", business_name=self.business_name)
        await self._say(greeting)
        return greeting

    async def hear(self, text: str) -> Reply:
        """One finished caller turn: the agent's speech, the tools it ran, and any call action."""
        self.transcript.append(Line("caller", text))
        await self.record("caller", {"text": text})
        await self.tools.session.caller_said(text)
        self.messages.append({"role": "user", "content": text})
        spoken: list[str] = []
        events: list[ToolEvent] = []
        for _ in range(self.max_rounds):
            try:
                turn = await self.llm.complete(self.messages, self._schemas)
            except LLMUnavailable as failure:
                logger.warning("model failed mid-call: {}", failure)
                return await self._fail_over(spoken, events)
            self.messages.append(_assistant_message(turn))
            if turn.text:
                await self._say(turn.text, already_in_context=True)
                spoken.append(turn.text)
            if not turn.tool_calls:
                return Reply(tuple(spoken), tuple(events))
            stop_after = False
            action: Action | None = None
            for call in turn.tool_calls:
                await self.record("tool_call", {"name": call.name, "arguments": call.arguments})
                result = await self.tools.call(call.name, call.arguments)
                await self.record("tool_result", {"name": call.name, "result": result.payload})
                events.append(ToolEvent(call.name, call.arguments, result.payload))
                self.messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result.payload)}
                )
                if result.speak is not None:
                    await self._say(result.speak)
                    spoken.append(result.speak)
                    if result.proposal_id is not None:
                        self.tools.session.read_back_spoken(result.proposal_id)
                    stop_after = True
                action = action or result.action
            if stop_after or action is not None:
                return Reply(tuple(spoken), tuple(events), action)
        logger.warning("model kept calling tools for {} rounds; stopping", self.max_rounds)
        return Reply(tuple(spoken), tuple(events))

    async def end(self) -> None:
        """The call is over: give back anything still held."""
        await self.tools.session.close()

    async def _say(self, text: str, *, already_in_context: bool = False) -> None:
        self.transcript.append(Line("agent", text))
        await self.record("agent", {"text": text})
        if not already_in_context:
            self.messages.append({"role": "assistant", "content": text})

    async def _fail_over(self, spoken: list[str], events: list[ToolEvent]) -> Reply:
        if self.can_transfer:
            sentence = self.phrases.say("call.service_trouble", business_name=self.business_name)
            action: Action = "transfer"
        else:
            sentence = self.phrases.say("call.service_trouble_callback", business_name=self.business_name)
            action = "hang_up"
        await self._say(sentence)
        return Reply((*spoken, sentence), tuple(events), action)


def _assistant_message(turn: AssistantTurn) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": turn.text}
    if turn.tool_calls:
        message["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
            }
            for c in turn.tool_calls
        ]
    return message
