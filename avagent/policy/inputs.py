"""What a multimodal policy model is given besides words: the frames and the utterance of the turn,
as LangChain's standard content blocks, within the limits of one request.

``policy.model_input`` says what the model accepts (``text``, ``image``, ``audio``). The frames and
the utterance come from the senses (``MediaSource``, handed over by the assembly). Every request
is bounded: at most ``max_images`` images (identical ones sent once, the newest kept), at most
``max_bytes`` of media in all (the oldest images go first), an utterance of at most
``max_audio_s``. Only the current turn's media are sent: past turns keep their words alone.

A server that refuses a kind of input (HTTP 400, 413, 415 or 422 on a request that carried it) is
asked again without it, once, and it is not sent to that server again.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from avagent.core.media import EncodedAudio, EncodedImage, TurnMedia

InputKind = Literal["text", "image", "audio"]
MEDIA_KINDS: tuple[InputKind, ...] = ("image", "audio")
REFUSING_STATUS = frozenset({400, 413, 415, 422})
"""HTTP statuses with which a server refuses what a request carries (not a failure of its own)."""
WORDS_IN_AUDIO = "[the user's words are in the audio]"
NO_WORDS = "[the recogniser made out no words; listen to the audio]"


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """The media of one model request (``avllm.requests`` in the config)."""

    max_images: int = 4
    """Images per request; the newest are kept."""
    max_bytes: int = 8_000_000
    """Bytes of images and audio per request, as sent (base64); the oldest images go first."""
    max_audio_s: float = 30.0
    """An utterance longer than this is cut to its last ``max_audio_s`` seconds."""
    uuids: bool = False
    """Give each image part a content ``uuid`` (vLLM caches by it). Image parts are then
    OpenAI-format blocks, for OpenAI-compatible servers only. (The utterance, new in every turn,
    goes without: LangChain rewrites OpenAI audio parts into its own blocks, which lose it.)"""


class MediaSource(Protocol):
    """Where the frames and utterances of turns come from (the agent's senses)."""

    async def turn_media(self, turn: int | None, *, images: bool, audio: bool) -> TurnMedia: ...


@dataclass(frozen=True, slots=True)
class Prepared:
    """One request's media blocks, and what was left out to fit the limits."""

    blocks: tuple[dict[str, Any], ...]
    kinds: frozenset[str]
    """The kinds of media the blocks carry."""
    images_left_out: int = 0
    audio_left_out: bool = False
    encoded_bytes: int = 0


def image_block(image: EncodedImage, *, uuid: bool = False) -> dict[str, Any]:
    """``image`` as a standard LangChain image block (or an OpenAI part with its uuid)."""
    if uuid:
        return {"type": "image_url", "image_url": {"url": image.data_url}, "uuid": image.digest}
    return {"type": "image", "base64": image.base64, "mime_type": "image/jpeg"}


def audio_block(audio: EncodedAudio) -> dict[str, Any]:
    """``audio`` as a standard LangChain audio block (format ``wav`` on the OpenAI wire)."""
    return {"type": "audio", "base64": audio.base64, "mime_type": "audio/wav"}


def last_seconds(audio: EncodedAudio, seconds: float) -> EncodedAudio:
    """The last ``seconds`` of a WAV clip (the clip itself when it is no longer)."""
    if audio.duration <= seconds:
        return audio
    with wave.open(io.BytesIO(audio.wav), "rb") as clip:
        params = clip.getparams()
        keep = int(seconds * params.framerate)
        clip.setpos(max(0, params.nframes - keep))
        frames = clip.readframes(keep)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setparams(params)
        out.writeframes(frames)
    start = audio.end - keep / params.framerate
    return EncodedAudio(buffer.getvalue(), audio.sample_rate, start, audio.end, audio.digest + f"-{keep}")


def prepare(media: TurnMedia, limits: RequestLimits, *, images: bool = True, audio: bool = True) -> Prepared:
    """The media blocks of one request, within ``limits``: identical images once, the newest
    ``max_images``, the utterance cut to ``max_audio_s``, then the oldest images dropped until
    everything fits in ``max_bytes`` (the utterance too, if it alone does not)."""
    chosen: list[EncodedImage] = []
    seen: set[str] = set()
    for image in reversed(media.images if images else ()):
        if image.digest not in seen:
            seen.add(image.digest)
            chosen.append(image)
    chosen.reverse()
    left_out = len(media.images) - len(chosen) if images else 0
    if len(chosen) > limits.max_images:
        left_out += len(chosen) - limits.max_images
        chosen = chosen[len(chosen) - limits.max_images :]
    clip = last_seconds(media.audio, limits.max_audio_s) if audio and media.audio is not None else None
    audio_left_out = False
    if clip is not None and clip.encoded_size > limits.max_bytes:
        clip, audio_left_out = None, True
    budget = limits.max_bytes - (clip.encoded_size if clip is not None else 0)
    while chosen and sum(i.encoded_size for i in chosen) > budget:
        chosen.pop(0)
        left_out += 1
    blocks = [image_block(i, uuid=limits.uuids) for i in chosen]
    if clip is not None:
        blocks.append(audio_block(clip))
    kinds = frozenset(({"image"} if chosen else set()) | ({"audio"} if clip is not None else set()))
    size = sum(i.encoded_size for i in chosen) + (clip.encoded_size if clip is not None else 0)
    return Prepared(tuple(blocks), kinds, left_out, audio_left_out, size)


def refused_kinds(status: int | None, detail: str, sent: Iterable[str]) -> set[str]:
    """The kinds of input a failed request was refused for: those its error names, else all it
    carried; none when the failure is not a refusal."""
    carried = set(sent)
    if status not in REFUSING_STATUS or not carried:
        return set()
    lowered = detail.lower()
    named = {kind for kind in carried if kind in lowered}
    return named or carried


class ModelInputs:
    """The media a policy model takes, where they come from, and what its server refused."""

    def __init__(
        self,
        kinds: Iterable[str],
        source: MediaSource | None,
        limits: RequestLimits | None = None,
    ) -> None:
        self.kinds = frozenset(kinds)
        self.source = source
        self.limits = limits or RequestLimits()
        self.refused: set[str] = set()
        """Kinds the model's server refused: not sent again."""

    def wants(self, kind: str) -> bool:
        return kind in self.kinds and kind not in self.refused

    async def for_turn(self, turn: int | None) -> TurnMedia:
        """The media of ``turn`` that the model takes (nothing without a source)."""
        images, audio = self.wants("image"), self.wants("audio")
        if self.source is None or not (images or audio):
            return TurnMedia()
        return await self.source.turn_media(turn, images=images, audio=audio)

    def prepare(self, media: TurnMedia) -> Prepared:
        return prepare(media, self.limits, images=self.wants("image"), audio=self.wants("audio"))

    def user_text(self, words: str, *, audio_sent: bool) -> str:
        """The words of the turn as the model is given them: without ``text`` in the model's
        inputs, the utterance speaks for itself."""
        if audio_sent and not words:
            return NO_WORDS
        if audio_sent and "text" not in self.kinds:
            return WORDS_IN_AUDIO
        return words

    def refuse(self, status: int | None, detail: str, sent: Iterable[str]) -> set[str]:
        """Note that the server refused a request (if it was a refusal of its media): the kinds
        that are not to be sent again."""
        kinds = refused_kinds(status, detail, sent)
        self.refused |= kinds
        return kinds
