"""Synthetic scenes with known ground truth: spoken phrases, pauses and noise at a chosen SNR.

The demo and the tests make their audio here, offline, with espeak-ng: the exact start and end of
every phrase is known, so voice activity, turn-taking and recognition can be checked against it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from avagent.core.messages import to_int16
from avagent.sim.noises import babble, music
from avagent.sim.voices import speak, speak_all, trim_silence

__all__ = ["Scene", "SpokenPhrase", "noise", "speak", "speak_all", "synthesize_scene", "trim_silence"]

NoiseKind = Literal["white", "pink", "brown", "babble", "music"]


@dataclass(frozen=True, slots=True)
class SpokenPhrase:
    text: str
    start: float
    end: float
    """Seconds from the start of the scene where the voice begins and ends."""


@dataclass(frozen=True)
class Scene:
    audio: np.ndarray
    """Mono float32."""
    sample_rate: int
    phrases: list[SpokenPhrase]
    snr_db: float | None

    @property
    def duration(self) -> float:
        return int(self.audio.shape[0]) / self.sample_rate

    def write(self, path: str | Path, subtype: str = "PCM_16") -> Path:
        p = Path(path)
        data = to_int16(self.audio) if subtype == "PCM_16" else self.audio
        sf.write(str(p), data, self.sample_rate, subtype=subtype)
        return p


def noise(n: int, kind: NoiseKind, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """Unit-power noise of the given colour, or babble (other voices) or music (avagent/sim/noises.py)."""
    if kind == "babble":
        return babble(n, rng, sample_rate)
    if kind == "music":
        return music(n, rng, sample_rate)
    white = rng.standard_normal(n)
    if kind == "white":
        shaped = white
    else:
        spectrum = np.fft.rfft(white)
        f = np.arange(spectrum.shape[0], dtype=np.float64)
        f[0] = 1.0
        spectrum /= np.sqrt(f) if kind == "pink" else f
        spectrum[0] = 0.0
        shaped = np.fft.irfft(spectrum, n)
    shaped = shaped - shaped.mean()
    return np.asarray(shaped / (np.sqrt(np.mean(shaped**2)) + 1e-12), dtype=np.float32)


def synthesize_scene(
    phrases: Sequence[str],
    *,
    lead_s: float = 1.0,
    gap_s: float = 2.0,
    tail_s: float = 1.5,
    snr_db: float | None = 20.0,
    noise_kind: NoiseKind = "pink",
    level: float = 0.3,
    seed: int = 0,
    voice: str = "en-us",
    rate_wpm: int | Sequence[int] = 150,
    sample_rate: int = 16000,
) -> Scene:
    """Phrases spoken one after another with ``gap_s`` of pause, in noise at ``snr_db`` (relative
    to the speech's power; None for no noise). ``level`` is the speech's peak amplitude;
    ``rate_wpm`` is one speaking rate for all phrases or one per phrase."""
    rates = [rate_wpm] * len(phrases) if isinstance(rate_wpm, int) else list(rate_wpm)
    spoken = speak_all([(p, voice, rate) for p, rate in zip(phrases, rates, strict=True)], sample_rate)
    total = lead_s + sum(s.shape[0] / sample_rate for s in spoken) + gap_s * max(0, len(spoken) - 1) + tail_s
    audio = np.zeros(round(total * sample_rate), dtype=np.float32)
    placed: list[SpokenPhrase] = []
    t = lead_s
    speech_power: list[float] = []
    for text, voice_audio in zip(phrases, spoken, strict=True):
        peak = float(np.max(np.abs(voice_audio))) or 1.0
        scaled = voice_audio * (level / peak)
        i = round(t * sample_rate)
        audio[i : i + scaled.shape[0]] += scaled
        placed.append(SpokenPhrase(text, i / sample_rate, (i + scaled.shape[0]) / sample_rate))
        speech_power.append(float(np.mean(scaled**2)))
        t = (i + scaled.shape[0]) / sample_rate + gap_s
    if snr_db is not None and speech_power:
        rng = np.random.default_rng(seed)
        power = float(np.mean(speech_power))
        gain = np.float32(np.sqrt(power / 10 ** (snr_db / 10)))
        audio += noise(audio.shape[0], noise_kind, rng, sample_rate) * gain
    np.clip(audio, -1.0, 1.0, out=audio)
    return Scene(audio, sample_rate, placed, snr_db)
