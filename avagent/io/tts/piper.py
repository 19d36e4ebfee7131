"""Neural speech with piper (the ``piper`` extra) from a local voice file.

piper ships no voice: download one (``.onnx`` and ``.onnx.json``) and give its path.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from avagent.io.tts.base import SynthesisError, run_in_worker


class PiperSynthesizer:
    name = "piper"

    def __init__(self, model: str | Path) -> None:
        path = Path(model)
        if not path.is_file():
            raise SynthesisError(f"{path}: no such piper voice file")
        if not Path(str(path) + ".json").is_file():
            raise SynthesisError(f"{path}.json: the voice's config file is missing")
        try:
            from piper import PiperVoice
        except ImportError:
            raise SynthesisError("the piper backend needs piper-tts: pip install 'avagent[piper]'") from None
        try:
            self._voice: Any = PiperVoice.load(str(path))
        except Exception as exc:
            raise SynthesisError(f"cannot load the piper voice {path}: {exc}") from None
        self.sample_rate = int(self._voice.config.sample_rate)
        self._lock = threading.Lock()

    def synthesize_sync(self, text: str) -> np.ndarray:
        with self._lock:
            chunks = [chunk.audio_float_array for chunk in self._voice.synthesize(text)]
        if not chunks:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(chunks).astype(np.float32)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def synthesize(self, text: str) -> np.ndarray:
        return await run_in_worker(self.synthesize_sync, text)
