"""How well and how fast the packaged whisper model hears free speech; writes
bench/results/hearing_whisper.json (and prints it). ``bench/hearing.py`` includes ``measure()``.

    .venv/bin/python bench/hearing_whisper.py [--quick]

1. Word error rate on synthesised sentences (avagent.sim.sentences, three espeak-ng voices), clean
   and in pink noise at 20 dB and 10 dB, decoded through the recogniser's worker process.
2. Decoding time per second of audio through the worker, and for the bare faster-whisper model in
   this process on the same clips with the same settings (the baseline, measured in the same run:
   the ratio compares across machines), and load times.
3. Latency from the end of the user's turn to the transcript, with and without early recognition
   (the turn so far decoded at the pause, while the end-of-turn silence runs), and the longest the
   event loop waited meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avagent.core.bus import Bus
from avagent.core.events import Transcript, TurnEnded
from avagent.perception.asr.stage import Transcriber
from avagent.perception.asr.whisper import WhisperRecognizer
from avagent.perception.asr.whisper_decoding import load_model, transcribe
from avagent.perception.asr.whisper_model import locate, verify
from avagent.perception.listening import SpeechSoFar
from avagent.sim.scene import synthesize_scene
from avagent.sim.sentences import SENTENCES, word_error_rate

RESULTS = Path(__file__).resolve().parent / "results"
VOICES = ("en-us", "en-us+f2", "en-us+m3")
RATE = 16000
HANGOVER_S = 0.3
"""The listener's default end-of-turn silence (``turns.hangover_ms``)."""

Clip = tuple[str, str, np.ndarray]  # sentence, voice, audio


def clips(sentences: list[str], snr_db: float | None) -> list[Clip]:
    """Each sentence spoken by one of the voices in turn, cut with the context the listener gives."""
    found: list[Clip] = []
    for v, voice in enumerate(VOICES):
        mine = sentences[v :: len(VOICES)]
        if not mine:
            continue
        scene = synthesize_scene(mine, voice=voice, snr_db=snr_db, gap_s=0.8, lead_s=0.5, seed=11 + v)
        for phrase in scene.phrases:
            first, last = round((phrase.start - 0.25) * RATE), round((phrase.end + 0.2) * RATE)
            found.append((phrase.text, voice, scene.audio[first:last]))
    return found


def decode_both(recognizer: WhisperRecognizer, model: Any | None, chosen: list[Clip]) -> dict[str, Any]:
    """Transcripts and seconds of decoding per second of audio through the worker (request to
    answer) and, when ``model`` is given, by the bare model in this process on the same clip right
    after (the baseline: both see the same load on the machine)."""
    worker: list[str] = []
    here: list[str] = []
    spent = {"worker": 0.0, "bare": 0.0}
    for _sentence, _voice, audio in chosen:
        start = time.perf_counter()
        worker.append(recognizer.transcribe_sync(audio, RATE).text)
        spent["worker"] += time.perf_counter() - start
        if model is not None:
            start = time.perf_counter()
            here.append(transcribe(model, audio.astype(np.float32), "en", 1))
            spent["bare"] += time.perf_counter() - start
    audio_s = sum(a.shape[0] / RATE for _s, _v, a in chosen)
    return {"worker": worker, "bare": here, "per_s": {k: v / audio_s for k, v in spent.items()}}


async def _turn_latency(recognizer: WhisperRecognizer, audio: np.ndarray, early: bool) -> tuple[float, float]:
    """Seconds from the end of the turn to its transcript, and the longest loop stall meanwhile."""
    bus = Bus()
    stage = Transcriber(bus, recognizer, early=early)
    out = bus.subscribe(Transcript, name="bench.transcripts")
    task = asyncio.create_task(stage.run())
    stall = 0.0
    ticking = True

    async def ticker() -> None:
        nonlocal stall
        while ticking:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            stall = max(stall, time.perf_counter() - before - 0.005)

    tick = asyncio.create_task(ticker())
    end = audio.shape[0] / RATE
    await bus.publish(SpeechSoFar(start=0.0, end=end, t=end + 0.1, audio=audio))
    await asyncio.sleep(HANGOVER_S)
    start = time.perf_counter()
    await bus.publish(TurnEnded(t=end + HANGOVER_S, turn=1, start=0.0, end=end, audio=audio))
    await out.get()
    latency = time.perf_counter() - start
    ticking = False
    await tick
    bus.close()
    await task
    return latency, stall


