"""The double-talk detector (perception/double_talk.py) believes a band only once its echo is learnt."""

from __future__ import annotations

import numpy as np

from avagent.perception.double_talk import DoubleTalkDetector

BANDS = 16


def _detector(leak_top_db: float, echo_top: float) -> DoubleTalkDetector:
    """A detector whose filter removes 20 dB of the echo in the eight lower bands and
    ``leak_top_db`` in the eight upper ones, with an echo of 1 (``echo_top`` above) per band."""
    detector = DoubleTalkDetector()
    detector.trusted = True
    detector._leak = np.array([0.01] * 8 + [10 ** (-leak_top_db / 10)] * 8)
    detector._echo = np.array([1.0] * 8 + [echo_top] * 8)
    detector._noise = np.full(BANDS, 1e-9)
    return detector


def test_a_band_whose_echo_is_not_learnt_yet_does_not_show_the_user() -> None:
    # The voice setting in on the top bands, which the filter has barely learnt (2 dB): the
    # residual there stands well above what the filter should leave, and is the echo all the same.
    burst_on_top = np.array([0.0] * 8 + [3.0] * 8)
    assert not _detector(leak_top_db=2.0, echo_top=1.0)._user_speaks(burst_on_top)
    # Learnt (12 dB), the same residual is the user's voice...
    assert _detector(leak_top_db=12.0, echo_top=1.0)._user_speaks(burst_on_top)
    # ...and so it is where the echo is inaudible, learnt or not.
    assert _detector(leak_top_db=2.0, echo_top=0.0)._user_speaks(burst_on_top)
    # The lower, learnt bands show the user whatever the top ones are.
    burst_below = np.array([3.0] * 8 + [0.0] * 8)
    assert _detector(leak_top_db=2.0, echo_top=1.0)._user_speaks(burst_below)
