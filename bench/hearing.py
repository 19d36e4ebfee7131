"""How well the agent hears; writes bench/results/hearing.json (and prints it).

    .venv/bin/python bench/hearing.py

1. Recognition: offline commands (pocketsphinx with the tools' grammar) recognised right, and other
   speech taken for a command, over three voices and three noise levels.
2. Echo cancellation: the agent's voice through a simulated room taken out of the microphone, its
   cost, and what the VAD hears afterwards, with the user talking over the agent.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.perception.vad import CHUNK
from avagent.sim.scene import synthesize_scene

RESULTS = Path(__file__).resolve().parent / "results"


# --- 1. Recognition accuracy --------------------------------------------------------------------

ASR_COMMANDS = [
    "turn left", "turn right", "turn left ninety degrees", "turn right forty five degrees",
    "look at one hundred twenty degrees", "look at two hundred seventy degrees", "what time is it",
    "what is the time", "stop", "stop moving", "say good morning", "say thank you",
]  # fmt: skip
ASR_OTHER = [
    "open the window please", "hello how are you", "the weather is nice today", "banana",
    "play some music", "turn on the lights", "tell me a joke", "where are my keys",
    "what is your name", "good morning", "i like pizza", "call my mother",
]  # fmt: skip


def recognition_accuracy(resources: Resources) -> dict[str, Any]:
    """Offline commands recognised right (text and confidence), and speech that is no command
    turned into a tool call, over voices and noise levels."""
    from avagent.perception.asr.pocketsphinx import PocketsphinxRecognizer

    recognizer = PocketsphinxRecognizer(resources.phrases.jsgf(), processes=0)
    threshold = AgentConfig().policy.min_confidence
    rows: dict[str, dict[str, float]] = {}
    for snr in (None, 20.0, 10.0):
        right = total = false_calls = others = 0
        for voice in ("en-us", "en-us+f2", "en-us+m3"):
            for phrases, is_command in ((ASR_COMMANDS, True), (ASR_OTHER, False)):
                scene = synthesize_scene(phrases, voice=voice, snr_db=snr, gap_s=0.6, lead_s=0.5, seed=21)
                for phrase in scene.phrases:
                    first, last = round((phrase.start - 0.25) * 16000), round((phrase.end + 0.2) * 16000)
                    audio = scene.audio[first:last]
                    result = recognizer.transcribe_sync(audio, 16000)
                    sure = result.confidence is None or result.confidence >= threshold
                    called = bool(result.text) and sure and resources.phrases.match(result.text, exact=True)
                    if is_command:
                        total += 1
                        right += result.text == phrase.text and sure
                    else:
                        others += 1
                        false_calls += bool(called)
        rows["clean" if snr is None else f"{snr:g} dB"] = {
            "commands_right": round(right / total, 3),
            "other_speech_taken_as_a_command": round(false_calls / others, 3),
        }
    return {"voices": ["en-us", "en-us+f2", "en-us+m3"], "min_confidence": threshold, "by_noise": rows}


# --- 2. Echo cancellation -----------------------------------------------------------------------


def echo_cancellation() -> dict[str, Any]:
    """The agent's voice through a simulated room (60 ms delay, reverberant tail, direct-to-
    reverberant 6 dB) into the microphone, with the user talking over it twice at the echo's level:
    echo removed (dB, where only the echo is), cost per 10 ms, and what the VAD hears afterwards."""
    from avagent.perception.echo import EchoCanceller
    from avagent.perception.vad import detect_speech
    from avagent.sim.scene import noise, speak_all

    rng = np.random.default_rng(9)
    rate = 16000
    lines = [
        "Let me tell you a long story about a robot.",
        "It lived in a small flat by the sea.",
        "Every morning it watched the boats leave the harbour.",
        "One day it decided to follow them.",
    ]
    voices = speak_all([(text, "en-us", 160) for text in lines])
    far = np.concatenate([np.concatenate((v, np.zeros(4000, np.float32))) for v in voices]) * 0.5
    n = far.shape[0]
    taps = np.arange(int(0.3 * rate)) / rate
    tail = rng.standard_normal(taps.shape[0]) * np.exp(-taps * 6.9 / 0.25)
    tail[: int(0.06 * rate) + 1] = 0.0
    tail *= np.sqrt(10 ** (-6 / 10) / np.sum(tail**2))
    tail[int(0.06 * rate)] += 1.0
    echo = np.convolve(far, tail * 0.5)[:n]
    user = speak_all([("stop", "en-us+m3", 150), ("what time is it", "en-us+f2", 150)])
    near = np.zeros(n)
    spots = [(2.5, user[0]), (6.0, user[1])]
    for at, said in spots:
        start = int(at * rate)
        near[start : start + said.shape[0]] += said / np.abs(said).max() * np.abs(echo).max()
    mic = (echo + near + noise(n, "pink", rng) * 0.002).astype(np.float32)
    canceller = EchoCanceller(rate)
    out = np.zeros(n, dtype=np.float32)
    started = time.perf_counter()
    for i in range(0, n - CHUNK + 1, CHUNK):
        canceller.played(far[i : i + CHUNK].astype(np.float32))
        out[i : i + CHUNK] = canceller.process(mic[i : i + CHUNK])
    ms_per_frame = (time.perf_counter() - started) / max(canceller.frames, 1) * 1000
    echo_only = (np.abs(near) < 1e-4) & (np.abs(echo) > 0.005)
    echo_only[: 2 * rate] = False  # after the first two seconds of learning
    erle = 10 * np.log10(np.mean(mic[echo_only] ** 2) / np.mean(out[echo_only] ** 2))

    def overlaps(segments: list[tuple[float, float]], at: float, length: float) -> bool:
        return any(s < at + length and e > at for s, e in segments)

    heard_before, heard_after = detect_speech(mic, rate), detect_speech(out, rate)
    users = [(at, said.shape[0] / rate) for at, said in spots]
    return {
        "echo_removed_db": round(float(erle), 1),
        "ms_per_10ms_frame": round(ms_per_frame, 3),
        "vad_segments_without_cancellation": len(heard_before),
        "vad_segments_with_cancellation": len(heard_after),
        "user_heard_over_the_echo": f"{sum(overlaps(heard_after, a, d) for a, d in users)} of {len(users)}",
        "echo_heard_as_speech_with_cancellation": sum(
            not any(overlaps([seg], a, d) for a, d in users) for seg in heard_after
        ),
    }


def main() -> None:
    resources = Resources(AgentConfig())
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M")}
    print("1/2 recognition accuracy", file=sys.stderr)
    out["recognition"] = recognition_accuracy(resources)
    print("2/2 echo cancellation", file=sys.stderr)
    out["echo_cancellation"] = echo_cancellation()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hearing.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
