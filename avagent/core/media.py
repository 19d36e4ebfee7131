"""Media made ready for a multimodal model: camera frames as JPEG images, sound as WAV clips.

The senses encode them (``perception/avllm``); the policy puts them into a model's requests
(``policy/inputs.py``). Both only agree on these types, so neither imports the other.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class EncodedImage:
    """One sampled camera (or call) frame as a JPEG.

    ``digest`` names the content (a hash of the JPEG bytes): identical frames share it, so a
    request carries each once and a server that caches by content id can skip it.
    """

    jpeg: bytes = field(repr=False)
    width: int
    height: int
    t: float
    """Media time of the frame."""
    digest: str

    @property
    def base64(self) -> str:
        return base64.b64encode(self.jpeg).decode("ascii")

    @property
    def data_url(self) -> str:
        return "data:image/jpeg;base64," + self.base64

    @property
    def encoded_size(self) -> int:
        """Bytes the image takes in a request (base64)."""
        return 4 * ((len(self.jpeg) + 2) // 3)


@dataclass(frozen=True, slots=True)
class EncodedAudio:
    """A clip of sound as a 16-bit PCM WAV file, from ``start`` to ``end`` in media seconds."""

    wav: bytes = field(repr=False)
    sample_rate: int
    start: float
    end: float
    digest: str

    @property
    def duration(self) -> float:
        return self.end - self.start

    @property
    def base64(self) -> str:
        return base64.b64encode(self.wav).decode("ascii")

    @property
    def encoded_size(self) -> int:
        return 4 * ((len(self.wav) + 2) // 3)


@dataclass(frozen=True, slots=True)
class TurnMedia:
    """What the senses hold for one user turn: the frames sampled while it was said (the newest
    last) and the utterance itself."""

    images: tuple[EncodedImage, ...] = ()
    audio: EncodedAudio | None = None
