"""A helper process that speaks JSON lines over its standard input and output.

Work that holds the GIL (pocketsphinx decoding, face tracking) runs in such processes so the
event loop never waits for it. The child runs a module (``python -m MODULE``, the module object
given, so the import is checked like any other): it reads one JSON line of settings and answers
``{"ok": true}`` or ``{"error": ...}``, then answers each request with one JSON line. It has its
own session, so a Ctrl-C in a terminal is for the parent, which stops it. Calls block: make them
from a worker thread (the GIL is free while waiting on the pipe).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from types import ModuleType
from typing import IO, Any


class ChildProcess:
    """One child process running ``module``; ``failure`` is the exception type its errors are raised
    as. ``start`` launches it, ``ready`` waits for its answer to the settings, ``stop`` ends it."""

    def __init__(
        self,
        module: ModuleType,
        settings: dict[str, Any],
        failure: type[Exception],
        *,
        max_reply_bytes: int | None = None,
    ) -> None:
        """``max_reply_bytes``: a longer answer line is refused and the child stopped (None: no limit)."""
        self._module = module.__name__
        self._settings = settings
        self._failure = failure
        self._max_reply = max_reply_bytes
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Launch the child and hand it its settings (returns at once; ``ready`` waits)."""
        if self._process is not None:
            return
        self._process = subprocess.Popen(
            [sys.executable, "-m", self._module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._stdin: IO[bytes] = self._process.stdin  # type: ignore[assignment]
        self._stdout: IO[bytes] = self._process.stdout  # type: ignore[assignment]
        self._stdin.write(json.dumps(self._settings).encode() + b"\n")
        self._stdin.flush()

    def ready(self) -> None:
        """Wait for the child's answer to its settings; raises ``failure`` with its reason."""
        reply = self._reply()
        if not isinstance(reply, dict) or "error" in reply:
            self.stop()
            reason = reply.get("error") if isinstance(reply, dict) else reply
            raise self._failure(str(reason))

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def request(self, *parts: bytes | memoryview) -> Any:
        """Send ``parts`` (one request) and return the child's JSON answer; an ``{"error": ...}``
        answer, or a child that is gone, raises ``failure``."""
        if self._process is None:
            raise self._failure(f"the {self._module} process is not started")
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
        assert self._process is not None
        line = self._stdout.readline(-1 if self._max_reply is None else self._max_reply + 1)
        if not line:
            raise self._failure(f"the {self._module} process ended (exit status {self._process.poll()})")
        if self._max_reply is not None and len(line) > self._max_reply:
            # The rest of the line would be taken for the next answer: this child cannot go on.
            self._process.kill()
            raise self._failure(f"the {self._module} process answered more than {self._max_reply} bytes")
        return json.loads(line)

    def stop(self) -> None:
        """Let the child finish and end; safe to call twice, or before ``start``."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._stdin.close()
            try:
                process.wait(timeout=2.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._stdout.close()


def answer(stdout: IO[bytes], payload: Any) -> None:
    """The child's side: one JSON line."""
    stdout.write(json.dumps(payload).encode() + b"\n")
    stdout.flush()
