"""Sound cards for real: a private PulseAudio server with a null sink stands in for the speaker, and
its monitor for the microphone. PortAudio reaches it through ALSA's pulse plugin, exactly as it
reaches a laptop's sound card; what is played into the sink comes back from the monitor."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from avagent.agent.agent import Agent
from avagent.agent.resources import Resources
from avagent.core.recorder import EventRecorder
from avagent.io.virtual_speaker import VirtualSpeaker
from tests.conftest import SceneFactory

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sound_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PulseAudio server of our own with one null sink as default sink (its monitor: default
    source); yields the PULSE_SERVER address, which the test process and its children use."""
    assert shutil.which("pulseaudio"), "scripts/setup.sh --dev installs pulseaudio"
    runtime = tmp_path_factory.mktemp("pulse")
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "HOME": str(runtime)}
    subprocess.run(
        ["pulseaudio", "--daemonize=yes", "--exit-idle-time=-1", "-n", "--log-target=stderr",
         "--load=module-native-protocol-unix", "--load=module-null-sink sink_name=avtest rate=48000",
         "--load=module-always-sink"],
        env=env, check=True, capture_output=True, timeout=20,
    )  # fmt: skip
    server = f"unix:{runtime}/pulse/native"
    env["PULSE_SERVER"] = server
    for _ in range(50):
        if subprocess.run(["pactl", "info"], env=env, capture_output=True).returncode == 0:
            break
        time.sleep(0.1)
    subprocess.run(["pactl", "set-default-sink", "avtest"], env=env, check=True)
    subprocess.run(["pactl", "set-default-source", "avtest.monitor"], env=env, check=True)
    previous = os.environ.get("PULSE_SERVER")
    os.environ["PULSE_SERVER"] = server
    _reload_portaudio()
    try:
        yield server
    finally:
        subprocess.run(["pulseaudio", "--kill"], env=env, capture_output=True, check=False)
        if previous is None:
            os.environ.pop("PULSE_SERVER", None)
        else:
            os.environ["PULSE_SERVER"] = previous
        _reload_portaudio()


def _reload_portaudio() -> None:
    """PortAudio lists devices once, when it starts: make it look again."""
    if "sounddevice" in sys.modules:
        sd = sys.modules["sounddevice"]
        sd._terminate()
        sd._initialize()


