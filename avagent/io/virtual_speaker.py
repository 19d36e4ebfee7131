"""A speaker driven by the media clock: renders the agent's voice in step with the input.

When the input is a file there is no sound card to pace playback. The virtual speaker plays one
block of the agent's voice each time the input advances by one block, one block behind (as a
sound card would be: a reply decided at media time t is heard from t on). Its output is exactly
as long as the input and aligned with it, so a WAV of the agent's voice can be laid over the
input, and a barge-in cuts the voice at the media time it would be cut live.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from avagent.core.clock import MediaClock
from avagent.io.playback import Playback

BlockSink = Callable[[np.ndarray], None]


class VirtualSpeaker:
    """Pulls the playback as media time advances and hands each block to the sinks."""

    def __init__(self, playback: Playback, clock: MediaClock, sinks: list[BlockSink] | None = None) -> None:
        self._playback = playback
        self._sinks = list(sinks or [])
        self._rate = playback.sample_rate
        self._samples_out = 0
        """Samples written so far: the output timeline, in samples from media time 0."""
        clock.add_listener(self._advance)

    def add_sink(self, sink: BlockSink) -> None:
        self._sinks.append(sink)

    @property
    def position(self) -> float:
        """Media time up to which the voice has been rendered."""
        return self._samples_out / self._rate

    def _advance(self, t_from: float, t_to: float) -> None:
        if self._samples_out == 0 and t_from == 0.0:
            # The first block of input brings no voice yet: it is the speaker's one block of delay.
            self._write(np.zeros(round(t_to * self._rate), dtype=np.float32))
        target = round((t_to + (t_to - t_from)) * self._rate)
        target = max(target, round(t_to * self._rate))
        n = target - self._samples_out
        if n > 0:
            self._write(self._playback.pull(n, self._samples_out / self._rate))

    def _write(self, block: np.ndarray) -> None:
        if block.shape[0] == 0:
            return
        self._samples_out += block.shape[0]
        for sink in self._sinks:
            sink(block)
