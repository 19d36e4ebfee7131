"""Sound direction on simulated rooms (pyroomacoustics, seeded): one talker, two talkers taking
turns, a two-microphone pair with its front/back ambiguity, and silence with a fan running."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from avagent.agent.files import locate_speech
from avagent.core.angles import wrap180
from avagent.core.events import Error, SoundDirection, SpeechEnded, SpeechStarted
from avagent.core.messages import AudioFrame
from avagent.perception.arrays import MicArray, preset
from avagent.perception.doa import SoundDirectionStage
from avagent.perception.doa_tracker import DirectionTracker
from avagent.perception.srp import SrpPhat
from avagent.sim.room import RoomRecording, Utterance, simulate_room

Recorder = Callable[..., tuple[RoomRecording, Path]]


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Recorder:
    """Simulate a room recording (once per set of arguments) and write it as a WAV file."""
    folder = tmp_path_factory.mktemp("rooms")
    cache: dict[str, tuple[RoomRecording, Path]] = {}

    def make(utterances: list[Utterance], array: str, **kwargs: object) -> tuple[RoomRecording, Path]:
        key = repr((utterances, array, sorted(kwargs.items())))
        if key not in cache:
            recording = simulate_room(utterances, preset(array), **kwargs)  # type: ignore[arg-type]
            cache[key] = (recording, recording.write(folder / f"room{len(cache)}.wav"))
        return cache[key]

    return make


def error_deg(a: float, b: float) -> float:
    return abs(wrap180(a - b))


def finals(events: list[SoundDirection]) -> list[SoundDirection]:
    return [e for e in events if e.final]


def plane_wave(array: MicArray, azimuth_deg: float, seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    """White noise arriving from ``azimuth_deg`` as a plane wave, delayed exactly per microphone."""
    rng = np.random.default_rng(4)
    n = int(seconds * rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    a = np.radians(azimuth_deg)
    delays = -(array.positions @ np.array([np.cos(a), np.sin(a), 0.0])) / 343.0
    channels = [np.fft.irfft(spectrum * np.exp(-2j * np.pi * freqs * d), n) for d in delays]
    return np.stack(channels, axis=1).astype(np.float32) * 0.1


@pytest.mark.parametrize("name", ["respeaker4", "respeaker6"])
@pytest.mark.parametrize("azimuth", [0.0, 37.0, 135.5, 222.0, 359.0])
def test_srp_phat_finds_a_plane_wave(name: str, azimuth: float) -> None:
    srp = SrpPhat(preset(name))
    weighted, weights = srp.cross_spectra(srp.frames_of(plane_wave(srp.array, azimuth)))
    peak = srp.peak(srp.power(srp.average(weighted.sum(0), weights.sum(0))))
    assert error_deg(peak.azimuth_deg, azimuth) < 1.0
    assert peak.power > 0.9, "a clean plane wave is fully coherent"


@pytest.mark.parametrize("azimuth", [20.0, 90.0, 160.0, 250.0, 300.0])
def test_gcc_phat_on_a_pair_answers_in_its_half_plane_and_names_the_mirror(azimuth: float) -> None:
    pair = preset("pair")
    srp = SrpPhat(pair)
    weighted, weights = srp.cross_spectra(srp.frames_of(plane_wave(pair, azimuth)))
    peak = srp.peak(srp.power(srp.average(weighted.sum(0), weights.sum(0))))
    assert 0.0 <= peak.azimuth_deg <= 180.0
    truth_in_half = azimuth if azimuth <= 180.0 else pair.mirror(azimuth)
    assert error_deg(peak.azimuth_deg, truth_in_half) < 2.0
    assert error_deg(pair.mirror(peak.azimuth_deg), pair.mirror(truth_in_half)) < 2.0


async def test_one_talker_in_a_reverberant_room_gives_one_stable_direction(record: Recorder) -> None:
    talk = ["turn left please", "what time is it", "look over here"]
    recording, path = record(
        [Utterance(t, 75.0) for t in talk], "respeaker4", rt60_s=0.3, snr_db=10.0, seed=11
    )
    events = await locate_speech(path, preset("respeaker4"))
    answers = finals(events)
    assert len(answers) == len(recording.utterances)
    for answer, truth in zip(answers, recording.utterances, strict=True):
        assert answer.start is not None
        assert answer.end is not None
        assert abs(answer.start - truth.start) < 0.3
        assert abs(answer.end - truth.end) < 0.3
        assert error_deg(answer.azimuth_deg, 75.0) < 5.0
        assert error_deg(answer.measured_deg or 0.0, 75.0) < 5.0
        assert 0.0 < answer.confidence <= 1.0
    assert {a.source_id for a in answers} == {1}, "one talker is one source"
    tracked = [a.azimuth_deg for a in answers]
    assert max(abs(wrap180(x - tracked[0])) for x in tracked) < 3.0, "the tracked direction is stable"
    # No direction is ever reported outside speech.
    for event in events:
        assert any(u.start - 0.3 <= event.t <= u.end + 0.5 for u in recording.utterances)


async def test_two_talkers_taking_turns_are_told_apart(record: Recorder) -> None:
    turns = [
        Utterance("hello robot", 40.0),
        Utterance("what is the time", 160.0, voice="en"),
        Utterance("turn to me", 40.0),
        Utterance("no look at me", 160.0, voice="en"),
    ]
    recording, path = record(turns, "respeaker4", rt60_s=0.3, snr_db=10.0, seed=12)
    answers = finals(await locate_speech(path, preset("respeaker4")))
    assert [round(a.azimuth_deg / 10) * 10 for a in answers] == [40, 160, 40, 160]
    for answer, truth in zip(answers, recording.utterances, strict=True):
        assert error_deg(answer.azimuth_deg, truth.azimuth_deg) < 5.0
    ids = [a.source_id for a in answers]
    assert ids[0] == ids[2]
    assert ids[1] == ids[3]
    assert ids[0] != ids[1]


async def test_the_hexagon_copes_with_a_livelier_room(record: Recorder) -> None:
    talk = ["good morning", "turn right forty five degrees"]
    _recording, path = record(
        [Utterance(t, 250.0) for t in talk], "respeaker6", rt60_s=0.6, snr_db=10.0, seed=13
    )
    answers = finals(await locate_speech(path, preset("respeaker6")))
    assert len(answers) == 2
    assert all(error_deg(a.azimuth_deg, 250.0) < 6.0 for a in answers)


async def test_a_pair_states_its_front_back_ambiguity(record: Recorder) -> None:
    turns = [Utterance("hello there", 60.0), Utterance("over here now", 300.0, voice="en")]
    _recording, path = record(turns, "pair", rt60_s=0.3, snr_db=20.0, seed=14)
    answers = finals(await locate_speech(path, preset("pair")))
    assert len(answers) == 2
    for answer in answers:
        assert answer.mirror_deg is not None
        assert 0.0 <= answer.azimuth_deg <= 180.0
    # Both talkers are 60 degrees off the pair's axis, one on each side: the pair cannot tell them apart.
    assert all(error_deg(a.azimuth_deg, 60.0) < 8.0 for a in answers)
    assert all(error_deg(a.mirror_deg or 0.0, 300.0) < 8.0 for a in answers)


async def test_silence_gives_no_direction_even_with_a_fan_running(record: Recorder) -> None:
    _recording, path = record(
        [], "respeaker4", rt60_s=0.3, snr_db=20.0, noise_azimuth_deg=120.0, noise_only_s=6.0
    )
    assert await locate_speech(path, preset("respeaker4")) == []


async def test_long_speech_gives_interim_directions_before_the_final_one(record: Recorder) -> None:
    long_sentence = "please turn all the way around to the left and then look at the door behind you"
    recording, path = record(
        [Utterance(long_sentence, 300.0)], "respeaker4", rt60_s=0.3, snr_db=20.0, seed=15
    )
    events = await locate_speech(path, preset("respeaker4"))
    interim = [e for e in events if not e.final]
    assert len(interim) >= 3
    assert all(error_deg(e.azimuth_deg, 300.0) < 8.0 for e in interim)
    assert all(e.t <= recording.utterances[0].end + 0.3 for e in interim)
    assert len(finals(events)) == 1


def test_too_few_channels_is_reported_once_and_gives_no_direction() -> None:
    from avagent.core.bus import Bus

    stage = SoundDirectionStage(Bus(), preset("respeaker4"))
    mono = np.zeros((512, 1), dtype=np.float32)
    out = stage.handle(AudioFrame(mono, 16000, 0.0, 0.0))
    assert len(out) == 1
    assert isinstance(out[0], Error)
    assert "1 channel(s)" in out[0].message
    assert "4 microphones" in out[0].message
    assert stage.handle(SpeechStarted(t=0.0)) == []
    assert stage.handle(AudioFrame(mono, 16000, 0.032, 0.0)) == []
    assert stage.handle(SpeechEnded(t=0.1, start=0.0, end=0.064)) == []


def test_speech_ended_cuts_the_sum_exactly_at_the_end_of_speech() -> None:
    """Hops after the end of speech (noise from elsewhere, heard before the VAD decided) must not
    pull the direction: here they come from the opposite side."""
    from avagent.core.bus import Bus

    array = preset("respeaker4")
    stage = SoundDirectionStage(Bus(), array)
    speech = plane_wave(array, 30.0, seconds=1.0)
    noise = plane_wave(array, 210.0, seconds=0.4) * 3.0
    audio = np.concatenate([speech, noise])
    events = [*stage.handle(SpeechStarted(t=0.0))]
    for i in range(0, audio.shape[0], 512):
        events += stage.handle(AudioFrame(audio[i : i + 512], 16000, i / 16000, 0.0))
    events += stage.handle(SpeechEnded(t=1.4, start=0.0, end=1.0))
    final = [e for e in events if isinstance(e, SoundDirection) and e.final]
    assert len(final) == 1
    assert error_deg(final[0].azimuth_deg, 30.0) < 2.0


def test_the_tracker_fuses_one_talker_and_separates_two() -> None:
    tracker = DirectionTracker()
    a1 = tracker.update(1.0, 359.0, 0.3)
    a2 = tracker.update(3.0, 2.0, 0.3)
    b1 = tracker.update(5.0, 90.0, 0.3)
    a3 = tracker.update(7.0, 1.0, 0.3)
    assert a1.id == a2.id == a3.id != b1.id
    assert error_deg(a3.azimuth_deg, 0.7) < 1.5
    assert a3.stddev_deg < 3.0
    assert tracker.nearest(8.0, 150.0) is None
