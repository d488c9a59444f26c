"""Scripted calls as a developer runs them: replayed offline, judged by the calendar, reported for CI."""

from __future__ import annotations

import io
import json
import threading
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from agent.conversation import Reply
from agent.errors import RuntimeFailure
from agent.prompting import Prompts, load_prompts
from agent.scripts import (
    SHIPPED_SCRIPTS,
    Script,
    ScriptInvalid,
    Turn,
    UnresolvedReference,
    load_script,
    resolve,
)
from agent.settings import Settings, load_settings
from agent.simulate import Call, Options, ReplayDriver, Stage, open_stage, run_script, run_simulate

SHIPPED = sorted(SHIPPED_SCRIPTS.glob("*.yaml"))


def shipped(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((SHIPPED_SCRIPTS / f"{name}.yaml").read_text())
    return document


def write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


async def replay(path: Path) -> tuple[str, ...]:
    result = await run_script(load_script(path), ReplayDriver(), load_prompts())
    return result.reasons


def no_keys(**overrides: object) -> Settings:
    return load_settings(openai_api_key=None, openai_base_url=None, **overrides)


def simulate(paths: list[Path], options: Options, settings: Settings | None = None) -> tuple[int, str]:
    out = io.StringIO()
    code = run_simulate(paths, options, settings or no_keys(), Console(file=out, width=200))
    return code, out.getvalue()


def test_at_least_fifteen_real_situations_ship() -> None:
    """`make demo` has the fifteen situations of the issue and more to show."""
    assert len(SHIPPED) >= 15


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
async def test_every_shipped_script_passes_in_replay(path: Path) -> None:
    """Each shipped call, replayed with no model, leaves the calendar exactly as it expects."""
    assert await replay(path) == ()


async def test_a_booking_the_script_never_made_fails_with_a_reason(tmp_path: Path) -> None:
    """Expecting a booking from a call that only transferred fails, saying what was expected and found."""
    document = shipped("wants-a-human")
    document["expect"]["calendar"] = {"created": [{"service": "cleaning", "start": "2026-11-24 10:00"}]}
    reasons = await replay(write(tmp_path, "wrong", document))
    assert reasons == ("expected a booking created (cleaning Tue 2026-11-24 10:00); created: none",)


async def test_a_hold_kept_after_the_call_is_caught(tmp_path: Path) -> None:
    """If the held time were not given back, the 'free' expectation fails: the check has teeth."""
    document = shipped("hangs-up-before-yes")
    document["hangup"] = False
    reasons = await replay(write(tmp_path, "still-held", document))
    assert reasons == ("cleaning at Tue 2026-11-24 10:00 is not free at the end of the call",)


async def test_wording_refusals_texts_and_ending_are_judged(tmp_path: Path) -> None:
    """Every kind of expectation that does not hold is reported, one reason each."""
    document = shipped("plain-booking")
    document["expect"].update(
        refusals=["slot_taken"],
        says=["See you soon"],
        never_says=["You're booked"],
        sms=[{"to": "+14155550101", "kind": "code"}],
        action="transfer",
        max_turns=3,
    )
    document["expect"]["tools"].insert(0, {"find_booking": {"name": "Jane Doe"}})
    reasons = await replay(write(tmp_path, "all-wrong", document))
    assert reasons == (
        "expected a call to find_booking(name='Jane Doe') in order; "
        "calls made: check_availability, propose_booking, confirm_proposal, end_call",
        "the agent never said 'See you soon'",
        'the agent said "You\'re booked"',
        "expected the refusal slot_taken, it never came",
        "expected texts code to +14155550101, sent none",
        "expected the call to end with transfer, it ended with hang_up",
        "took 4 caller turns, at most 3 expected",
    )


async def test_steps_the_call_never_reached_are_a_script_error(tmp_path: Path) -> None:
    """An assistant step after a read-back (where the agent stops to listen) is reported, not ignored."""
    document = shipped("plain-booking")
    document["turns"][1]["agent"].append({"say": "Shall I book it?"})
    reasons = await replay(write(tmp_path, "extra-step", document))
    assert reasons == ("turn 2: 1 assistant step(s) were left unused: the agent's turn ended first",)


async def test_a_turn_without_steps_says_so_in_replay(tmp_path: Path) -> None:
    """A live-only script replayed offline fails with a reason instead of hanging or crashing."""
    document = shipped("wants-a-human")
    del document["turns"][0]["agent"]
    reasons = await replay(write(tmp_path, "live-only", document))
    assert reasons == ("turn 1: the agent needed another step, and the script has no more for this turn",)


class _DroppedLine:
    """A driver whose line drops on the first caller turn: a stand-in for any transport failing."""

    name = "dropped"
    scripted = False
    stage: Stage
    latency: float | None = None

    @asynccontextmanager
    async def open(self, script: Script, prompts: Prompts) -> AsyncIterator[Call]:
        async with open_stage(script, prompts) as self.stage:
            yield self

    async def greet(self) -> str:
        return "Hello?"

    async def hear(self, turn: Turn, line: str) -> Reply:
        raise RuntimeError("the line dropped")

    async def end(self) -> None:
        return None


async def test_a_call_that_crashes_fails_with_the_error_and_the_run_goes_on() -> None:
    """Any driver plugs in; a crash becomes that call's failure reason instead of stopping the run."""
    result = await run_script(
        load_script(SHIPPED_SCRIPTS / "plain-booking.yaml"), _DroppedLine(), load_prompts()
    )
    assert result.reasons == ("turn 1: the call crashed: RuntimeError: the line dropped",)
    assert [entry.who for entry in result.transcript] == ["agent", "caller"]


async def test_a_starting_booking_the_calendar_refuses_is_a_script_error(tmp_path: Path) -> None:
    """A starting booking outside opening hours is reported against the script, naming the field."""
    document = shipped("reschedule-verified-by-caller-id")
    document["calendar"]["bookings"][0]["start"] = "2026-11-28 10:00"
    with pytest.raises(
        ScriptInvalid, match=r"invalid at calendar.bookings.0: the calendar refused it \(outside_hours"
    ):
        await replay(write(tmp_path, "saturday", document))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: d["turns"][0]["agent"].insert(0, {"chek_availability": {"when": "monday"}}),
            "is invalid at turns.0.agent.0: unknown tool 'chek_availability'; the tools are",
        ),
        (
            lambda d: d["turns"][1]["agent"][0]["propose_booking"].update(slot_id="$slot[0]"),
            "is invalid at turns.1.agent.0: unknown reference '$slot[0]'; use $slots[N], $bookings[N], "
            "$proposal, $spoken or $code.",
        ),
        (
            lambda d: d["turns"][1]["agent"][0]["propose_booking"].update(phone_number="555"),
            "is invalid at turns.1.agent.0: propose_booking has no argument 'phone_number'.",
        ),
        (lambda d: d.pop("expect"), "is invalid at expect: Field required."),
        (
            lambda d: d["expect"]["calendar"].update(created=[{"service": "massage"}]),
            "names the service 'massage', which Bright Smile Dental does not offer",
        ),
        (
            lambda d: d["turns"][0].update(before={"book_elsewhere": "10am"}),
            "is invalid at turns.0.before.book_elsewhere: book_elsewhere takes a slot reference",
        ),
        (
            lambda d: d.update(
                business={
                    "id": "corner",
                    "name": "Corner Clinic",
                    "time_zone": "Mars/Olympus",
                    "services": [{"key": "visit", "name": "visit", "duration_minutes": 30}],
                }
            ),
            "is invalid at business.inline.time_zone: 'Mars/Olympus' is not an IANA time zone",
        ),
    ],
    ids=[
        "unknown-tool",
        "bad-reference",
        "bad-argument",
        "no-expect",
        "unknown-service",
        "bad-action",
        "bad-inline-business",
    ],
)
def test_a_malformed_script_is_one_sentence_naming_file_and_field(
    tmp_path: Path, change: Callable[[dict[str, Any]], object], message: str
) -> None:
    """A typo in a script is one line saying which file and which field, not a traceback."""
    document = shipped("plain-booking")
    change(document)
    path = write(tmp_path, "broken", document)
    with pytest.raises(ScriptInvalid) as raised:
        load_script(path)
    text = str(raised.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text
    assert raised.value.exit_code == 2


def test_a_script_that_is_not_yaml_says_where(tmp_path: Path) -> None:
    """Broken YAML is reported with its line."""
    path = tmp_path / "broken.yaml"
    path.write_text("description: x\n  now: 2026-11-23 09:00\n")
    with pytest.raises(ScriptInvalid, match=r"broken.yaml is not valid YAML at line 2\.$"):
        load_script(path)


def test_references_come_from_the_latest_result_carrying_them() -> None:
    """`$slots[1]`, `$proposal`, `$bookings[0]`, `$spoken` and `$code` pick the newest matching result."""
    results: list[dict[str, Any]] = [
        {"slots": [{"slot_id": "ST_old"}], "spoken": "old offer"},
        {"bookings": [{"booking_id": "BK_1"}], "spoken": "found"},
        {"slots": [{"slot_id": "ST_a"}, {"slot_id": "ST_b"}], "spoken": "new offer"},
        {"proposal_id": "PR_1", "read_back": "Just to confirm"},
    ]
    text = "$slots[1] $proposal $bookings[0] $spoken $code"
    assert resolve(text, results, ["111111", "222222"]) == "ST_b PR_1 BK_1 new offer 222222"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("$slots[3]", "$slots[3]: the latest slots list has only 2"),
        ("$proposal", "$proposal: no tool result has carried proposal_id yet"),
        ("$code", "$code: no code has been texted in this call"),
    ],
)
def test_a_reference_that_cannot_be_filled_says_why(text: str, reason: str) -> None:
    """A reference to something the call has not produced yet names what is missing."""
    with pytest.raises(UnresolvedReference) as raised:
        resolve(text, [{"slots": [{"slot_id": "a"}, {"slot_id": "b"}]}], [])
    assert str(raised.value) == reason


