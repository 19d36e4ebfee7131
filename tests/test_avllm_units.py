"""The parts of audio-visual understanding one by one: frame sampling and its rates, the sound
log, the limits of a request, what the senses report in words, and the ``avllm`` settings."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest

from avagent.agent.avllm_config import AvllmConfig, FramesConfig, RequestsConfig, SoundsConfig
from avagent.agent.config import parse_config
from avagent.core.bus import Bus
from avagent.core.errors import ConfigError
from avagent.core.events import ActiveSpeaker, FaceRecord, Faces, SpeechEnded, SpeechStarted
from avagent.core.media import TurnMedia
from avagent.core.messages import AudioFrame, VideoFrame
from avagent.perception.avllm.encoding import encode_jpeg, encode_wav
from avagent.perception.avllm.frames import FrameSampler, FrameSettings
from avagent.perception.avllm.report import SenseState, describe, focus_of, side
from avagent.perception.avllm.senses import AgentSenses
from avagent.perception.avllm.sounds import SoundLog, SoundSettings
from avagent.policy.inputs import RequestLimits, prepare, refused_kinds
from avagent.policy.scene import SceneSettings
from avagent.sim.faces import blank, scene
from tests.test_wiring import defaults


async def feed(bus: Bus, *items: object) -> None:
    for item in items:
        await bus.publish(item)
        await bus.activity.settled()


async def test_frames_are_sampled_faster_while_the_user_speaks_and_a_still_scene_costs_one_image() -> None:
    bus = Bus()
    sampler = FrameSampler(bus, FrameSettings(speaking_fps=1.0, idle_fps=0.25, max_side=160))
    task = asyncio.create_task(sampler.run())
    frames = [VideoFrame(image=blank(shade=20 + 2 * k), t=k * 0.1, t_capture=0.0) for k in range(100)]
    await feed(bus, *frames[:40])  # four idle seconds: one frame, then one four seconds on
    idle = [i.t for i in sampler.images_since(0.0)]
    await feed(
        bus, SpeechStarted(t=4.0), *frames[40:80], SpeechEnded(t=8.0, start=4.0, end=8.0), *frames[80:]
    )
    task.cancel()
    assert idle == [0.0]
    times = [round(i.t, 1) for i in sampler.images_since(0.0)]
    assert times == [0.0, 4.0, 5.0, 6.0, 7.0], "1 a second while speaking, none of the idle second after"
    assert sampler.images_encoded == 5
    image = sampler.latest()
    assert image is not None
    assert (image.width, image.height) == (160, 120)
    assert image.jpeg[:3] == b"\xff\xd8\xff"
    still = FrameSampler(Bus(), FrameSettings(idle_fps=10.0))
    for k in range(20):
        sample = still.look(VideoFrame(image=blank(), t=k * 0.1, t_capture=0.0))
        if sample is not None:
            still.keep(encode_jpeg(blank(), k * 0.1, max_side=64, quality=50), sample, k * 0.1)
    assert still.images_encoded == 1
    assert still.repeats >= 1
    assert [i.t for i in still.images_since(1.5)] == [0.0], "still current: seen until the last frame"


def test_what_sight_and_hearing_report_in_words() -> None:
    bus = Bus()
    sampler = FrameSampler(bus)
    faces = (
        FaceRecord(id=3, box=(100, 100, 80, 100), bearing_deg=20.0, camera_deg=20.0),
        FaceRecord(id=5, box=(400, 100, 80, 100), bearing_deg=340.0, camera_deg=-20.0),
    )
    sampler.observe(Faces(t=9.5, faces=faces))
    dark = np.zeros((120, 160, 3), dtype=np.uint8)
    sampler.look(VideoFrame(image=dark, t=9.0, t_capture=0.0))
    sampler.look(VideoFrame(image=dark, t=9.9, t_capture=0.0))
    sounds = SoundLog(bus, SoundSettings(loud_db=15.0))
    quiet = np.full((512, 1), 0.001, dtype=np.float32)
    for k in range(60):
        level = 0.5 if 20 <= k < 24 else 0.001  # a loud sound, then a voice
        sounds.hear(
            AudioFrame(samples=quiet * (level / 0.001), sample_rate=16000, t=k * 0.032, t_capture=0.0)
        )
    sounds.observe(SpeechEnded(t=1.9, start=1.4, end=1.8))
    sounds.observe(ActiveSpeaker(t=1.9, face_id=3, azimuth_deg=20.0))
    senses = AgentSenses(sampler, sounds, lambda: 10.0)
    assert senses.report("what do you see") == (
        "I see two faces: face 3, 20 degrees to my left and face 5, 20 degrees to my right. "
        "The picture is dark and still."
    )
    assert senses.report("who is speaking") == "Face 3, 20 degrees to my left, was speaking 8 seconds ago."
    heard = senses.report("what was that sound")
    assert heard.startswith("I heard a sound that was not speech 9 seconds ago, ")
    assert heard.endswith("It is quiet here.")
    full = senses.report("what do you see", full=True)
    assert full.index("I see") < full.index("Face 3") < full.index("I heard")
    blind = describe(SenseState(now=1.0, has_camera=False, faces=None, light=None, hearing=None))
    assert blind == "I have no camera, so I cannot see."
    assert side(3.0) == "straight ahead"
    assert side(-90.0) == "90 degrees to my right"
    assert (focus_of("who is there"), focus_of("who said that"), focus_of("what do you hear")) == (
        "scene",
        "speaker",
        "sound",
    )


async def test_a_turns_utterance_is_waited_for_and_recent_sound_is_kept_at_16_khz() -> None:
    log = SoundLog(Bus(), SoundSettings(recent_s=2.0))
    for k in range(100):
        block = np.full((480, 1), 0.1 if k % 2 else -0.1, dtype=np.float32)
        log.hear(AudioFrame(samples=block, sample_rate=48000, t=k * 0.01, t_capture=0.0))
    clip = log.recent(5.0)
    assert clip is not None
    assert clip.sample_rate == 16000
    assert abs(clip.duration - 0.99) < 0.02, "all that was heard (less the resampler's delay)"
    assert await log.utterance(1, timeout_s=0.05) is None, "never said: not waited for long"


def test_a_request_keeps_the_newest_images_within_its_bytes_and_the_utterance_within_its_length() -> None:
    images = tuple(
        encode_jpeg(scene([(100 + 40 * k, 240, 110, 0.0)]), float(k), max_side=320, quality=90)
        for k in range(6)
    )
    utterance = encode_wav(np.zeros(16000 * 3, dtype=np.float32), 16000, 0.0)
    media = TurnMedia(images=(*images, images[5]), audio=utterance)
    prepared = prepare(media, RequestLimits(max_images=4, max_audio_s=1.0))
    kinds = [b["type"] for b in prepared.blocks]
    assert kinds == ["image"] * 4 + ["audio"]
    assert prepared.images_left_out == 3, "one repeat, two beyond max_images"
    assert prepared.blocks[0]["base64"] == images[2].base64
    tight = prepare(media, RequestLimits(max_bytes=2 * images[5].encoded_size + 44_000, max_audio_s=1.0))
    assert [b["type"] for b in tight.blocks] == ["image", "image", "audio"]
    assert tight.blocks[1]["base64"] == images[5].base64, "the newest kept"
    assert tight.encoded_bytes <= 2 * images[5].encoded_size + 44_000
    no_room = prepare(media, RequestLimits(max_bytes=10_000))
    assert no_room.audio_left_out
    assert "audio" not in no_room.kinds
    assert refused_kinds(400, "input_audio is not supported", {"image", "audio"}) == {"audio"}
    assert refused_kinds(413, "too large", {"image", "audio"}) == {"image", "audio"}
    assert refused_kinds(500, "image", {"image"}) == set(), "a failure is no refusal"


@pytest.mark.parametrize(
    ("section", "settings", "only_in_config"),
    [
        (FramesConfig, FrameSettings, set()),
        (SoundsConfig, SoundSettings, set()),
        (RequestsConfig, RequestLimits, set()),
        (
            AvllmConfig,
            SceneSettings,
            {
                "tools",
                "model",
                "backend",
                "base_url",
                "api_key_env",
                "device",
                "max_new_tokens",
                "voice",
                "frames",
                "requests",
                "sounds",
            },
        ),
    ],
)
def test_settings_keep_the_names_and_defaults_of_the_avllm_section(
    section: type, settings: type, only_in_config: set[str]
) -> None:
    config_fields, settings_fields = defaults(section), defaults(settings)
    assert set(config_fields) - only_in_config == set(settings_fields)
    for name in settings_fields:
        assert config_fields[name] == settings_fields[name], f"{settings.__name__}.{name}"
    assert dataclasses.is_dataclass(settings)


def test_model_inputs_and_outputs_parse_from_the_command_lines_form() -> None:
    config = parse_config({"policy": {"model_input": "text, image,audio", "model_output": ["text", "audio"]}})
    assert config.policy.model_input == ("text", "image", "audio")
    assert config.policy.model_output == ("text", "audio")
    with pytest.raises(ConfigError, match="model_input"):
        parse_config({"policy": {"model_input": "text,video"}})
    with pytest.raises(ConfigError, match="needs the user's words"):
        parse_config({"policy": {"model_input": "image"}})
