"""TwiML answers, built with the twilio SDK (never by string formatting)."""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, Dial, VoiceResponse


def connect_stream(url: str, parameters: Mapping[str, str]) -> str:
    """Answer a call by connecting it to our media stream (bidirectional `<Connect><Stream>`)."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def say_then_dial(sentence: str | None, number: str, caller_id: str | None = None) -> str:
    """Say a sentence (with Twilio's own voice, which needs no service of ours), then dial a person."""
    response = VoiceResponse()
    if sentence:
        response.say(sentence)
    dial = Dial(caller_id=caller_id) if caller_id else Dial()
    dial.number(number)
    response.append(dial)
    return str(response)


def say_then_hang_up(sentence: str) -> str:
    response = VoiceResponse()
    response.say(sentence)
    response.hangup()
    return str(response)
