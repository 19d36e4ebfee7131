"""Offline speech with espeak-ng, from the library and voice data inside the espeakng-loader wheel.

The library is driven through ctypes in synchronous mode: each call hands back the whole waveform
through a callback. espeak-ng keeps global state, so one lock serialises all use in the process.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np

from avagent.io.tts.base import SynthesisError, run_in_worker

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_ESPEAK_RATE = 1
_ESPEAK_PITCH = 3
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Engine:
    """The process-wide espeak-ng instance."""

    _instance: _Engine | None = None
    _create_lock = threading.Lock()

    @classmethod
    def get(cls) -> _Engine:
        with cls._create_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise SynthesisError(
                "espeak-ng needs the espeakng-loader package (pip install espeakng-loader)"
            ) from exc
        self.lock = threading.Lock()
        self._lib: Any = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        self._libc: Any = ctypes.CDLL(None)
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self.data_path = Path(espeakng_loader.get_data_path())
        data = str(self.data_path).encode()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise SynthesisError(f"espeak-ng failed to start (data at {data.decode()})")
        self.sample_rate = int(rate)
        self._chunks: list[np.ndarray] = []
        # Keep a reference to the callback: ctypes would otherwise free it while C still holds it.
        self._callback = _SYNTH_CALLBACK(self._collect)
        self._lib.espeak_SetSynthCallback(self._callback)
        self._voice: str | None = None

    def _collect(self, wav: Any, count: int, _events: Any) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def synthesize(self, text: str, voice: str, rate_wpm: int, pitch: int) -> np.ndarray:
        with self.lock:
            if voice != self._voice:
                if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                    by_language = voice_for_language(voice, self.data_path)
                    if by_language is None or self._lib.espeak_SetVoiceByName(by_language.encode()) != 0:
                        raise SynthesisError(f"espeak-ng has no voice named {voice!r}")
                self._voice = voice
            self._lib.espeak_SetParameter(_ESPEAK_RATE, rate_wpm, 0)
            self._lib.espeak_SetParameter(_ESPEAK_PITCH, pitch, 0)
            self._chunks = []
            # Voice variants add breath noise from random numbers (espeak-ng's own generator and
            # the C library's, which other libraries in the process also draw from): seed both so
            # that a text always sounds the same.
            self._lib.espeak_ng_SetRandSeed(ctypes.c_long(1))
            self._libc.srand(1)
            data = text.encode("utf-8") + b"\0"
            status = self._lib.espeak_Synth(data, len(data), 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            if status != 0:
                raise SynthesisError(f"espeak-ng could not speak {text[:40]!r} (status {status})")
            chunks, self._chunks = self._chunks, []
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32) * np.float32(1.0 / 32768.0)


def voice_for_language(voice: str, data_path: Path) -> str | None:
    """The voice file espeak-ng's own command would take for a language code (``en-gb``,
    ``en-gb+f3``): the library finds voices by file name only, the command by language too."""
    base, plus, variant = voice.partition("+")
    found = _languages(data_path).get(base.lower())
    return None if found is None else found + plus + variant


@functools.lru_cache(maxsize=1)
def _languages(data_path: Path) -> dict[str, str]:
    """Language code -> the voice file that serves it best (the lowest priority number)."""
    best: dict[str, tuple[int, str]] = {}
    for path in sorted((data_path / "lang").rglob("*")):
        if not path.is_file():
            continue
        try:
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[:20]
        except OSError:
            continue
        for line in lines:
            words = line.split()
            if len(words) >= 2 and words[0] == "language":
                priority = int(words[2]) if len(words) > 2 and words[2].isdigit() else 5
                code = words[1].lower()
                if code not in best or priority < best[code][0]:
                    best[code] = (priority, path.name)
    return {code: name for code, (_priority, name) in best.items()}


class EspeakSynthesizer:
    """Text to 22,050 Hz speech with espeak-ng; needs nothing but pip packages."""

    name = "espeak"

    def __init__(self, voice: str = "en-us", rate_wpm: int = 160, pitch: int = 50) -> None:
        self._engine = _Engine.get()
        self.voice = voice
        self.rate_wpm = rate_wpm
        self.pitch = pitch
        self.sample_rate = self._engine.sample_rate
        # Fail now, at start-up, rather than at the first reply.
        self._engine.synthesize("", voice, rate_wpm, pitch)

    def synthesize_sync(self, text: str) -> np.ndarray:
        return self._engine.synthesize(text, self.voice, self.rate_wpm, self.pitch)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def synthesize(self, text: str) -> np.ndarray:
        """Mono float32 samples at ``sample_rate``."""
        return await run_in_worker(self.synthesize_sync, text)
