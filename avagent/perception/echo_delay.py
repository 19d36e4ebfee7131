"""How late the echo comes: the bulk delay between what was played and what the microphone heard.

A sound card's speaker and microphone start on their own and each buffers its own while, so the
echo of a sample may reach the microphone anywhere from a few to a few hundred milliseconds after
it was handed over. The linear echo filter models only a quarter of a second: this finds where
the echo lies (the peak of the phase-transform cross-correlation, which keeps it sharp for
speech), so the filter can be put over it.
"""

from __future__ import annotations

import numpy as np


class DelayFinder:
    """Keeps the last ``window_s`` of what was played and of the microphone, as paired, and finds the
    delay of the echo in them."""

    def __init__(self, window_s: float = 1.0, sample_rate: int = 16000) -> None:
        self._size = round(window_s * sample_rate)
        self._played = np.zeros(self._size)
        self._heard = np.zeros(self._size)
        self._filled = 0

    def push(self, played: np.ndarray, heard: np.ndarray) -> None:
        """The next block of each (same length)."""
        n = played.shape[0]
        self._played = np.concatenate((self._played[n:], played))
        self._heard = np.concatenate((self._heard[n:], heard))
        self._filled = min(self._size, self._filled + n)

    def clear(self) -> None:
        self._played[:] = 0.0
        self._heard[:] = 0.0
        self._filled = 0

    def find(self, max_lag: int, min_peak: float = 0.1) -> int | None:
        """The lag (samples; positive: the echo comes after the reference) of the strongest echo
        within ``max_lag`` either way, or None when the window is not full or no echo stands
        out (``min_peak``: of the normalised correlation)."""
        if self._filled < self._size or not self._played.any():
            return None
        size = 2 * self._size
        cross = np.fft.rfft(self._heard, size) * np.conj(np.fft.rfft(self._played, size))
        correlation = np.fft.irfft(cross / (np.abs(cross) + 1e-12), size)
        lags = np.concatenate((correlation[: max_lag + 1], correlation[-max_lag:]))
        best = int(np.argmax(np.abs(lags)))
        if float(np.abs(lags[best])) < min_peak:
            return None
        return best if best <= max_lag else best - lags.shape[0]
