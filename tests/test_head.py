"""The simulated pan-tilt head (limits, speed) and the behaviour that turns it toward the speaker
with hysteresis."""

from __future__ import annotations

import pytest

from avagent.core.bus import Bus
from avagent.core.events import ActiveSpeaker, SoundDirection, Stop
from avagent.io.head import HeadLimits, SimulatedPanTiltHead
from avagent.policy.follow import FollowSettings, FollowSpeaker


class FakeTime:
    """A clock the test moves by hand (stands in for the agent's media clock)."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


async def test_the_head_moves_at_its_top_speed_and_stops_at_its_limits() -> None:
    now = FakeTime()
    head = SimulatedPanTiltHead(HeadLimits(pan_min_deg=-90, pan_max_deg=90, max_speed_dps=60), now)
    await head.point(120.0, 50.0)
    assert head.target() == (90.0, 30.0), "clamped to the limits"
    now.t = 0.5
    assert head.pose().pan_deg == pytest.approx(30.0)
    assert head.pose().tilt_deg == pytest.approx(30.0)
    assert head.pose().moving
    now.t = 2.0
    assert head.pose().pan_deg == pytest.approx(90.0)
    assert not head.pose().moving


async def test_stop_freezes_the_head_where_it_is() -> None:
    now = FakeTime()
    head = SimulatedPanTiltHead(HeadLimits(max_speed_dps=100), now)
    await head.point(-100.0)
    now.t = 0.3
    await head.stop()
    now.t = 5.0
    assert head.pose().pan_deg == pytest.approx(-30.0)
    assert head.stops == 1


def test_azimuths_become_the_nearest_pan_within_limits() -> None:
    limits = HeadLimits(pan_min_deg=-150, pan_max_deg=150)
    assert limits.pan_for(90.0) == 90.0
    assert limits.pan_for(300.0) == -60.0
    assert limits.pan_for(180.0) == -150.0


def direction(t: float, azimuth: float, confidence: float = 0.4) -> SoundDirection:
    return SoundDirection(t=t, azimuth_deg=azimuth, confidence=confidence)


async def test_small_wobbles_do_not_move_the_head_but_a_new_talker_does() -> None:
    now = FakeTime()
    head = SimulatedPanTiltHead(HeadLimits(), now)
    follow = FollowSpeaker(
        Bus(), head, FollowSettings(follow="sound", hysteresis_deg=10.0, min_confidence=0.1)
    )
    for t, azimuth in [(1.0, 60.0), (2.0, 63.0), (3.0, 57.5), (4.0, 65.0), (5.0, 200.0), (6.0, 205.0)]:
        now.t = t
        await follow.handle(direction(t, azimuth))
    await follow.handle(direction(7.0, 90.0, confidence=0.05))  # too unsure to act on
    assert [round(pan) for _t, pan, _tilt in head.commands] == [60, -160]
    assert follow.ignored == 5
    now.t = 20.0
    assert head.pose().pan_deg == pytest.approx(-160.0)


async def test_following_the_active_speaker_ignores_raw_directions_and_halts_on_stop() -> None:
    now = FakeTime()
    head = SimulatedPanTiltHead(HeadLimits(max_speed_dps=90), now)
    bus = Bus()
    follow = FollowSpeaker(bus, head, FollowSettings(follow="active_speaker"))
    bus.publish_nowait(direction(1.0, 120.0))
    bus.publish_nowait(ActiveSpeaker(t=1.0, face_id=4, azimuth_deg=30.0))
    bus.publish_nowait(Stop(t=1.2))  # control: overtakes the queued speaker event
    stream = follow._events
    first = await stream.get()
    assert isinstance(first, Stop)
    await follow.handle(first)
    second = await stream.get()
    await follow.handle(second)
    assert head.target()[0] == 30.0
    now.t = 0.2
    await follow.handle(Stop(t=1.4))
    now.t = 3.0
    assert head.pose().pan_deg == pytest.approx(18.0)
    assert stream.get_nowait() is None, "raw sound directions are not followed when faces are"
