"""Noises that are harder than coloured noise: babble (other people talking) and music.

Both are synthesised, offline and the same for the same seed: babble is several espeak-ng voices
saying other sentences at once, music is chords and a melody of harmonic tones with note
envelopes. Babble is the hardest noise for a recogniser, because it is speech.
"""

from __future__ import annotations

import functools

import numpy as np

from avagent.sim.voices import speak_all

BABBLE_LINES = (
    "the meeting moved to thursday afternoon because the room was taken",
    "she said the train would be late again this evening",
    "could you pass me the salt and the pepper please",
    "we walked along the river until the sun went down",
    "the children played football in the garden after school",
    "my brother is coming to visit us next weekend",
    "there is a new bakery on the corner of our street",
    "he forgot his umbrella and got completely soaked",
)
BABBLE_VOICES = ("en-us+m1", "en-gb+f2", "en-us+m4", "en-gb-x-rp+f4", "en-029+m2", "en-us+f5")


@functools.lru_cache(maxsize=2)
def _babble_bank(sample_rate: int) -> np.ndarray:
    """About twenty seconds of six voices talking at once (made once per process)."""
    lines = []
    for i, voice in enumerate(BABBLE_VOICES):
        for j in range(len(BABBLE_LINES)):
            lines.append((BABBLE_LINES[(i * 3 + j) % len(BABBLE_LINES)], voice, 140 + 10 * (i % 4)))
    spoken = speak_all(lines, sample_rate)
    per_voice = len(BABBLE_LINES)
    tracks = []
    for i in range(len(BABBLE_VOICES)):
        parts = []
        for said in spoken[i * per_voice : (i + 1) * per_voice]:
            parts.append(said / (np.sqrt(np.mean(said**2)) + 1e-9))
            parts.append(np.zeros(int(0.15 * sample_rate), dtype=np.float32))  # a breath
        tracks.append(np.concatenate(parts))
    length = min(t.shape[0] for t in tracks)
    # Each talker starts at a different point of their own speech, so no two line up.
    mixed = sum(np.roll(t[:length], (length * i) // len(tracks)) for i, t in enumerate(tracks))
    return np.asarray(mixed, dtype=np.float32)


def babble(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """``n`` samples of unit-power babble, from a random point of the bank (looped)."""
    bank = _babble_bank(sample_rate)
    start = int(rng.integers(0, bank.shape[0]))
    out = np.take(bank, np.arange(start, start + n) % bank.shape[0]).astype(np.float64)
    return _unit_power(out)


_CHORDS = ((0, 4, 7), (-3, 0, 4), (-7, -3, 0), (-5, -1, 2))
"""I, vi, IV, V as semitones from the key note."""


def music(n: int, rng: np.random.Generator, sample_rate: int = 16000) -> np.ndarray:
    """``n`` samples of unit-power music: a chord progression with a bass and a melody, each note
    a few harmonics with an attack and a decay, at a random tempo and key."""
    out = np.zeros(n, dtype=np.float64)
    key = 196.0 * 2 ** (int(rng.integers(0, 12)) / 12)
    beat = float(rng.uniform(0.3, 0.6))
    step = max(1, int(beat * sample_rate))
    for k, at in enumerate(range(0, n, step)):
        chord = _CHORDS[(k // 4) % len(_CHORDS)]
        length = min(n - at, step * (4 if k % 4 == 0 else 1))
        if k % 4 == 0:
            for semitone in chord:
                _add_note(out, at, length, key * 2 ** (semitone / 12), 0.25, sample_rate)
            _add_note(out, at, length, key / 2 * 2 ** (chord[0] / 12), 0.4, sample_rate)
        melody = chord[int(rng.integers(0, 3))] + 12 * int(rng.integers(0, 2))
        _add_note(out, at, min(n - at, step), key * 2 ** (melody / 12), 0.35, sample_rate)
    return _unit_power(out)


def _add_note(out: np.ndarray, at: int, length: int, f0: float, gain: float, sample_rate: int) -> None:
    t = np.arange(length) / sample_rate
    envelope = np.minimum(t / 0.01, 1.0) * np.exp(-t * 3.0)
    tone = np.zeros(length)
    for h in range(1, 6):
        if f0 * h < sample_rate / 2:
            tone += np.sin(2 * np.pi * f0 * h * t) / h
    out[at : at + length] += gain * envelope * tone


def _unit_power(x: np.ndarray) -> np.ndarray:
    x = x - x.mean()
    return np.asarray(x / (np.sqrt(np.mean(x**2)) + 1e-12), dtype=np.float32)
