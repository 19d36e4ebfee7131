"""A linear echo canceller whose residual keeps the user's voice.

WebRTC's AEC3 follows its linear filter with a nonlinear suppressor that, when the user talks over
a loud agent, suppresses the user too. This is the linear part alone: a partitioned-block
frequency-domain adaptive filter (overlap-save, normalised per frequency bin, the gradient
constrained to the block length) that models the echo path from what was played to the
microphone. What it cannot predict, the residual, holds the user's voice at its full level plus
what is left of the echo; ``double_talk.py`` decides which of the two the residual is.

Works on 10 ms blocks at 16 kHz, the same frames as AEC3.
"""

from __future__ import annotations

import numpy as np

BLOCK = 160
"""Samples per block: 10 ms at 16 kHz."""
FFT = 2 * BLOCK
BINS = BLOCK + 1


class LinearEchoFilter:
    """Predicts the echo of what was played and subtracts it from the microphone, block by block.

    ``partitions`` blocks of echo path are modelled (the default, 24, covers 240 ms of room and
    device delay). ``step`` is the normalised step size: larger converges faster and is noisier.
    """

    def __init__(self, partitions: int = 24, step: float = 0.6) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        self.partitions = partitions
        self.step = step
        self._weights = np.zeros((partitions, BINS), dtype=np.complex128)
        self._spectra = np.zeros((partitions, BINS), dtype=np.complex128)
        """The spectra of the last ``partitions`` blocks of what was played, newest first."""
        self._previous = np.zeros(BLOCK, dtype=np.float64)
        self._power = np.zeros(BINS, dtype=np.float64)
        self._regulariser = 1e-6 * FFT
        """Keeps the normalisation finite when nothing is played (about -60 dBFS per bin)."""

    def filter(self, played: np.ndarray, mic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Take the next block of what was played and of the microphone (``BLOCK`` samples each):
        returns (the predicted echo, the residual ``mic - echo``)."""
        window = np.concatenate((self._previous, played))
        self._previous = np.asarray(played, dtype=np.float64)
        self._spectra[1:] = self._spectra[:-1]
        self._spectra[0] = np.fft.rfft(window)
        total = np.einsum("pk,pk->k", self._weights, self._spectra)
        echo = np.fft.irfft(total, FFT)[BLOCK:]
        return echo, mic - echo

    def adapt(self, residual: np.ndarray) -> None:
        """Move the filter towards the echo path, given the residual of the last ``filter``
        (call only when the residual is echo: adapting to the user's voice would unlearn it)."""
        spectrum = np.fft.rfft(np.concatenate((np.zeros(BLOCK), residual)))
        power = np.sum(self._spectra.real**2 + self._spectra.imag**2, axis=0)
        self._power = power if not self._power.any() else 0.8 * self._power + 0.2 * power
        gain = self.step * spectrum / (self._power + self._regulariser)
        self._weights += np.conj(self._spectra) * gain
        # The constraint: each partition's impulse response is one block long (otherwise the
        # circular convolution wraps and the filter learns artefacts).
        taps = np.fft.irfft(self._weights, FFT, axis=1)
        taps[:, BLOCK:] = 0.0
        self._weights = np.fft.rfft(taps, axis=1)

    def reset(self) -> None:
        self._weights[:] = 0.0
        self._power[:] = 0.0