def test_the_command_passes_and_shows_transcripts_and_the_table() -> None:
    """`simulate fixtures/calls` exits 0 and shows who said what, folded tool calls and the results."""
    code, output = simulate([SHIPPED_SCRIPTS], Options())
    assert code == 0, output
    assert "caller  Hi, I'd like to book a cleaning, tomorrow at ten if you have it." in output
    assert "· confirm_proposal(proposal_id='PR_" in output and "→ booked" in output
    assert "~ someone else books cleaning at Thu 2026-11-26 13:00" in output
    assert f"{len(SHIPPED)} of {len(SHIPPED)} scripts passed (replay)" in output


def test_a_failing_script_exits_1_and_writes_junit(tmp_path: Path) -> None:
    """With one failure the exit code is 1, and the JUnit file has one testcase per script."""
    document = shipped("wants-a-human")
    document["expect"]["action"] = "hang_up"
    wrong = write(tmp_path, "wrong-ending", document)
    junit = tmp_path / "reports" / "simulate.xml"
    code, output = simulate([SHIPPED_SCRIPTS / "plain-booking.yaml", wrong], Options(junit=junit))
    assert code == 1
    assert "FAIL" in output and "expected the call to end with hang_up, it ended with transfer" in output
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert cases["plain-booking"].find("failure") is None
    failure = cases["wrong-ending"].find("failure")
    assert failure is not None
    assert (
        failure.get("message")
        == "0/1 runs passed: expected the call to end with hang_up, it ended with transfer"
    )
    assert "caller  Hi, I've got a question" in (cases["wrong-ending"].findtext("system-out") or "")


