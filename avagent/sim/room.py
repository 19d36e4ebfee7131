"""Spatial scenes with known truth: people speaking from known directions in a simulated room.

A shoebox room with a chosen reverberation time (pyroomacoustics' image-source simulation, its
absorption from the inverse Sabine formula), a microphone array in it, talkers placed at known
azimuths and distances, and uncorrelated sensor noise at a chosen signal-to-noise ratio. Tests
and benchmarks make their multichannel recordings here; pyroomacoustics is a test and benchmark
dependency, imported only when a room is simulated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from avagent.perception.arrays import MicArray
from avagent.sim.scene import speak


@dataclass(frozen=True, slots=True)
class Utterance:
    """Something said from a direction: ``azimuth_deg`` counter-clockwise from the array's +x axis."""

    text: str
    azimuth_deg: float
    voice: str = "en-us"
    distance_m: float = 1.5


@dataclass(frozen=True, slots=True)
class PlacedUtterance:
    text: str
    azimuth_deg: float
    start: float
    end: float
    """Seconds from the start of the recording where the dry voice begins and ends."""


@dataclass(frozen=True)
class RoomRecording:
    audio: np.ndarray
    """``(samples, mics)`` float32; channel i is microphone i."""
    sample_rate: int
    utterances: list[PlacedUtterance]
    rt60_s: float
    snr_db: float | None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return int(self.audio.shape[0]) / self.sample_rate

    def write(self, path: str | Path) -> Path:
        """Write as a 16-bit multichannel WAV file."""
        p = Path(path)
        sf.write(str(p), self.audio, self.sample_rate, subtype="PCM_16")
        return p


@dataclass(frozen=True, slots=True)
class Room:
    size_m: tuple[float, float, float] = (7.0, 6.0, 3.0)
    array_at_m: tuple[float, float, float] = (3.4, 2.9, 1.0)
    talker_height_m: float = 0.25
    """How much higher than the array a talker's mouth is."""


def simulate_room(
    utterances: Sequence[Utterance],
    array: MicArray,
    *,
    rt60_s: float = 0.3,
    snr_db: float | None = 20.0,
    room: Room | None = None,
    lead_s: float = 1.0,
    gap_s: float = 1.5,
    tail_s: float = 1.0,
    noise_azimuth_deg: float | None = None,
    noise_only_s: float = 0.0,
    seed: int = 0,
    sample_rate: int = 16000,
    rate_wpm: int = 150,
) -> RoomRecording:
    """Say ``utterances`` one after another (``gap_s`` apart) in a reverberant room and record them
    with ``array``. ``snr_db`` sets uncorrelated white sensor noise relative to the reverberant
    speech at microphone 0; ``noise_azimuth_deg`` adds a directional white-noise source (a fan)
    as loud as the speech. With no utterances, ``noise_only_s`` seconds are recorded."""
    import pyroomacoustics as pra

    layout = room or Room()
    rng = np.random.default_rng(seed)
    absorption, max_order = pra.inverse_sabine(rt60_s, list(layout.size_m))
    shoebox = pra.ShoeBox(
        list(layout.size_m),
        fs=sample_rate,
        materials=pra.Material(absorption),
        max_order=min(int(max_order), 40),
    )
    centre = np.array(layout.array_at_m)
    shoebox.add_microphone_array((array.positions + centre).T)

    placed: list[PlacedUtterance] = []
    t = lead_s
    for u in utterances:
        voice = speak(u.text, voice=u.voice, rate_wpm=rate_wpm, sample_rate=sample_rate)
        voice = voice / (float(np.max(np.abs(voice))) or 1.0)
        where = _position(centre, u.azimuth_deg, u.distance_m, layout)
        shoebox.add_source(where, signal=voice, delay=t)
        end = t + voice.shape[0] / sample_rate
        placed.append(PlacedUtterance(u.text, u.azimuth_deg % 360.0, t, end))
        t = end + gap_s
    total = (t - gap_s + tail_s) if utterances else lead_s + noise_only_s + tail_s
    n = round(total * sample_rate)
    if noise_azimuth_deg is not None:
        fan = rng.standard_normal(n).astype(np.float64) * 0.3
        shoebox.add_source(_position(centre, noise_azimuth_deg, 2.0, layout), signal=fan, delay=0.0)
    if not shoebox.sources:
        audio = np.zeros((array.mics, n))
    else:
        shoebox.simulate()
        audio = np.asarray(shoebox.mic_array.signals, dtype=np.float64)
    audio = _fit(audio, n)

    extra: dict[str, float] = {}
    reference = _speech_power(audio[0], placed, sample_rate)
    if reference is None:
        reference = float(np.mean(audio[0] ** 2)) or 1e-4
    if snr_db is not None:
        sigma = math.sqrt(reference / 10.0 ** (snr_db / 10.0))
        audio = audio + rng.standard_normal(audio.shape) * sigma
        extra["noise_rms"] = sigma
    peak = float(np.max(np.abs(audio))) or 1.0
    audio = audio * (0.5 / peak)
    return RoomRecording(
        np.ascontiguousarray(audio.T.astype(np.float32)), sample_rate, placed, rt60_s, snr_db, extra
    )


def _position(centre: np.ndarray, azimuth_deg: float, distance_m: float, room: Room) -> list[float]:
    a = math.radians(azimuth_deg)
    where = centre + np.array([distance_m * math.cos(a), distance_m * math.sin(a), room.talker_height_m])
    size = np.array(room.size_m)
    if np.any(where < 0.3) or np.any(where > size - 0.3):
        raise ValueError(f"a talker at {azimuth_deg} deg, {distance_m} m is outside the room")
    return [float(v) for v in where]


def _fit(audio: np.ndarray, n: int) -> np.ndarray:
    if audio.shape[1] >= n:
        return audio[:, :n]
    return np.pad(audio, ((0, 0), (0, n - audio.shape[1])))


def _speech_power(channel: np.ndarray, placed: list[PlacedUtterance], rate: int) -> float | None:
    spans = [channel[round(p.start * rate) : round(p.end * rate)] for p in placed]
    if not spans:
        return None
    joined = np.concatenate(spans)
    return float(np.mean(joined**2)) if joined.size else None
