"""Synthesised voices for scenes with known truth: espeak-ng in a fresh process.

python -m avagent.sim.voices RATE   (JSON lines in on stdin, an npz of arrays out on stdout)
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import soxr

from avagent.io.tts.espeak import EspeakSynthesizer


def speak(text: str, *, voice: str = "en-us", rate_wpm: int = 150, sample_rate: int = 16000) -> np.ndarray:
    """``text`` spoken by espeak-ng, trimmed of leading and trailing silence."""
    return speak_all([(text, voice, rate_wpm)], sample_rate)[0]


def speak_all(lines: Sequence[tuple[str, str, int]], sample_rate: int = 16000) -> list[np.ndarray]:
    """Each ``(text, voice, rate_wpm)`` spoken, trimmed of silence, always the same for the same lines.

    espeak-ng's pitch flutter runs on from one synthesis to the next inside a process (a static
    counter with no reset), so the same text sounds slightly different depending on what was said
    before. Scenes are ground truth: they are made in a fresh process each time.
    """
    request = json.dumps([list(line) for line in lines])
    result = subprocess.run(
        [sys.executable, "-m", __name__, str(sample_rate)],
        input=request.encode(),
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"speech synthesis failed: {result.stderr.decode(errors='replace').strip()[-300:]}"
        )
    with np.load(io.BytesIO(result.stdout)) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(lines))]


def _speak_here(lines: list[list[Any]], sample_rate: int) -> list[np.ndarray]:
    out = []
    for text, voice, rate in lines:
        synth = EspeakSynthesizer(str(voice), int(rate))
        audio = synth.synthesize_sync(str(text))
        if sample_rate != synth.sample_rate:
            audio = np.asarray(soxr.resample(audio, synth.sample_rate, sample_rate), dtype=np.float32)
        out.append(trim_silence(audio))
    return out


def trim_silence(audio: np.ndarray, threshold: float = 1e-3) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio[:0]
    return audio[loud[0] : loud[-1] + 1]


if __name__ == "__main__":
    # The fresh process of ``speak_all``.
    spoken = _speak_here(json.loads(sys.stdin.buffer.read()), int(sys.argv[1]))
    buffer = io.BytesIO()
    np.savez(buffer, *spoken)
    sys.stdout.buffer.write(buffer.getvalue())
