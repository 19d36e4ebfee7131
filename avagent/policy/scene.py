"""The scene describer: answers ``describe_scene`` and ``listen``, and publishes each answer as a
``scene`` event that the policy's context includes from then on.

With a vision (or omni) model configured (``avllm:`` in the config: a model of its own, so that a
small local vision model can serve a text-only policy), the model is shown the latest frames and,
for what was heard, the last seconds of sound, with what the agent's own senses report and the
question. Without one, or when the model fails, the answer is the senses' own report: honest
about what perception can tell and nothing more. A model's answer is bounded in time and words.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from avagent.core.bus import Bus
from avagent.core.events import Error, Scene, Stop
from avagent.core.media import EncodedAudio, EncodedImage, TurnMedia
from avagent.core.text import describe_error
from avagent.policy.inputs import RequestLimits, prepare, refused_kinds
from avagent.policy.limits import WordCounter

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.messages import BaseMessage

Focus = Literal["scene", "speaker", "sound"]

MAX_SCENE_CHARS = 2000
"""The most of a model's description kept (its stream is closed there)."""
SCENE_PROMPT = """\
You are the eyes and ears of a robot that talks with people. You are shown its latest camera \
frames (and, when asked about sounds, what it heard), with what its own sensors report. Answer \
the question in one to three short spoken sentences about what is really there; say so when \
you cannot tell. Directions are from the robot's point of view."""


class SceneSenses(Protocol):
    """What the describer looks at and listens to (the agent's senses)."""

    def latest_images(self, count: int) -> list[EncodedImage]: ...

    def recent_sound(self, seconds: float) -> EncodedAudio | None: ...

    def report(self, question: str = "", focus: Focus | None = None, *, full: bool = False) -> str: ...


class Lifecycle(Protocol):
    """A model that loads when the agent starts and lets go when it stops (a local model)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SceneSettings:
    """How the describer asks its model (``avllm`` in the config)."""

    model_input: tuple[str, ...] = ("text", "image")
    """What the model takes besides the question: ``image``, ``audio``."""
    timeout_s: float = 20.0
    """The longest a description may take; then the senses' own report is given."""
    max_words: int = 80
    listen_s: float = 5.0
    """Seconds of the latest sound a model that takes audio is given."""


class SceneDescriber:
    """Describes what the agent sees and hears, with a model or from its senses."""

    name = "avllm"
    consumes = (Stop,)
    produces = (Scene, Error)

    def __init__(
        self,
        bus: Bus,
        senses: SceneSenses,
        model: BaseChatModel | None = None,
        settings: SceneSettings | None = None,
        limits: RequestLimits | None = None,
        *,
        lifecycle: Lifecycle | None = None,
        label: str = "",
    ) -> None:
        self._bus = bus
        self.senses = senses
        self.model = model
        self.settings = settings or SceneSettings()
        self.limits = limits or RequestLimits()
        self.lifecycle = lifecycle
        self.label = label
        self.refused: set[str] = set()
        """Kinds of input the model's server refused: not sent again."""
        # Only to end with the bus: descriptions run in the tools that ask for them, which a stop
        # cancels.
        self._inbox = bus.subscribe(Stop, name="avllm.stop", maxsize=8)

    async def run(self) -> None:
        if self.lifecycle is not None:
            try:
                await self.lifecycle.start()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._report(f"the scene model cannot start: {describe_error(exc)}")
                self.model = None
        try:
            async for _stop in self._inbox:
                pass
        finally:
            if self.lifecycle is not None:
                await asyncio.shield(self.lifecycle.stop())

    async def describe_scene(self, question: str) -> str:
        """What the agent sees (and who is there, who speaks), as an answer to ``question``."""
        return await self.describe(question, focus=None)

    async def listen(self, question: str) -> str:
        """What the agent heard lately, as an answer to ``question``."""
        return await self.describe(question, focus="sound")

    async def describe(self, question: str, *, focus: Focus | None) -> str:
        text, source = self.senses.report(question, focus), "perception"
        if self.model is not None:
            answer = await self._ask_model(question, self.senses.report(question, focus, full=True))
            if answer:
                text, source = answer, "model"
        await self._bus.publish(Scene(t=self._bus.media_time(), text=text, source=source))
        return text

    def _wants(self, kind: str) -> bool:
        return kind in self.settings.model_input and kind not in self.refused

    async def _ask_model(self, question: str, report: str) -> str | None:
        """The model's answer, or None (and an ``error`` event) when it gives none in time."""
        from langchain_core.messages import HumanMessage, SystemMessage

        s = self.settings
        images = self.senses.latest_images(self.limits.max_images) if self._wants("image") else []
        sound = self.senses.recent_sound(s.listen_s) if self._wants("audio") else None
        media = TurnMedia(tuple(images), sound)
        retried = False
        while True:
            prepared = prepare(media, self.limits, images=self._wants("image"), audio=self._wants("audio"))
            text = f"What my own sensors report: {report}\nThe question: {question or 'what do you see?'}"
            content: list[str | dict[Any, Any]] = [{"type": "text", "text": text}, *prepared.blocks]
            messages: list[BaseMessage] = [SystemMessage(SCENE_PROMPT), HumanMessage(content=content)]
            try:
                async with asyncio.timeout(s.timeout_s):
                    return await self._stream(messages)
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                await self._report(f"the scene model gave no answer within {s.timeout_s:g} s")
                return None
            except Exception as exc:
                status = getattr(exc, "status_code", None)
                kinds = refused_kinds(status if isinstance(status, int) else None, str(exc), prepared.kinds)
                if kinds and not retried:
                    retried = True
                    self.refused |= kinds
                    await self._report(
                        f"the scene model refused the {' and '.join(sorted(kinds))} ({describe_error(exc)}): "
                        "asked again without, and not sent to it again"
                    )
                    continue
                await self._report(f"the scene model failed: {describe_error(exc)}")
                return None

    async def _stream(self, messages: list[BaseMessage]) -> str | None:
        assert self.model is not None
        words = WordCounter()
        parts: list[str] = []
        size = 0
        iterator = self.model.astream(messages).__aiter__()
        try:
            async for chunk in iterator:
                piece = chunk.text if isinstance(chunk.text, str) else ""
                parts.append(piece)
                size += len(piece)
                if size > MAX_SCENE_CHARS or words.feed(piece) > self.settings.max_words:
                    break
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()
        text = " ".join("".join(parts)[:MAX_SCENE_CHARS].split())
        return _whole_words(text, self.settings.max_words) or None

    async def _report(self, problem: str) -> None:
        await self._bus.publish(Error(t=self._bus.media_time(), stage=self.name, message=problem))


def _whole_words(text: str, limit: int) -> str:
    words = text.split()
    return " ".join(words[:limit])
