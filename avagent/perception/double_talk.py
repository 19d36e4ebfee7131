"""Double talk: is the microphone hearing the user, or only the agent's own echo?

While the agent speaks, each 10 ms block of the linear canceller's residual (``echo_linear.py``)
is compared, band by band, with the echo it predicted times how much of the echo the filter
leaves behind (the leak, learnt while only the agent speaks). Where the residual stands well
above that, in enough bands, someone else is speaking: the user. The decision does not depend
on the agent's volume, because the leak is a ratio; it fails safe, because until the filter has
learnt the echo path (its measured echo reduction, ERLE, is still small) nothing the microphone
hears while the agent speaks counts as the user, for at most ``max_hold_s`` of the agent's
speech (after that the echo canceller's own output is trusted as before, so a microphone that
hears no echo at all is never deaf); and band by band, a band whose audible echo the filter has not
learnt yet shows nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from avagent.perception.echo_linear import BLOCK, FFT

EDGES = np.linspace(4, BLOCK + 1, 17).astype(int)
"""16 bands from 200 Hz to 8 kHz (below, room rumble and the high-pass filter)."""
BLOCK_S = BLOCK / 16000
SHIFT = 16
"""How far (samples) a residual is compared with the predicted echo either way."""
MOVED = 0.4
"""Correlation of the residual with the predicted echo above which it is the echo."""


class Verdict(Enum):
    """What one 10 ms block of the microphone holds."""

    QUIET = "quiet"
    """The agent is silent (and its echo has died away): the microphone is the room."""
    USER = "user"
    """The agent speaks and the user speaks over it."""
    ECHO = "echo"
    """The agent speaks and the microphone hears only its echo."""
    HOLD = "hold"
    """The agent speaks and the echo path is not learnt yet: nothing heard counts."""
    UNLEARNT = "unlearnt"
    """The agent speaks, the echo path could not be learnt within ``max_hold_s``."""


@dataclass(frozen=True, slots=True)
class DoubleTalkSettings:
    """How sure the detector must be (defaults measured on bench/hearing_echo.py's rooms)."""

    margin_db: float = 8.0
    """The residual must stand this far above the echo left behind to be the user."""
    min_bands: int = 4
    """...in at least this many of the 16 bands."""
    hangover_s: float = 0.15
    """The user is taken to go on speaking this long after the last block that showed them."""
    trust_erle_db: float = 10.0
    """Echo reduction the filter must reach before the microphone is believed over the agent."""
    band_erle_db: float = 3.0
    """...and in a band, for that band to show the user while its echo is audible (the filter
    learns the bands unevenly: the top ones, which a voice excites least, last). 6 dB kept the
    agent's voice from ever pausing it in bench/hearing_echo.py, but through a real sound server
    (tests/test_audio_devices.py) it left too few bands for a user as loud as the echo 2 s into
    the answer, now and then; at 3 dB both cut in, and one pause at volume 2 remains."""
    max_hold_s: float = 2.0
    """Agent speech to wait at most for that; then the plain echo canceller is trusted."""
    tail_s: float = 0.3
    """How long the agent's echo rings on in the room after it stops."""


def band_energies(block: np.ndarray) -> np.ndarray:
    """Energy of a 10 ms block in each of the 16 bands."""
    spectrum = np.fft.rfft(block, FFT)
    cumulative = np.concatenate(([0.0], np.cumsum(spectrum.real**2 + spectrum.imag**2)))
    return np.asarray(cumulative[EDGES[1:]] - cumulative[EDGES[:-1]])


class DoubleTalkDetector:
    """Per-block verdicts for an echo canceller; says when its filter may learn."""

    FAR_FLOOR = 1e-7
    """Mean square of a played block below which the agent counts as silent (-70 dBFS)."""
    CLIP = 0.98

    def __init__(self, settings: DoubleTalkSettings | None = None) -> None:
        self.settings = s = settings or DoubleTalkSettings()
        self._margin = 10 ** (s.margin_db / 10)
        self._band_leak = 10 ** (-s.band_erle_db / 10)
        self._hangover = round(s.hangover_s / BLOCK_S)
        self._tail = round(s.tail_s / BLOCK_S)
        self._max_hold = round(s.max_hold_s / BLOCK_S)
        bands = len(EDGES) - 1
        self._leak = np.ones(bands)
        self._echo = np.zeros(bands)
        """The predicted echo per band, held with the room's decay (the filter's tail is short)."""
        self._noise = np.full(bands, np.inf)
        self._residual = np.zeros(bands)
        """The residual per band, smoothed over about two blocks."""
        self._above = 0
        """Blocks in a row in which the residual stood above the echo left behind."""
        self._recent_echo = np.zeros(3 * BLOCK)
        self._recent_residual = np.zeros(3 * BLOCK)
        self._since_played = self._tail + 1
        self._user_hang = 0
        self._after_user = round(0.5 / BLOCK_S)
        self._quiet_after_user = 0
        """Blocks left in which nothing is learnt, after the user was last shown."""
        self._clip_hang = 0
        self._mic_power = 0.0
        self._residual_power = 0.0
        self._learning_blocks = 0
        self.held_blocks = 0
        """Blocks of agent speech heard before the echo path was learnt."""
        self.trusted = False
        """The echo path is learnt (or there is no echo to learn): double talk can be told."""
        self.may_adapt = False
        """Whether the last block was echo alone, for the filter to learn from."""

    @property
    def erle_db(self) -> float:
        """The filter's echo reduction measured while only the agent spoke."""
        if self._residual_power <= 0.0:
            return 0.0
        return float(10 * np.log10(self._mic_power / self._residual_power))

    def judge(self, played: np.ndarray, mic: np.ndarray, echo: np.ndarray, residual: np.ndarray) -> Verdict:
        """The verdict on one block: what was played, the microphone, the filter's predicted echo
        and its residual (``BLOCK`` samples each)."""
        self.may_adapt = False
        played_now = float(np.mean(played * played)) > self.FAR_FLOOR
        self._since_played = 0 if played_now else self._since_played + 1
        mic_bands = band_energies(mic)
        self._noise = np.where(mic_bands < self._noise, mic_bands, self._noise * 1.005 + 1e-15)
        if self._since_played > self._tail:
            self._user_hang = 0
            self._echo[:] = 0.0
            return Verdict.QUIET
        clipped = float(np.max(np.abs(mic))) >= self.CLIP
        self._clip_hang = self._hangover if clipped else max(0, self._clip_hang - 1)
        echo_bands = band_energies(echo)
        # A reverberant room rings on past the filter's modelled tail: hold the prediction up with
        # a decay of about 1.2 dB per block (RT60 about 0.5 s).
        self._echo = np.maximum(echo_bands, 0.76 * self._echo)
        residual_bands = band_energies(residual)
        if self._clip_hang:
            # The speaker or the microphone overdriven: the echo is no longer linear, nothing is
            # learnt from it and nothing in it is believed (a user is not heard over a microphone
            # the agent itself overdrives).
            return Verdict.ECHO
        if not self.trusted:
            self._learn_erle(mic_bands, residual_bands, played_now)
            if played_now:
                self._learn_leak(residual_bands)
            return self._hold()
        self._residual = 0.5 * self._residual + 0.5 * residual_bands
        self._recent_echo = np.concatenate((self._recent_echo[BLOCK:], echo))
        self._recent_residual = np.concatenate((self._recent_residual[BLOCK:], residual))
        # Two blocks in a row: a lone block above the echo is more often the filter than a voice.
        # And a residual that is a copy of the echo (shifted a little) is the echo path having
        # moved, not a voice: the filter learns it again.
        speaks = self._user_speaks(self._residual) and not self._echo_moved()
        self._above = self._above + 1 if speaks else 0
        if self._above >= 2:
            self._user_hang = self._hangover
            return Verdict.USER
        if self._user_hang > 0:
            self._user_hang -= 1
            if self._user_hang == 0:
                self._quiet_after_user = self._after_user
            return Verdict.USER
        if self._quiet_after_user > 0:
            # Between the user's words the residual may still hold their voice, below what
            # shows them: nothing is learnt from it, or the user would mask themselves.
            self._quiet_after_user -= 1
            return Verdict.ECHO
        self.may_adapt = played_now
        self._learn_leak(residual_bands)
        self._learn_erle(mic_bands, residual_bands, played_now)
        return Verdict.ECHO

    def relearn(self) -> None:
        """The echo path moved (the filter was put elsewhere): measure it again from scratch."""
        self._mic_power = self._residual_power = 0.0
        self._learning_blocks = 0
        self._leak[:] = 1.0

    def _user_speaks(self, residual: np.ndarray) -> bool:
        left = self._leak * self._echo
        above = residual > self._margin * left + 4.0 * self._noise
        # Trust asked of each band as well as of the whole filter: where the filter still leaves
        # most of an audible echo behind, the residual is that echo, and where the agent's voice
        # sets in on bins it has not excited before it rises above the leak as a user's voice
        # would (just after the filter is trusted, the top bands). Such a band shows nothing
        # until it is learnt or its echo has died away.
        audible = self._echo > 10.0 * self._noise
        learnt = (self._leak <= self._band_leak) | ~audible
        return int(np.count_nonzero(above & learnt)) >= self.settings.min_bands

    def _echo_moved(self) -> bool:
        """Whether the last 30 ms of the residual look like the predicted echo, within 1 ms."""
        echo, residual = self._recent_echo, self._recent_residual
        scale = float(np.sqrt(np.dot(echo, echo) * np.dot(residual, residual)))
        if scale <= 0.0:
            return False
        lag = SHIFT
        correlation = np.correlate(residual[lag:-lag], echo, mode="valid")
        return float(np.max(np.abs(correlation))) > MOVED * scale

    def _hold(self) -> Verdict:
        if self.held_blocks >= self._max_hold:
            return Verdict.UNLEARNT
        self.held_blocks += 1
        return Verdict.HOLD

    def _learn_erle(self, mic: np.ndarray, residual: np.ndarray, played_now: bool) -> None:
        if not played_now:
            return
        self.may_adapt = True
        a = 0.05
        self._mic_power = (1 - a) * self._mic_power + a * float(mic.sum())
        self._residual_power = (1 - a) * self._residual_power + a * float(residual.sum())
        self._learning_blocks += 1
        if self.trusted or self._learning_blocks < 30:
            return
        no_echo = self._mic_power < 4.0 * float(self._noise.sum())
        if no_echo or self.erle_db >= self.settings.trust_erle_db:
            self.trusted = True
            if no_echo:
                self._leak[:] = 1.0

    def _learn_leak(self, residual: np.ndarray) -> None:
        audible = self._echo > 10.0 * self._noise
        ratio = np.minimum(residual / (self._echo + 1e-20), 1.0)
        self._leak = np.where(audible, 0.95 * self._leak + 0.05 * ratio, self._leak)