def test_repeat_reports_pass_to_the_n() -> None:
    """`--repeat 3` runs every script three times and reports pass^3 and the pass rate."""
    code, output = simulate([SHIPPED_SCRIPTS / "plain-booking.yaml"], Options(repeat=3))
    assert code == 0
    assert "pass^3 (3/3)" in output and "pass rate 3/3 runs (100%)" in output


def test_live_without_a_key_is_one_sentence_and_exit_2() -> None:
    """`--live` with no OPENAI_API_KEY stops before running anything, saying what to set."""
    with pytest.raises(RuntimeFailure) as raised:
        simulate([SHIPPED_SCRIPTS], Options(live=True))
    assert raised.value.exit_code == 2
    assert str(raised.value).startswith("simulate --live needs a language model: set OPENAI_API_KEY")


def test_audio_with_live_is_one_sentence_and_exit_2() -> None:
    """`--audio` replays the scripts' steps through the phone path; with `--live` it says it cannot."""
    with pytest.raises(RuntimeFailure) as raised:
        simulate([SHIPPED_SCRIPTS], Options(audio=True, live=True))
    assert raised.value.exit_code == 2 and "cannot be combined with --live" in str(raised.value)


def test_missing_paths_are_exit_2(tmp_path: Path) -> None:
    """A path that does not exist, or a folder without scripts, is one sentence and exit code 2."""
    with pytest.raises(ScriptInvalid, match=r"nothing.yaml does not exist\.$"):
        simulate([tmp_path / "nothing.yaml"], Options())
    with pytest.raises(ScriptInvalid, match=r"There are no scripted calls"):
        simulate([tmp_path], Options())