async def _idle_stall(seconds: float) -> float:
    """The longest the loop waits beyond a 5 ms sleep with nothing else to do (the baseline)."""
    stall = 0.0
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        before = time.perf_counter()
        await asyncio.sleep(0.005)
        stall = max(stall, time.perf_counter() - before - 0.005)
    return stall


def latency(recognizer: WhisperRecognizer, chosen: list[Clip]) -> dict[str, Any]:
    """End of turn to transcript (median), with and without early recognition."""
    figures: dict[str, Any] = {"hangover_s": HANGOVER_S, "utterances": len(chosen)}
    idle = max(asyncio.run(_idle_stall(1.0)) for _ in chosen)
    figures["idle_loop_max_stall_ms"] = round(1000 * idle, 2)
    for early in (False, True):
        results = [asyncio.run(_turn_latency(recognizer, audio, early)) for _s, _v, audio in chosen]
        key = "early" if early else "at_turn_end"
        figures[f"{key}_turn_end_to_transcript_s"] = round(statistics.median(r[0] for r in results), 4)
        figures[f"{key}_speech_end_to_transcript_s"] = round(
            HANGOVER_S + statistics.median(r[0] for r in results), 4
        )
        figures[f"{key}_loop_max_stall_ms"] = round(1000 * max(r[1] for r in results), 2)
    return figures


def measure(quick: bool = False) -> dict[str, Any]:
    """Every figure of this benchmark (``quick``: 9 sentences, clean and 10 dB only)."""
    sentences = SENTENCES[:9] if quick else SENTENCES
    levels: list[float | None] = [None, 10.0] if quick else [None, 20.0, 10.0]
    model = locate(None)
    start = time.perf_counter()
    verify(model)
    verify_s = time.perf_counter() - start
    recognizer = WhisperRecognizer()
    start = time.perf_counter()
    asyncio.run(recognizer.start())
    worker_load_s = time.perf_counter() - start
    start = time.perf_counter()
    local = load_model({"folder": model.folder, "compute_type": "int8", "threads": 2})
    bare_load_s = time.perf_counter() - start
    figures: dict[str, Any] = {
        "model": model.label,
        "sentences": len(sentences),
        "voices": list(VOICES),
        "settings": {"compute_type": "int8", "threads": 2, "beam_size": 1},
        "load_s": {
            "verify_sha256": round(verify_s, 3),
            "worker": round(worker_load_s, 3),
            "bare": round(bare_load_s, 3),
        },
        "wer": {},
        "decode_s_per_audio_s": {},
    }
    try:
        for snr in levels:
            name = "clean" if snr is None else f"{snr:g}dB"
            chosen = clips(sentences, snr)
            said = [c[0] for c in chosen]
            found = decode_both(recognizer, local if snr is None else None, chosen)
            texts, per_s = found["worker"], found["per_s"]["worker"]
            figures["wer"][name] = round(word_error_rate(said, texts), 4)
            figures["decode_s_per_audio_s"][name] = round(per_s, 4)
            if snr is None:
                base_per_s = found["per_s"]["bare"]
                figures["baseline_bare_in_process"] = {
                    "wer_clean": round(word_error_rate(said, found["bare"]), 4),
                    "decode_s_per_audio_s": round(base_per_s, 4),
                }
                figures["worker_over_bare"] = round(per_s / base_per_s, 3)
                figures["examples"] = [
                    {"said": c[0], "heard": t} for c, t in zip(chosen[:4], texts, strict=False)
                ]
                figures["latency"] = latency(recognizer, chosen[: 4 if quick else 12])
    finally:
        asyncio.run(recognizer.stop())
    return figures


def main() -> None:
    figures = measure(quick="--quick" in sys.argv)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hearing_whisper.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
