"""Media frames: the two data types every source produces and every sense consumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
"""The rate the senses work at: sound is resampled to it on the way in (voice activity, turns,
recognition, sound direction, echo cancellation)."""


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A block of audio samples.

    ``samples`` has shape ``(n, channels)`` and dtype int16 or float32 (float samples lie in
    [-1, 1]). ``t`` is the media time of the first sample in seconds from the start of the input;
    ``t_capture`` is the ``time.monotonic()`` instant at which that first sample was captured, so
    that any answer can be traced back to the sound that caused it.
    """

    samples: np.ndarray
    sample_rate: int
    t: float
    t_capture: float

    @property
    def frames(self) -> int:
        """Number of samples per channel."""
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        return int(self.samples.shape[0]) / self.sample_rate

    @property
    def t_end(self) -> float:
        """Media time just after the last sample."""
        return self.t + self.duration

    def float_channels(self) -> np.ndarray:
        """All channels as float32 in [-1, 1], shape ``(n, channels)``."""
        return to_float32(self.samples)

    def mono(self) -> np.ndarray:
        """Channel 0 as float32 in [-1, 1] (a microphone array's reference microphone)."""
        column = self.samples[:, 0]
        if column.dtype == np.float32:
            return column
        return to_float32(column)


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One camera image, ``uint8`` of shape ``(height, width, 3)`` in BGR order (OpenCV's)."""

    image: np.ndarray
    t: float
    t_capture: float

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def to_float32(samples: np.ndarray) -> np.ndarray:
    """Convert int16 or float samples to float32 in [-1, 1] (float input is passed through)."""
    if samples.dtype == np.int16:
        return samples.astype(np.float32) * np.float32(1.0 / 32768.0)
    if samples.dtype == np.float32:
        return samples
    return samples.astype(np.float32)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Convert float samples in [-1, 1] to int16, clipping what lies outside."""
    if samples.dtype == np.int16:
        return samples
    scaled = np.clip(samples, -1.0, 32767.0 / 32768.0) * 32768.0
    return np.asarray(np.rint(scaled), dtype=np.int16)