# -- --live against a local OpenAI-compatible server ---------------------------------------------


def _booking_model(messages: list[dict[str, Any]]) -> dict[str, Any]:
    """A tiny stand-in for the model: books the first offered time for Jane Doe, then says goodbye."""
    results = [json.loads(m["content"]) for m in messages if m["role"] == "tool"]
    last = messages[-1]
    if last["role"] == "tool":
        return {"content": results[-1]["spoken"]}
    if any(r.get("status") == "booked" for r in results):
        return {"call": ("end_call", {})}
    proposals = [r["proposal_id"] for r in results if "proposal_id" in r]
    if proposals:
        return {"call": ("confirm_proposal", {"proposal_id": proposals[-1]})}
    offers = [r["slots"] for r in results if r.get("slots")]
    if offers:
        slot = offers[-1][0]["slot_id"]
        return {
            "call": ("propose_booking", {"slot_id": slot, "name": "Jane Doe", "email": "jane@example.com"})
        }
    return {"call": ("check_availability", {"when": last["content"], "service": "cleaning"})}


class _ChatCompletions(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]]

    def do_POST(self) -> None:
        assert self.path == "/v1/chat/completions"
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.requests.append(body)
        decided = _booking_model(body["messages"])
        message: dict[str, Any] = {"role": "assistant", "content": decided.get("content")}
        if "call" in decided:
            name, arguments = decided["call"]
            message["tool_calls"] = [
                {
                    "id": f"call_{len(self.requests)}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            ]
        reply = json.dumps(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls" if "call" in decided else "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def openai_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-compatible chat completions endpoint on 127.0.0.1, and the requests it received."""
    requests: list[dict[str, Any]] = []
    handler = type("Handler", (_ChatCompletions,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_live_mode_lets_the_model_decide_and_judges_the_calendar(
    openai_server: tuple[str, list[dict[str, Any]]],
) -> None:
    """With --live the script's steps are ignored: the model over HTTP books, and the calendar is judged."""
    url, requests = openai_server
    settings = load_settings(openai_api_key="sk-test", openai_base_url=url, openai_model="fake-model")
    code, output = simulate([SHIPPED_SCRIPTS / "plain-booking.yaml"], Options(live=True, repeat=2), settings)
    assert code == 0, output
    assert "1 of 1 scripts passed (live)" in output and "pass^2 (2/2)" in output
    assert {r["model"] for r in requests} == {"fake-model"}
    assert any(t["function"]["name"] == "confirm_proposal" for t in requests[0]["tools"])


def test_live_mode_fails_a_model_that_books_the_wrong_thing(
    openai_server: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """In live mode the same expectations fail a model whose booking is not the one the caller wanted."""
    document = shipped("plain-booking")
    document["expect"]["calendar"]["created"][0]["email"] = "jane.doe@example.com"
    url, _ = openai_server
    settings = load_settings(openai_api_key="sk-test", openai_base_url=url)
    code, output = simulate([write(tmp_path, "other-email", document)], Options(live=True), settings)
    assert code == 1
    assert (
        "expected a booking created (cleaning Tue 2026-11-24 10:00 for Jane Doe <jane.doe@example.com>"
        in output
    )
