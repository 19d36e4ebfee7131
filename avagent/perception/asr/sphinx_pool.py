"""A pool of pocketsphinx worker processes (see ``sphinx_worker``), usable from any event loop.

Each worker is a plain child process talking over pipes (``ChildProcess``): no pickling, no
re-import of the user's main script (which multiprocessing's "spawn" would do), and no fork of a
process that runs threads. A request blocks one worker thread while the child decodes; the GIL is
free meanwhile.
"""

from __future__ import annotations

import queue
import struct
import threading
from typing import Any

from avagent.agent.child_process import ChildProcess
from avagent.perception.asr.base import RecognizerError

_KIND_BYTES = {"words": b"w", "phones": b"p"}


def _worker(settings: dict[str, Any]) -> ChildProcess:
    return ChildProcess("avagent.perception.asr.sphinx_worker", settings, RecognizerError)


def _decode(worker: ChildProcess, kind: str, pcm: bytes) -> tuple[str, float]:
    reply = worker.request(_KIND_BYTES[kind] + struct.pack("<I", len(pcm)), pcm)
    return str(reply["text"]), float(reply["score"])


class SphinxProcessPool:
    """``size`` worker processes with the same decoders; a dead worker is replaced on next use."""

    def __init__(self, size: int, grammar: str | None, dictionary: str | None) -> None:
        self._settings = {"grammar": grammar, "dictionary": dictionary}
        self._idle: queue.Queue[ChildProcess] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        workers = [_worker(self._settings) for _ in range(size)]  # start them all, then wait
        try:
            for worker in workers:
                worker.ready()
        except Exception:
            for worker in workers:
                worker.close()
            raise
        for worker in workers:
            self._idle.put(worker)

    def decode(self, kind: str, pcm: bytes) -> tuple[str, float]:
        """Blocking: run on a worker thread."""
        if self._closed:
            raise RecognizerError("the recogniser is closed")
        worker = self._idle.get()
        try:
            if not worker.alive:
                worker.close()
                worker = _worker(self._settings)
                worker.ready()
            return _decode(worker, kind, pcm)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        """Stop every worker process; safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return
