"""WAV files in: checked before use, so that a bad file gets one clear line instead of a crash."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from avagent.core.errors import InputError

SUPPORTED_SUBTYPES = {"PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE", "ULAW", "ALAW"}
_SCAN_BLOCK = 1 << 16


@dataclass(frozen=True, slots=True)
class WavInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def inspect_wav(path: str | Path, *, scan_samples: bool = True) -> WavInfo:
    """Check that ``path`` is a complete, readable WAV file of finite samples; raise ``InputError``
    saying what is wrong otherwise."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a WAV file")
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"{p}: the file is empty")
    with p.open("rb") as f:
        head = f.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        raise InputError(f"{p}: not a WAV file (no RIFF/WAVE header)")
    try:
        info = sf.info(str(p))
    except Exception as exc:  # libsndfile's message is the useful part
        raise InputError(f"{p}: cannot read as WAV: {_first_line(exc)}") from None
    if info.subtype not in SUPPORTED_SUBTYPES:
        raise InputError(
            f"{p}: unsupported sample format {info.subtype} (use 8/16/24/32-bit PCM or 32/64-bit float)"
        )
    if info.frames == 0:
        raise InputError(f"{p}: the file holds no audio samples")
    _check_complete(p, size, info.samplerate, info.channels)
    if scan_samples and info.subtype in ("FLOAT", "DOUBLE"):
        _check_finite(p, info.samplerate)
    return WavInfo(p, int(info.samplerate), int(info.channels), int(info.frames), str(info.subtype))


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """The whole checked file as float32 ``(frames, channels)`` and its sample rate."""
    info = inspect_wav(path)
    samples, rate = sf.read(str(info.path), dtype="float32", always_2d=True)
    return samples, int(rate)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _check_complete(p: Path, size: int, rate: int, channels: int) -> None:
    """Compare the data chunk's declared size with the bytes really there."""
    with p.open("rb") as f:
        f.seek(12)
        while True:
            header = f.read(8)
            if len(header) < 8:
                return
            chunk_id, chunk_size = struct.unpack("<4sI", header)
            if chunk_id == b"data":
                if chunk_size in (0, 0xFFFFFFFF):
                    return  # written while streaming: the length was never filled in
                available = size - f.tell()
                if available < chunk_size:
                    block = max(1, channels) * _bytes_per_sample(p)
                    promised = chunk_size / block / rate
                    held = available / block / rate
                    raise InputError(
                        f"{p}: truncated: the header promises {promised:.2f} s of audio, "
                        f"the file holds {held:.2f} s"
                    )
                return
            f.seek(chunk_size + (chunk_size & 1), 1)


def _bytes_per_sample(p: Path) -> int:
    subtype = sf.info(str(p)).subtype
    return {
        "PCM_U8": 1,
        "ULAW": 1,
        "ALAW": 1,
        "PCM_16": 2,
        "PCM_24": 3,
        "PCM_32": 4,
        "FLOAT": 4,
        "DOUBLE": 8,
    }.get(subtype, 2)


def _check_finite(p: Path, rate: int) -> None:
    with sf.SoundFile(str(p)) as f:
        position = 0
        for block in f.blocks(blocksize=_SCAN_BLOCK, dtype="float32", always_2d=True):
            if not np.isfinite(block).all():
                bad = int(np.argmax(~np.isfinite(block).all(axis=1)))
                raise InputError(f"{p}: NaN or infinite samples at {(position + bad) / rate:.3f} s")
            position += block.shape[0]
