"""A linear echo canceller whose residual keeps the user's voice.

WebRTC's AEC3 follows its linear filter with a nonlinear suppressor that, when the user talks over
a loud agent, suppresses the user too. This is the linear part alone: a partitioned-block
frequency-domain adaptive filter (overlap-save, normalised per frequency bin, the gradient
constrained to the block length) that models the echo path from what was played to the
microphone. What it cannot predict, the residual, holds the user's voice at its full level plus
what is left of the echo; ``double_talk.py`` decides which of the two the residual is.

How fast it learns decides how early in the first answer a quiet user is heard above what is
left of the echo (bench/hearing_echo.py: a user 15 dB below the echo, 2.7 s into the answer):

- the step is normalised by the power played in each bin, never by less than the current
  block's: a voice moves from one formant to the next, and a bin that was quiet for a while
  would otherwise be divided by its quiet past, overshoot (a step above the stable 2) and make
  the residual louder than the microphone;
- each partition's step is proportionate to how much of the echo path it holds (improved
  proportionate NLMS, half even and half by each partition's learnt response): a room's response
  is front-heavy, the direct sound and first reflections in a few partitions, and the step goes
  where the echo is. On the agent's voice in the simulated room it learns 3-4 dB more in the
  first seconds; on a signal as flat as noise it learns the faint tail more slowly.

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
        shares = self._shares()
        # What was played, per bin, as each partition's share weighs it: the step is normalised
        # by this, so the proportionate steps together move the prediction by ``step`` of the error.
        power = shares @ (self._spectra.real**2 + self._spectra.imag**2)
        # Smoothed, but never below the block's own power: a bin whose power rises (a voice
        # starting, or moving to another formant) would otherwise be divided by its quieter past.
        self._power = power if not self._power.any() else np.maximum(0.8 * self._power + 0.2 * power, power)
        gain = self.step * spectrum / (self._power + self._regulariser)
        self._weights += shares[:, None] * np.conj(self._spectra) * gain
        # The constraint: each partition's impulse response is one block long (otherwise the
        # circular convolution wraps and the filter learns artefacts).
        taps = np.fft.irfft(self._weights, FFT, axis=1)
        taps[:, BLOCK:] = 0.0
        self._weights = np.fft.rfft(taps, axis=1)

    def _shares(self) -> np.ndarray:
        """Each partition's part of the step, times the number of partitions (all 1 while nothing
        is learnt): half spread evenly, half in proportion to the partition's learnt response,
        so a partition still at zero keeps learning."""
        norms = np.sqrt(np.sum(self._weights.real**2 + self._weights.imag**2, axis=1))
        total = float(norms.sum())
        if total <= 0.0:
            return np.ones(self.partitions)
        return np.asarray(0.5 + 0.5 * self.partitions * norms / total)

    def reset(self) -> None:
        self._weights[:] = 0.0
        self._power[:] = 0.0
