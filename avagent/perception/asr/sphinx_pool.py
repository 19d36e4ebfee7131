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

from avagent.core.child_process import ChildProcess
from avagent.perception.asr import sphinx_worker
from avagent.perception.asr.base import RecognizerError

_KIND_BYTES = {kind: code for code, kind in sphinx_worker.KINDS.items()}


def _worker(settings: dict[str, Any]) -> ChildProcess:
    worker = ChildProcess(sphinx_worker, settings, RecognizerError)
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
