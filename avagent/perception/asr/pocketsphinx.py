"""Offline recognition with pocketsphinx, using the English model inside its wheel.

With a JSGF grammar (built from the tools' spoken phrases) it recognises exactly the commands the
agent can carry out. Its general language model is far too weak for free speech: use the whisper
or openai backends for that.

A grammar forces any speech onto some phrase of the grammar, so each utterance is also decoded by
an unconstrained phone loop; the grammar path's score relative to the phone loop's is the
``confidence``: about 1 for a phrase of the grammar, lower for speech forced onto one.

pocketsphinx holds the GIL while it decodes (10-40 ms per utterance), which would stall the event
loop and every other agent in the process. Decoding therefore runs in a pool of worker processes
(``sphinx_decoding``), the grammar and the phone loop side by side. Each worker is a plain child
process talking over pipes (``ChildProcess``): no pickling, no re-import of the user's main script
(which multiprocessing's "spawn" would do), and no fork of a process that runs threads. A request
blocks one thread while the child decodes; the GIL is free meanwhile.

Digitally silent stretches (synthesised or gated audio) throw off pocketsphinx's noise estimate
and cut its accuracy sharply, so a faint, seeded noise floor (about -66 dBFS) is added first.
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
from avagent.perception.asr import sphinx_decoding
from avagent.perception.asr.base import Recognition, RecognizerError
from avagent.perception.asr.sphinx_decoding import decode, make_decoders

_KIND_BYTES = {kind: code for code, kind in sphinx_decoding.KINDS.items()}


def _worker(settings: dict[str, Any]) -> ChildProcess:
    worker = ChildProcess(sphinx_decoding, settings, RecognizerError)
    worker.start()
    return worker


def _decode(worker: ChildProcess, kind: str, pcm: bytes) -> tuple[str, float]:
    reply = worker.request(_KIND_BYTES[kind] + struct.pack("<I", len(pcm)), pcm)
    return str(reply["text"]), float(reply["score"])


class SphinxProcessPool:
    """``size`` worker processes with the same decoders; a dead worker is replaced on next use.
    Its calls block: make them off the event loop."""

    def __init__(self, size: int, grammar: str | None, dictionary: str | None) -> None:
        self._size = size
        self._settings = {"grammar": grammar, "dictionary": dictionary}
        self._idle: queue.Queue[ChildProcess] = queue.Queue()
        self._lock = threading.Lock()
        self._started = False
        self._stopped = False

    def start(self) -> None:
        """Start every worker and wait until all are ready; safe to call twice."""
        with self._lock:
            if self._started:
                return
            workers = [_worker(self._settings) for _ in range(self._size)]  # start them all, then wait
            try:
                for worker in workers:
                    worker.ready()
            except Exception:
                for worker in workers:
                    worker.stop()
                raise
            for worker in workers:
                self._idle.put(worker)
            self._started = True

    def decode(self, kind: str, pcm: bytes) -> tuple[str, float]:
        if self._stopped or not self._started:
            raise RecognizerError("the recogniser is not running (start it first)")
        worker = self._idle.get()
        try:
            if not worker.alive:
                worker.stop()
                worker = _worker(self._settings)
                worker.ready()
            return _decode(worker, kind, pcm)
        finally:
            self._idle.put(worker)

    def stop(self) -> None:
        """Stop every worker process; safe to call twice."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        while True:
            try:
                self._idle.get_nowait().stop()
            except queue.Empty:
                return


class PocketsphinxRecognizer:
    """Grammar decoding with a phone-loop confidence, in ``processes`` worker processes (0: in this
    process, blocking the caller: for scripts and benchmarks only)."""

    name = "pocketsphinx"

    def __init__(
        self,
        grammar: str | None = None,
        *,
        processes: int = 2,
        noise_floor: float = 16.0 / 32768.0,
        dictionary: str | None = None,
    ) -> None:
        """``grammar`` is JSGF text; without one the general English language model is used (and no
        confidence is given)."""
        self.grammar = grammar
        self._noise_floor = noise_floor
        # Build the decoders here first: a bad grammar fails now, in this process, with its reason.
        self._local = make_decoders(grammar, dictionary)
        self._pool = SphinxProcessPool(processes, grammar, dictionary) if processes > 0 else None

    async def start(self) -> None:
        """Start the worker processes (and wait until they are ready); safe to call twice."""
        if self._pool is not None:
            await asyncio.to_thread(self._pool.start)

    def _pcm(self, audio: np.ndarray, sample_rate: int) -> bytes:
        samples = audio.astype(np.float32, copy=False)
        if sample_rate != SAMPLE_RATE:
            samples = np.asarray(soxr.resample(samples, sample_rate, SAMPLE_RATE), dtype=np.float32)
        # The same floor for the same audio: results do not change from run to run.
        rng = np.random.default_rng(samples.shape[0])
        floor = np.asarray(rng.standard_normal(int(samples.shape[0])), dtype=np.float32) * np.float32(
            self._noise_floor
        )
        return to_int16(samples + floor).tobytes()

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        if audio.shape[0] == 0:
            return Recognition("")
        pcm = self._pcm(audio, sample_rate)
        pool = self._pool
        if pool is None:
            return self._decode_here(pcm)
        if self.grammar is None:
            return self._combine(await asyncio.to_thread(pool.decode, "words", pcm), None)
        words, phones = await asyncio.gather(
            asyncio.to_thread(pool.decode, "words", pcm), asyncio.to_thread(pool.decode, "phones", pcm)
        )
        return self._combine(words, phones)

    def transcribe_sync(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        """Blocking, in this process (scripts and benchmarks; never on an event loop)."""
        return self._decode_here(self._pcm(audio, sample_rate))

    def _decode_here(self, pcm: bytes) -> Recognition:
        phones = decode(self._local["phones"], pcm) if "phones" in self._local else None
        return self._combine(decode(self._local["words"], pcm), phones)

    @staticmethod
    def _combine(words: tuple[str, float], phones: tuple[str, float] | None) -> Recognition:
        text, score = words
        if not text:
            return Recognition("")
        if phones is None or phones[1] <= 0.0:
            return Recognition(text)
        return Recognition(text, round(min(1.0, score / phones[1]), 3))

    async def stop(self) -> None:
        """Stop the worker processes; safe to call twice."""
        if self._pool is not None:
            await asyncio.to_thread(self._pool.stop)
