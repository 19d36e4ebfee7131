"""A pool of pocketsphinx worker processes (see ``sphinx_worker``), usable from any event loop.

Each worker is a plain child process talking over pipes: no pickling, no re-import of the user's
main script (which multiprocessing's "spawn" would do), and no fork of a process that runs threads.
A request blocks one worker thread while the child decodes; the GIL is free meanwhile.
"""

from __future__ import annotations

import json
import queue
import struct
import subprocess
import sys
import threading
from typing import IO, Any

from avagent.perception.asr.base import RecognizerError

_KIND_BYTES = {"words": b"w", "phones": b"p"}


class _Worker:
    def __init__(self, settings: dict[str, Any]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "avagent.perception.asr.sphinx_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            # Its own session: Ctrl-C in a terminal is for the agent, which stops the workers itself.
            start_new_session=True,
        )
        self._stdin: IO[bytes] = self._process.stdin  # type: ignore[assignment]
        self._stdout: IO[bytes] = self._process.stdout  # type: ignore[assignment]
        self._stdin.write(json.dumps(settings).encode() + b"\n")
        self._stdin.flush()

    def ready(self) -> None:
        reply = self._reply()
        if "error" in reply:
            self.close()
            raise RecognizerError(str(reply["error"]))

    def _reply(self) -> dict[str, Any]:
        line = self._stdout.readline()
        if not line:
            raise RecognizerError(
                f"the pocketsphinx worker process ended (exit status {self._process.poll()})"
            )
        reply: dict[str, Any] = json.loads(line)
        return reply

    def decode(self, kind: str, pcm: bytes) -> tuple[str, float]:
        try:
            self._stdin.write(_KIND_BYTES[kind] + struct.pack("<I", len(pcm)) + pcm)
            self._stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise RecognizerError(f"the pocketsphinx worker process is gone: {exc}") from None
        reply = self._reply()
        if "error" in reply:
            raise RecognizerError(str(reply["error"]))
        return str(reply["text"]), float(reply["score"])

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        if self._process.poll() is None:
            self._stdin.close()
            try:
                self._process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._stdout.close()


class SphinxProcessPool:
    """``size`` worker processes with the same decoders; a dead worker is replaced on next use."""

    def __init__(self, size: int, grammar: str | None, dictionary: str | None) -> None:
        self._settings = {"grammar": grammar, "dictionary": dictionary}
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        workers = [_Worker(self._settings) for _ in range(size)]  # start them all, then wait
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
                worker = _Worker(self._settings)
                worker.ready()
            return worker.decode(kind, pcm)
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
