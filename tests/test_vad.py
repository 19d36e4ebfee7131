"""Voice activity with the real Silero model, against the known truth of synthesised scenes."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from avagent.core.bus import Bus
from avagent.core.events import Error, SpeechEnded, SpeechStarted
from avagent.core.messages import AudioFrame
from avagent.perception.listening import Listener
from avagent.perception.vad import CHUNK, SileroJitVad, SileroVad, detect_speech
from avagent.sim.scene import Scene
from tests.conftest import SceneFactory

PHRASES = [
    "turn left",
    "what time is it",
    "turn right forty five degrees",
    "look at one hundred twenty degrees",
    "stop",
]


def boundary_errors(scene: Scene, segments: list[tuple[float, float]]) -> list[float]:
    """For each phrase: |start error| and |end error| of the speech segments that overlap it."""
    errors = []
    for phrase in scene.phrases:
        overlapping = [s for s in segments if s[0] < phrase.end and s[1] > phrase.start]
        assert overlapping, f"no speech found for {phrase.text!r}"
        errors += [abs(overlapping[0][0] - phrase.start), abs(overlapping[-1][1] - phrase.end)]
    return errors


def test_model_tells_speech_from_silence_and_noise(make_scene: SceneFactory) -> None:
    scene, _ = make_scene(["turn left"], snr_db=None, lead_s=1.0, tail_s=1.0)
    vad = SileroVad()
    probabilities = [vad(scene.audio[i : i + CHUNK]) for i in range(0, scene.audio.shape[0] - CHUNK, CHUNK)]
    t = np.arange(len(probabilities)) * CHUNK / 16000
    phrase = scene.phrases[0]
    inside = [p for p, ti in zip(probabilities, t, strict=True) if phrase.start + 0.1 < ti < phrase.end - 0.1]
    outside = [
        p for p, ti in zip(probabilities, t, strict=True) if ti < phrase.start - 0.2 or ti > phrase.end + 0.3
    ]
    assert min(inside) > 0.5
    assert max(outside) < 0.2
    rng = np.random.default_rng(0)
    noise_only = (rng.standard_normal(16000) * 0.05).astype(np.float32)
    vad.reset()
    assert max(vad(noise_only[i : i + CHUNK]) for i in range(0, 16000 - CHUNK, CHUNK)) < 0.3


def test_segments_match_the_truth_within_100_ms_at_10_db_snr(make_scene: SceneFactory) -> None:
    errors: list[float] = []
    for noise_kind in ("pink", "white"):
        for voice in ("en-us", "en-us+f2", "en-us+m3"):
            scene, _ = make_scene(
                PHRASES, snr_db=10.0, noise_kind=noise_kind, voice=voice, seed=11, gap_s=2.0
            )
            segments = detect_speech(scene.audio, scene.sample_rate)
            errors += boundary_errors(scene, segments)
            stray = [s for s in segments if not any(s[0] < p.end and s[1] > p.start for p in scene.phrases)]
            assert stray == [], "no speech may be reported in the pauses"
    within = np.mean(np.asarray(errors) <= 0.100)
    # The rare miss is a final consonant buried in the noise (the segment ends early).
    assert within >= 0.95, f"{within:.0%} of boundaries within 100 ms: {np.round(sorted(errors)[-5:], 3)}"
    assert float(np.median(errors)) <= 0.05


def test_silence_and_noise_alone_give_no_segments() -> None:
    rng = np.random.default_rng(5)
    assert detect_speech(np.zeros(16000 * 3, dtype=np.float32), 16000) == []
    noise = (rng.standard_normal(16000 * 3) * 0.03).astype(np.float32)
    assert detect_speech(noise, 16000) == []


async def listen(frames: list[AudioFrame]) -> tuple[list[object], Listener]:
    bus = Bus()
    listener = Listener(bus)
    out = bus.subscribe(object, name="out", maxsize=10_000)
    for frame in frames:
        await listener.handle(frame)
    events = []
    while (event := out.get_nowait()) is not None:
        events.append(event)
    return events, listener


def frames_of(samples: np.ndarray, rate: int, block: int) -> list[AudioFrame]:
    return [
        AudioFrame(samples[i : i + block], rate, i / rate, float(i) / rate)
        for i in range(0, samples.shape[0] - block + 1, block)
    ]


async def test_listener_hears_48_khz_stereo_as_it_hears_16_khz_mono(make_scene: SceneFactory) -> None:
    scene, _ = make_scene(PHRASES[:3], snr_db=20.0, seed=2)
    mono16 = scene.audio[:, None]
    events16, _ = await listen(frames_of(mono16, 16000, 512))
    audio48 = np.asarray(soxr.resample(scene.audio, 16000, 48000), dtype=np.float32)
    stereo48 = np.stack([audio48, audio48 * 0.5], axis=1)
    events48, listener = await listen(frames_of(stereo48, 48000, 960))
    ends16 = [(e.start, e.end) for e in events16 if isinstance(e, SpeechEnded)]
    ends48 = [(e.start, e.end) for e in events48 if isinstance(e, SpeechEnded)]
    assert len(ends16) == len(ends48) >= 3
    for (s16, e16), (s48, e48) in zip(ends16, ends48, strict=True):
        assert abs(s16 - s48) <= 0.033
        assert abs(e16 - e48) <= 0.033
    assert listener.chunks == pytest.approx(scene.duration * 16000 / CHUNK, abs=3)


async def test_listener_replaces_nan_samples_and_says_so_once(make_scene: SceneFactory) -> None:
    scene, _ = make_scene(["turn left"], snr_db=20.0, seed=3)
    samples = scene.audio.copy()[:, None]
    samples[8000:16000] = np.nan
    samples[20000] = np.inf
    events, _ = await listen(frames_of(samples, 16000, 512))
    errors = [e for e in events if isinstance(e, Error)]
    assert len(errors) == 1
    assert "NaN" in errors[0].message
    assert any(isinstance(e, SpeechStarted) for e in events), "speech after the bad stretch is still heard"


async def test_listener_restarts_its_timeline_after_a_gap_in_the_input(make_scene: SceneFactory) -> None:
    scene, _ = make_scene(["stop"], snr_db=20.0, seed=4)
    frames = frames_of(scene.audio[:, None], 16000, 512)
    shifted = frames[:10] + [AudioFrame(f.samples, 16000, f.t + 5.0, f.t_capture + 5.0) for f in frames[10:]]
    events, _ = await listen(shifted)
    starts = [e.t for e in events if isinstance(e, SpeechStarted)]
    assert len(starts) == 1
    assert abs(starts[0] - (scene.phrases[0].start + 5.0)) < 0.1


def test_torch_jit_model_agrees_with_onnx() -> None:
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(CHUNK * 20) * 0.1).astype(np.float32)
    onnx, jit = SileroVad(), SileroJitVad()
    for i in range(20):
        chunk = audio[i * CHUNK : (i + 1) * CHUNK]
        assert abs(onnx(chunk) - jit(chunk)) < 1e-4
