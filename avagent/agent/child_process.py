"""A helper process that speaks JSON lines over its standard input and output.

Work that holds the GIL (pocketsphinx decoding, face tracking) runs in such processes so the
event loop never waits for it. The child is ``python -m MODULE``: it reads one JSON line of
settings and answers ``{"ok": true}`` or ``{"error": ...}``, then answers each request with one
JSON line. It has its own session, so a Ctrl-C in a terminal is for the parent, which stops it.
Calls block: make them from a worker thread (the GIL is free while waiting on the pipe).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import IO, Any


class ChildProcess:
    """One child process; ``failure`` is the exception type its errors are raised as."""

    def __init__(self, module: str, settings: dict[str, Any], failure: type[Exception]) -> None:
        self._module = module
        self._failure = failure
        self._process = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._stdin: IO[bytes] = self._process.stdin  # type: ignore[assignment]
        self._stdout: IO[bytes] = self._process.stdout  # type: ignore[assignment]
        self._lock = threading.Lock()
        self._stdin.write(json.dumps(settings).encode() + b"\n")
        self._stdin.flush()

    def ready(self) -> None:
        """Wait for the child's answer to its settings; raises ``failure`` with its reason."""
        reply = self._reply()
        if not isinstance(reply, dict) or "error" in reply:
            self.close()
            reason = reply.get("error") if isinstance(reply, dict) else reply
            raise self._failure(str(reason))

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def request(self, *parts: bytes | memoryview) -> Any:
        """Send ``parts`` (one request) and return the child's JSON answer; an ``{"error": ...}``
        answer, or a child that is gone, raises ``failure``."""
        with self._lock:
            try:
                for part in parts:
                    self._stdin.write(part)
                self._stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise self._failure(f"the {self._module} process is gone: {exc}") from None
            reply = self._reply()
        if isinstance(reply, dict) and "error" in reply:
            raise self._failure(str(reply["error"]))
        return reply

    def _reply(self) -> Any:
        line = self._stdout.readline()
        if not line:
            raise self._failure(f"the {self._module} process ended (exit status {self._process.poll()})")
        return json.loads(line)

    def close(self) -> None:
        """Let the child finish and end; safe to call twice."""
        if self._process.poll() is None:
            self._stdin.close()
            try:
                self._process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._stdout.close()


def answer(stdout: IO[bytes], payload: Any) -> None:
    """The child's side: one JSON line."""
    stdout.write(json.dumps(payload).encode() + b"\n")
    stdout.flush()
