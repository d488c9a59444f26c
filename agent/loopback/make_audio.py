"""Regenerates the caller's recorded lines in `fixtures/audio/` (run `python -m agent.loopback.make_audio`).

Tests cannot reach a real caller, so the fake Twilio caller plays real speech made by espeak-ng,
converted by sox to what Twilio streams: 8 kHz mono μ-law, in a WAV so it can be listened to.
espeak writes 22.05 kHz with ~0.4 s of trailing silence; both ends are trimmed so "the caller
stopped speaking" is the end of the file. Pauses inside a line (commas, full stops: 0.2-0.4 s from
espeak) are cut to 0.06 s and the voice runs at 165 words a minute, so Pipecat's Silero VAD (at
stop_secs 0.2) hears each file as one utterance, hence one STT upload and one queued transcript
in the fake OpenAI; at 150 words a minute or 0.12 s pauses some lines split in two.
`test_fakes` checks this for every line, so rerun it after changing a line or a setting.
Dithering is off so the output is byte-for-byte reproducible. Needs the `espeak-ng` and `sox`
commands (Debian packages).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

AUDIO_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "audio"

LINES: dict[str, str] = {
    "book_cleaning.wav": "Hi, I'd like to book a cleaning next Tuesday morning.",
    "name_email.wav": "My name is Jane Doe, that's jane at example dot com.",
    "yes.wav": "Yes, please.",
    "no.wav": "No, that's wrong.",
    "human.wav": "Can I talk to a real person?",
    "goodbye.wav": "That's all, thank you. Goodbye.",
    "tuesday_afternoon.wav": "What do you have next Tuesday afternoon?",
    "hello.wav": "Hello?",
}

VOICE = "en-us"
WORDS_PER_MINUTE = 165
# Anything quieter than this (0.5 % of full scale) counts as silence when trimming.
SILENCE_THRESHOLD = "0.5%"
LONGEST_PAUSE_SECONDS = "0.06"


def make_line(text: str, target: Path) -> None:
    """Speak `text` with espeak-ng and write it to `target` as trimmed 8 kHz mono μ-law WAV."""
    with tempfile.TemporaryDirectory() as scratch:
        spoken = Path(scratch) / "espeak.wav"
        subprocess.run(
            ["espeak-ng", "-v", VOICE, "-s", str(WORDS_PER_MINUTE), "-w", str(spoken), text], check=True
        )
        subprocess.run(
            [
                "sox", "-D", str(spoken),
                "-r", "8000", "-c", "1", "-e", "mu-law", "-b", "8", str(target),
                # Drop leading silence; cut every pause longer than LONGEST_PAUSE_SECONDS down to it.
                "silence", "-l", "1", "0.01", SILENCE_THRESHOLD,
                "-1", LONGEST_PAUSE_SECONDS, SILENCE_THRESHOLD,
                # Then drop what is left of the trailing silence.
                "reverse", "silence", "1", "0.01", SILENCE_THRESHOLD, "reverse",
            ],
            check=True,
        )  # fmt: skip


def make_all(lines: dict[str, str] = LINES, directory: Path = AUDIO_DIR) -> list[Path]:
    """Regenerate every line into `directory`; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in lines.items():
        make_line(text, directory / name)
        written.append(directory / name)
    return written


def main() -> None:
    for path in make_all():
        sys.stdout.write(f"{path.relative_to(AUDIO_DIR.parents[1])}\n")


if __name__ == "__main__":
    main()
