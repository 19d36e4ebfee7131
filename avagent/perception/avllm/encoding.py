"""Encoding what the senses hold for a model: a frame as a JPEG fitted inside a square, sound as a
16-bit PCM WAV file, and the small grey thumbnail that tells a still scene from a moving one.

JPEG encoding takes milliseconds for a camera frame: the frame sampler calls it on a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import wave

import cv2
import numpy as np

from avagent.core.media import EncodedAudio, EncodedImage
from avagent.core.messages import to_int16

THUMB_SIZE = (32, 24)
"""Width and height of the grey thumbnail that compares frames (brightness, motion, sameness)."""


def fit_inside(width: int, height: int, max_side: int) -> tuple[int, int]:
    """The size of a ``width`` x ``height`` image scaled down (never up) to fit ``max_side``."""
    scale = min(1.0, max_side / max(width, height, 1))
    return max(1, round(width * scale)), max(1, round(height * scale))


def encode_jpeg(image: np.ndarray, t: float, *, max_side: int, quality: int) -> EncodedImage:
    """A BGR frame as a JPEG fitted inside ``max_side`` x ``max_side`` (blocking: off the loop)."""
    height, width = image.shape[:2]
    size = fit_inside(width, height, max_side)
    if size != (width, height):
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("the frame could not be encoded as a JPEG")
    jpeg = buffer.tobytes()
    return EncodedImage(jpeg=jpeg, width=size[0], height=size[1], t=t, digest=_digest(jpeg))


def encode_wav(samples: np.ndarray, sample_rate: int, start: float) -> EncodedAudio:
    """Mono float samples as a 16-bit PCM WAV clip starting at media time ``start``."""
    pcm = to_int16(np.asarray(samples, dtype=np.float32).reshape(-1))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm.tobytes())
    wav = buffer.getvalue()
    end = start + pcm.shape[0] / sample_rate
    return EncodedAudio(wav=wav, sample_rate=sample_rate, start=start, end=end, digest=_digest(wav))


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A tiny grey version of a BGR frame (float32, 0..255): cheap enough for every frame."""
    small = cv2.resize(image, THUMB_SIZE, interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    return grey.astype(np.float32)


def difference(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two thumbnails, in grey levels (0..255)."""
    return float(np.mean(np.abs(a - b)))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]
