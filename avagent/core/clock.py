"""The media clock: where the input has got to, and what the speaker should play next.

Media time is seconds from the start of the input. The input source advances the clock as each
frame arrives, and calls ``render()`` once the frame has been handed over (and, for a file fed as
fast as possible, handled): listeners such as a virtual speaker that renders into a WAV file are
driven by it, so a file processed faster than real time still gets replies placed where they
would be heard live.
"""

from __future__ import annotations

import time
from collections.abc import Callable

AdvanceListener = Callable[[float, float], None]


class MediaClock:
    """Maps media time to the monotonic clock and drives listeners as media time advances.

    With ``extrapolate`` (live or paced input) ``now()`` runs on between frames with the wall
    clock, at most ``max_extrapolation_s`` past the last frame; without it (a file fed as fast as
    the agent settles) media time only moves when a frame has been handled.
    """

    def __init__(self, *, extrapolate: bool = True, max_extrapolation_s: float = 0.5) -> None:
        self.extrapolate = extrapolate
        self.max_extrapolation_s = max_extrapolation_s
        self._t = 0.0
        self._anchor_monotonic: float | None = None
        self._rendered = 0.0
        self._listeners: list[AdvanceListener] = []

    @property
    def position(self) -> float:
        """Media time of the end of the last frame handled."""
        return self._t

    def now(self) -> float:
        """Current media time."""
        if not self.extrapolate or self._anchor_monotonic is None:
            return self._t
        ahead = time.monotonic() - self._anchor_monotonic
        return self._t + min(max(ahead, 0.0), self.max_extrapolation_s)

    def monotonic_of(self, t: float) -> float:
        """The monotonic instant at which media time ``t`` is (or was) reached."""
        anchor = self._anchor_monotonic if self._anchor_monotonic is not None else time.monotonic()
        return anchor + (t - self._t)

    def add_listener(self, listener: AdvanceListener) -> None:
        """Call ``listener(t_from, t_to)`` from ``render()`` for each stretch of media time."""
        self._listeners.append(listener)

    def advance(self, t_to: float, monotonic_now: float | None = None) -> None:
        """Input up to media time ``t_to`` has arrived."""
        if t_to < self._t:
            return
        self._t = t_to
        self._anchor_monotonic = time.monotonic() if monotonic_now is None else monotonic_now

    def render(self) -> None:
        """Drive the listeners up to the current position (after the agent has seen the input)."""
        t_from, t_to = self._rendered, self._t
        if t_to <= t_from:
            return
        self._rendered = t_to
        for listener in self._listeners:
            listener(t_from, t_to)
