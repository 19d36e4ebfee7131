"""A policy model that sees and hears: each request of a turn carries the turn's sampled frames
(JPEG data URLs of the configured size) and its utterance (a WAV of its length), within the
request limits, over real HTTP to a local OpenAI-compatible server; a server that refuses a kind
of input is asked again without it, once, and is not sent it again."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from avagent.perception.avllm.frames import FrameSettings
from avagent.perception.avllm.senses import AgentSenses
from avagent.policy.base import Policy
from avagent.policy.inputs import ModelInputs, RequestLimits
from avagent.policy.llm import LLMPolicy
from avagent.policy.memory import ConversationMemory
from avagent.sim.faces import blank, scene
from avagent.tools.executor import ToolExecutor
from tests.avllm_support import chat_model, media_policy
from tests.omni_server import Answer, omni_server

ALL = ("text", "image", "audio")


def seeing(
    base_url: str, kinds: tuple[str, ...] = ALL, limits: RequestLimits | None = None
) -> Callable[[ToolExecutor, AgentSenses], Policy]:
    def make(executor: ToolExecutor, senses: AgentSenses) -> Policy:
        return LLMPolicy(
            chat_model(base_url),
            executor,
            memory=ConversationMemory(20, 3000),
            inputs=ModelInputs(kinds, senses, limits),
        )

    return make


def shade(level: int) -> np.ndarray:
    """A plain frame of one grey level: frames of different levels are different pictures."""
    return blank(shade=level)


async def test_each_request_carries_the_turns_frames_and_utterance_and_past_turns_only_words() -> None:
    faces = scene([(200, 240, 110, 0.0), (440, 240, 110, 0.0)])
    async with (
        omni_server(Answer(text="I see two faces."), Answer(text="Still two.")) as server,
        media_policy(seeing(server.base_url)) as h,
    ):
        await h.show(shade(40), 0.0)
        await h.start_speaking(1.5)
        await h.show(faces, 1.7)
        await h.end_turn("what do you see", 1.5, 3.0)
        await h.start_speaking(5.0)
        await h.show(shade(200), 5.1)
        await h.end_turn("and now", 5.0, 5.8)
    assert not server.problems
    first, second = server.seen
    assert first.text.endswith("what do you see")
    [image] = first.images
    assert image.shape == (240, 320, 3), "fitted inside 320 x 320"
    gray = np.asarray(image).mean(axis=2)
    assert gray[240 // 2, 200 // 2] > 150, "a drawn face where it was drawn"
    assert abs(float(gray[10, 10]) - 125) < 12, "the background of the drawn scene"
    [(audio, rate)] = first.audio
    assert rate == 16000
    assert abs(audio.shape[0] / rate - 1.5) < 0.01, "the utterance, from its start to its end"
    assert np.sqrt(np.mean(audio**2)) > 0.1
    [later] = second.images
    assert float(later.mean()) > 150, "the second turn shows its own frame"
    history = second.body["messages"]
    past_user = next(m for m in history if m["role"] == "user")
    assert isinstance(past_user["content"], str), "past turns keep their words alone"
    assert past_user["content"].endswith("what do you see")
    assert h.said() == ["I see two faces.", "Still two."]
    assert not h.events("error")


async def test_requests_stay_within_their_limits_and_send_identical_frames_once() -> None:
    limits = RequestLimits(max_images=2, max_bytes=60_000, max_audio_s=1.0)
    async with (
        omni_server(Answer(text="Yes."), Answer(text="Again.")) as server,
        media_policy(
            seeing(server.base_url, limits=limits), frames=FrameSettings(speaking_fps=10, max_side=320)
        ) as h,
    ):
        await h.start_speaking(1.0)
        for k in range(6):
            await h.show(shade(30 + 30 * k), 1.0 + 0.2 * k)
        await h.end_turn("look", 1.0, 3.0)
        await h.start_speaking(4.0)
        for k in range(4):
            await h.show(shade(90), 4.0 + 0.2 * k)
        await h.end_turn("and again", 4.0, 5.0)
    assert not server.problems
    first, second = server.seen
    assert len(first.images) == 2, "at most max_images"
    means = [float(i.mean()) for i in first.images]
    assert abs(means[0] - 153.3) < 3, f"the newest ones: {means}"
    assert abs(means[1] - 183.3) < 3, f"the newest ones: {means}"
    assert abs(first.audio[0][0].shape[0] / 16000 - 1.0) < 0.01, "cut to its last max_audio_s"
    assert len(second.images) == 1, "a still scene: one picture, sent once"
    assert h.frames.repeats >= 3


async def test_a_server_that_refuses_audio_is_asked_again_without_it_once_and_never_sent_it_again() -> None:
    async with (
        omni_server(
            Answer(refuse=frozenset({"audio"})), Answer(text="I see you."), Answer(text="Still here.")
        ) as server,
        media_policy(seeing(server.base_url)) as h,
    ):
        await h.show(scene([(320, 240, 110, 0.0)]), 0.5)
        await h.say_turn("hello", 1.0, 2.0)
        await h.say_turn("are you there", 3.0, 4.0)
    assert [s.kinds for s in server.seen] == [{"image", "audio"}, {"image"}, {"image"}]
    assert h.said() == ["I see you.", "Still here."]
    [error] = h.events("error")
    assert "refused the turn's audio" in error["message"]
    assert "HTTP 400" in error["message"]


async def test_a_refusal_that_names_nothing_drops_every_kind_and_a_second_one_is_an_error() -> None:
    def vague(seen: object) -> Answer:
        return Answer(status=400)

    async with (
        omni_server(vague, vague, Answer(text="Words only.")) as server,
        media_policy(seeing(server.base_url)) as h,
    ):
        await h.show(scene([(320, 240, 110, 0.0)]), 0.5)
        await h.say_turn("hello", 1.0, 2.0)
        await h.say_turn("hello again", 3.0, 4.0)
    assert [s.kinds for s in server.seen] == [{"image", "audio"}, set(), set()]
    assert h.said() == ["Sorry, I cannot answer right now.", "Words only."]
    assert len(h.events("error")) == 2, "the refusal, then the failure of the request without media"


async def test_bad_answers_become_errors_and_the_agent_answers_the_next_turn() -> None:
    async with (
        omni_server(Answer(raw=b"<html>not json</html>"), Answer(status=500), Answer(text="Back.")) as server,
        media_policy(seeing(server.base_url)) as h,
    ):
        await h.show(scene([(320, 240, 110, 0.0)]), 0.5)
        await h.say_turn("one", 1.0, 2.0)
        await h.say_turn("two", 3.0, 4.0)
        await h.say_turn("three", 5.0, 6.0)
    assert h.said() == ["Sorry, I cannot answer right now."] * 2 + ["Back."]
    assert len(h.events("error")) == 2
    assert all(s.kinds == {"image", "audio"} for s in server.seen), "a failure is no refusal"


async def test_content_uuids_name_each_part_for_servers_that_cache_them() -> None:
    async with (
        omni_server(Answer(text="Seen."), Answer(text="Seen again.")) as server,
        media_policy(seeing(server.base_url, limits=RequestLimits(uuids=True))) as h,
    ):
        await h.show(scene([(320, 240, 110, 0.0)]), 0.5)
        await h.say_turn("look", 1.0, 2.0)
        await h.say_turn("look again", 3.0, 4.0)
    first, second = server.seen
    assert len(first.uuids) == 1, "the image (the utterance, new each turn, goes without)"
    assert first.uuids == second.uuids, "the same picture, the same id"
    assert first.kinds == second.kinds == {"image", "audio"}
    assert h.frames.latest() is not None
    assert first.uuids[0] == h.frames.latest().digest  # type: ignore[union-attr]


async def test_an_utterance_the_recogniser_missed_still_reaches_a_model_that_hears() -> None:
    async with (
        omni_server(Answer(text="You hummed.")) as server,
        media_policy(seeing(server.base_url, kinds=("audio",))) as h,
    ):
        await h.say_turn("", 1.0, 2.0)
    [seen] = server.seen
    assert "[the recogniser made out no words; listen to the audio]" in seen.text
    assert seen.kinds == {"audio"}
    assert h.said() == ["You hummed."]