def test_devices_lists_the_sound_server(sound_server: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "avagent", "devices"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert "pulse" in result.stdout


async def test_the_agent_hears_a_command_through_the_microphone(
    sound_server: str, make_scene: SceneFactory, resources: Resources
) -> None:
    import sounddevice as sd

    from avagent.io.audio_devices import MicrophoneSource

    scene, _ = make_scene(["turn left"], snr_db=30.0, lead_s=0.3, tail_s=1.0, seed=51)
    agent = Agent(resources=resources, realtime=True)
    recorder = EventRecorder(agent.bus)
    agent.add_stage(recorder)
    VirtualSpeaker(agent.playback, agent.clock)
    microphone = MicrophoneSource(agent.bus, agent.clock, device="pulse", sample_rate=48000, block_ms=20)
    run = asyncio.create_task(agent.run(microphone))
    try:
        await asyncio.sleep(0.8)
        sd.play(scene.audio, scene.sample_rate, device="pulse")  # into the null sink: the "room"
        for _ in range(100):
            if any(e.type == "speaking_started" for e in recorder.events):
                break
            await asyncio.sleep(0.1)
    finally:
        await agent.stop()
        await run
    calls = [e.to_dict() for e in recorder.events if e.type == "tool_call"]
    assert [(c["name"], c["args"]) for c in calls] == [("turn", {"direction": "left", "degrees": 90})]
    assert not [e for e in recorder.events if e.type in ("error", "overflow")]


async def test_the_speaker_plays_the_agents_voice(
    sound_server: str, resources: Resources, tmp_path: Path
) -> None:
    import sounddevice as sd
    import soundfile as sf

    from avagent.core.events import Say
    from avagent.io.audio_devices import DeviceSpeaker
    from avagent.io.sinks import WavSink

    agent = Agent(resources=resources, realtime=True, playback_rate=48000)
    copy = WavSink(tmp_path / "played.wav", 48000)
    speaker = DeviceSpeaker(agent.playback, agent.clock, device="pulse", sinks=[copy.write])
    heard = sd.rec(int(3.0 * 48000), samplerate=48000, channels=1, device="pulse", dtype="float32")
    speaker.start()
    speech_out = asyncio.create_task(agent.parts.speech_out.run())
    try:
        await asyncio.sleep(0.3)
        await agent.bus.publish(Say(t=0.0, text="Hello from the speaker."))
        await asyncio.sleep(2.7)
    finally:
        speaker.stop()
        speaker.stop()  # idempotent
        agent.bus.close()
        await speech_out
        copy.close()
    sd.wait()
    assert float(np.sqrt(np.mean(heard[:, 0] ** 2))) > 0.01, "the monitor heard the agent's voice"
    played, rate = sf.read(str(tmp_path / "played.wav"), dtype="float32")
    assert rate == 48000
    assert np.abs(played).max() > 0.05, "and the copy of what was played holds it too"


async def _answer_out_loud(
    resources: Resources, make_scene: SceneFactory, *, cancel_echo: bool, cut_in: bool
) -> list[str]:
    """The agent answers a question at length through the speaker, which its microphone hears (the
    null sink's monitor is a perfect echo); optionally the user talks over the answer.
    Returns the types of the events about the agent's voice."""
    import sounddevice as sd

    from avagent.io.audio_devices import DeviceSpeaker, MicrophoneSource
    from avagent.perception.echo import EchoCanceller
    from tests.test_agent_file import Chatty

    # The user as loud at the microphone as the agent's own voice (espeak-ng peaks around 0.65).
    question, _ = make_scene(["what time is it"], snr_db=30.0, lead_s=0.2, tail_s=0.5, seed=52, level=0.6)
    stop, _ = make_scene(["stop talking please"], snr_db=30.0, lead_s=0.2, tail_s=0.5, seed=53, level=0.6)
    echo = EchoCanceller(48000) if cancel_echo else None
    agent = Agent(resources=resources, realtime=True, playback_rate=48000, policy=Chatty(), echo=echo)
    recorder = EventRecorder(agent.bus)
    agent.add_stage(recorder)
    speaker = DeviceSpeaker(
        agent.playback, agent.clock, device="pulse", block_ms=20, sinks=[echo.played] if echo else []
    )
    microphone = MicrophoneSource(agent.bus, agent.clock, device="pulse", sample_rate=48000, block_ms=20)
    speaker.start()
    run = asyncio.create_task(agent.run(microphone))
    try:
        await asyncio.sleep(0.8)
        sd.play(question.audio, question.sample_rate, device="pulse")
        await asyncio.sleep(4.0)  # the answer has been playing for about two seconds
        if cut_in:
            sd.play(stop.audio, stop.sample_rate, device="pulse")
        await asyncio.sleep(4.0)
    finally:
        speaker.stop()
        await agent.stop()
        await run
    return [e.type for e in recorder.events if e.type in ("speaking_started", "pause_speaking", "barge_in")]


async def test_without_echo_cancellation_the_agent_stutters_on_its_own_voice(
    sound_server: str, make_scene: SceneFactory, resources: Resources
) -> None:
    # The control: this set-up really does feed the agent's voice back into its microphone. Hearing
    # itself, the agent holds its voice, which ends the "speech" it heard, so it resumes, and holds
    # again: it stutters through its own answer.
    voice = await _answer_out_loud(resources, make_scene, cancel_echo=False, cut_in=False)
    assert voice.count("pause_speaking") >= 2


async def test_with_echo_cancellation_it_talks_on_and_the_user_can_still_cut_in(
    sound_server: str, make_scene: SceneFactory, resources: Resources
) -> None:
    voice = await _answer_out_loud(resources, make_scene, cancel_echo=True, cut_in=False)
    assert "speaking_started" in voice
    assert "pause_speaking" not in voice, "the agent never takes its own voice for the user"
    assert "barge_in" not in voice
    voice = await _answer_out_loud(resources, make_scene, cancel_echo=True, cut_in=True)
    assert "barge_in" in voice, "the user talking over the answer still cuts it"
