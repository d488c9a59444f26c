"""`simulate --audio`: shipped scripts as speech through the real phone server, judged as in replay.

These run in real time (the fake caller streams 20 ms frames), so they use the shortest shipped
script, a one-line transfer: once through the command as a pass, once with a wrong expectation.
"""

from __future__ import annotations

import io
from pathlib import Path

import yaml
from rich.console import Console

from agent.prompting import load_prompts
from agent.scripts import SHIPPED_SCRIPTS, load_script
from agent.settings import load_settings
from agent.simulate import Options, run_script, run_simulate
from agent.simulate_audio import AudioDriver, audio_unsupported


def test_a_shipped_script_passes_through_the_phone_path_and_exits_0() -> None:
    """The caller's line is spoken into the server; the transfer, the words and the table come out."""
    out = io.StringIO()
    code = run_simulate(
        [SHIPPED_SCRIPTS / "wants-a-human.yaml", SHIPPED_SCRIPTS / "calendar-fails-mid-call.yaml"],
        Options(audio=True),
        load_settings(openai_api_key=None, openai_base_url=None),
        Console(file=out, width=200),
    )
    output = out.getvalue()
    assert code == 0, output
    assert "skipped in audio: calendar-fails-mid-call (calendar_fails:" in output
    assert "wants-a-human — pass" in output and "1 of 1 scripts passed (audio)" in output
    assert "the call is transferred to the office" in output
    assert "s after the caller stops" in output


async def test_wording_is_judged_on_what_the_voice_was_asked_to_say(tmp_path: Path) -> None:
    """`says` is checked against the TTS requests; the line is synthesized into the given cache."""
    document = yaml.safe_load((SHIPPED_SCRIPTS / "wants-a-human.yaml").read_text())
    document["expect"]["says"] = ["You're booked"]
    path = tmp_path / "never-books.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = await run_script(load_script(path), AudioDriver(cache=tmp_path / "speech"), load_prompts())
    assert result.reasons == ('the agent never said "You\'re booked"',)
    assert len(list((tmp_path / "speech").glob("*.wav"))) == 1


def test_scripts_the_loopback_line_cannot_stage_are_named_with_the_reason() -> None:
    """A failing calendar or a spoofed number cannot be staged through the loopback line; the rest can."""
    reasons = {
        path.stem: audio_unsupported(load_script(path)) for path in sorted(SHIPPED_SCRIPTS.glob("*.yaml"))
    }
    assert reasons["plain-booking"] is None and reasons["slot-taken-before-yes"] is None
    assert "calendar_fails" in str(reasons["calendar-fails-mid-call"])
    assert "attestation" in str(reasons["spoofed-number-needs-code"])
