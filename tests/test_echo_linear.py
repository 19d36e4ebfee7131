"""The linear echo filter (perception/echo_linear.py) learns a room's echo path from the agent's
voice quickly and never makes what the microphone heard louder."""

from __future__ import annotations

import numpy as np

from avagent.perception.echo_linear import BLOCK, LinearEchoFilter
from avagent.sim.echo_room import speaker_echo_path
from avagent.sim.voices import speak


class EvenSteps(LinearEchoFilter):
    """The same filter with the step spread evenly over its partitions (plain PBFDAF)."""

    def _shares(self) -> np.ndarray:
        return np.ones(self.partitions)


def _residual(linear: LinearEchoFilter, played: np.ndarray, heard: np.ndarray) -> np.ndarray:
    residual = np.zeros_like(heard)
    for i in range(0, heard.shape[0] - BLOCK + 1, BLOCK):
        _, residual[i : i + BLOCK] = linear.filter(played[i : i + BLOCK], heard[i : i + BLOCK])
        if np.mean(played[i : i + BLOCK] ** 2) > 1e-7:
            linear.adapt(residual[i : i + BLOCK])
    return residual


def _hopping_voice(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise whose 600 Hz band hops every 100 ms, as a voice moves from one formant to the next."""
    rng = np.random.default_rng(seed)
    segment = 1600
    frequencies = np.fft.rfftfreq(segment, 1 / 16000)
    parts = []
    for _ in range(round(seconds * 10)):
        low = rng.uniform(200.0, 6000.0)
        spectrum = np.fft.rfft(rng.standard_normal(segment))
        spectrum[(frequencies < low) | (frequencies > low + 600.0)] = 0.0
        parts.append(np.fft.irfft(spectrum, segment) * 0.3)
    return np.concatenate(parts)


def test_a_voice_moving_between_formants_never_comes_out_louder_than_it_went_in() -> None:
    played = _hopping_voice(3.0)
    heard = np.convolve(played, speaker_echo_path() * 0.5)[: played.shape[0]]
    residual = _residual(LinearEchoFilter(), played, heard)
    blocks = slice(50 * BLOCK, None)  # after the first half second
    per_block = (residual[blocks] ** 2).reshape(-1, BLOCK).sum(axis=1)
    mic = (heard[blocks] ** 2).reshape(-1, BLOCK).sum(axis=1)
    ratio_db = 10 * np.log10(per_block / mic)
    # Normalised by a power that lags a bin's rise, the step overshoots and the residual comes out
    # up to 8 dB louder than the microphone in a hundred blocks.
    assert ratio_db.max() < 0.0, "no block of the residual is louder than the microphone"
    assert ratio_db.mean() < -10.0, "and the echo is learnt"


def test_the_steps_go_where_the_echo_is_and_the_agents_voice_is_learnt_sooner() -> None:
    voice = speak("Let me tell you a long story. It begins on a quiet morning.", voice="en-us") * 0.5
    heard = np.convolve(voice, speaker_echo_path())[: voice.shape[0]]
    heard += np.random.default_rng(3).standard_normal(heard.shape[0]) * 3e-4
    first = slice(BLOCK * 50, BLOCK * 200)  # 0.5 to 2 s into the answer

    def learnt_db(linear: LinearEchoFilter) -> float:
        residual = _residual(linear, voice, heard)
        return float(10 * np.log10(np.sum(heard[first] ** 2) / np.sum(residual[first] ** 2)))

    proportionate = LinearEchoFilter()
    assert learnt_db(proportionate) > learnt_db(EvenSteps()) + 1.0
    shares = proportionate._shares()
    assert np.isclose(shares.sum(), proportionate.partitions), "the step as a whole stays the same"
    assert shares[:3].max() > 2.0 > 0.5 <= shares.min(), "most to the direct sound, some to every partition"
