"""Bounds on the call server's HTTP connections: how many are open, and how long each may take.

On its own aiohttp reads a request's head for as long as the client likes, keeps an idle
connection for an hour and counts no connections, so a few hundred clients that send a byte now
and then (slowloris) would hold sockets and memory for as long as they liked, and shutdown would
wait for them. The guard sits between the listening socket and aiohttp's protocol and gives each
connection a deadline for what it is doing:

- sending a request's head (request line and headers): ``header_timeout_s`` from the connection,
  or from the first byte after the previous request, and ``max_header_bytes`` at most; otherwise
  408 (431) and the connection is closed;
- inside a request: no deadline here; handlers bound their own reads (``body_timeout_s``);
- refused before its body was read: ``header_timeout_s`` for aiohttp to drop the rest (it does
  so for a moment, then closes) and for a next request to start, then closed;
- idle between requests: ``keepalive_timeout_s``, then closed.

At ``max_connections`` a new connection displaces the oldest one that has no request in progress
(an attacker's half-sent head, or an idle keep-alive, which a browser simply reopens); if every
connection is inside a request, the new one gets 503 and is closed. ``close_all`` (at shutdown)
aborts every connection at once, so no slow client holds the shutdown up.

Each connection costs one timer, rescheduled only when its phase changes, not per byte.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from avagent.core.text import describe_error, one_line

http_log = logging.getLogger("avagent.webrtc.http")
"""aiohttp's own messages about connections, each one redacted line with no traceback."""

ProtocolFactory = Callable[[], asyncio.Protocol]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """The guard's settings (see ``ServeConfig`` for each)."""

    max_connections: int = 256
    max_header_bytes: int = 16384
    header_timeout_s: float = 10.0
    keepalive_timeout_s: float = 15.0


class _Phase(enum.Enum):
    HEAD = "head"
    REQUEST = "request"
    IDLE = "idle"
    DRAIN = "drain"
    """Refused before its body was read: aiohttp reads and drops the rest for a moment (so that
    the client reads the refusal), which are not a next request's head."""


class GuardedConnection(asyncio.Protocol):
    """One connection: passes everything on to aiohttp's protocol, and tells the guard."""

    def __init__(self, guard: ConnectionGuard, inner: asyncio.Protocol) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.phase = _Phase.HEAD
        self.requests = 0
        self.head_bytes = 0
        self.head_done = False
        self.tail = b""
        self.timer: asyncio.TimerHandle | None = None
        self.passed_on = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if self.guard.admit(self):
            self.passed_on = True
            self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.phase in (_Phase.REQUEST, _Phase.DRAIN) or self.guard.head_data(self, data):
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.passed_on else None

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        if self.passed_on:
            self.passed_on = False
            self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self.passed_on:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.passed_on:
            self.inner.resume_writing()


class _OneRedactedLine(logging.Filter):
    # aiohttp logs a request it cannot parse with a traceback that quotes the offending bytes,
    # which may be a header carrying a token.
    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.getMessage()}: {describe_error(record.exc_info[1])}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


http_log.addFilter(_OneRedactedLine())


class JsonErrorHandler(RequestHandler):
    """aiohttp's protocol, whose own refusals (a request that is not valid HTTP, a handler that
    failed) are one line of JSON like the server's, logged as one line. aiohttp would answer with
    text quoting the request's bytes, and log them with a traceback."""

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the response has begun: no error response can follow")
        if status >= 500:
            cause = describe_error(exc) if exc is not None else HTTPStatus(status).phrase
            http_log.error("request from %s failed: %s", request.remote, cause)
            reason = "the server failed to handle the request"
        else:
            # The parser's reason, without the bytes it quotes on the lines after it.
            said = str(getattr(exc, "message", "") or HTTPStatus(status).phrase).split("\n", 1)[0]
            http_log.info("bad request from %s: %s", request.remote, one_line(said, 100))
            reason = "the request is not valid HTTP"
        response = web.json_response({"error": reason}, status=status)
        response.force_close()
        return response


def raw_refusal(status: int, reason: str) -> bytes:
    """A complete HTTP/1.1 error response with a JSON ``{"error": ...}`` body that closes."""
    body = json.dumps({"error": reason}).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class ConnectionGuard:
    """Counts the server's connections and closes those that overstay (see the module)."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._open: dict[asyncio.Transport, GuardedConnection] = {}
        # Connections with no request in progress, oldest phase change first: who gets displaced.
        self._idle: dict[GuardedConnection, None] = {}
        self._closing = False
        self.counts = {
            "peak": 0,
            "displaced": 0,
            "refused": 0,
            "head_timeouts": 0,
            "heads_too_large": 0,
            "idle_closed": 0,
        }

    def wrap(self, factory: ProtocolFactory) -> Callable[[], GuardedConnection]:
        """A protocol factory for ``loop.create_server`` around aiohttp's."""
        return lambda: GuardedConnection(self, factory())

    @property
    def open(self) -> int:
        return len(self._open)

    def stats(self) -> dict[str, Any]:
        phases = [c.phase.value for c in self._open.values()]
        return {"open": len(phases), **{p.value: phases.count(p.value) for p in _Phase}, **self.counts}

    # --- what the connections tell -------------------------------------------------------

    def admit(self, conn: GuardedConnection) -> bool:
        """A connection was accepted: make room for it, or refuse it."""
        transport = conn.transport
        assert transport is not None
        if self._closing:
            transport.abort()
            return False
        if len(self._open) >= self.limits.max_connections:
            victim = next(iter(self._idle), None)
            if victim is None:
                self.counts["refused"] += 1
                transport.write(raw_refusal(503, "the server has too many connections; try again later"))
                transport.close()
                return False
            self.counts["displaced"] += 1
            self._drop(victim, abort=True)
        self._open[transport] = conn
        self.counts["peak"] = max(self.counts["peak"], len(self._open))
        self._enter(conn, _Phase.HEAD)
        return True

    def head_data(self, conn: GuardedConnection, data: bytes) -> bool:
        """Bytes before a request has started: count them against the head's limit. False if the
        connection was closed for them."""
        if conn.phase is _Phase.IDLE:
            self._enter(conn, _Phase.HEAD)
        if conn.transport not in self._open:
            return False
        if conn.head_done:
            return True
        window = conn.tail + data
        end = window.find(b"\r\n\r\n")
        if end >= 0:
            conn.head_done = True
            conn.head_bytes += end + 4 - len(conn.tail)
        else:
            conn.head_bytes += len(data)
            conn.tail = window[-3:]
        if conn.head_bytes > self.limits.max_header_bytes:
            self.counts["heads_too_large"] += 1
            limit = self.limits.max_header_bytes
            self._refuse(conn, 431, f"the request's headers are larger than {limit} bytes")
            return False
        return True

    def request_started(self, transport: asyncio.BaseTransport | None) -> GuardedConnection | None:
        """A request's handler starts (its head has arrived): no deadline of the guard's for now."""
        conn = self._open.get(cast(asyncio.Transport, transport))
        if conn is not None:
            conn.requests += 1
            self._enter(conn, _Phase.REQUEST)
        return conn

    def request_ended(self, conn: GuardedConnection | None, *, body_left: bool = False) -> None:
        """The handler has returned: the connection is idle unless another request is in progress
        (``body_left``: the request's body was not all read, and the rest may still come)."""
        if conn is None:
            return
        conn.requests -= 1
        if conn.requests == 0 and conn.transport in self._open:
            self._enter(conn, _Phase.DRAIN if body_left else _Phase.IDLE)

    def forget(self, conn: GuardedConnection) -> None:
        """The connection is gone."""
        self._drop(conn, abort=False)

    def close_all(self) -> None:
        """Abort every connection, and every one that comes from now on (shutting down)."""
        self._closing = True
        for conn in list(self._open.values()):
            self._drop(conn, abort=True)

    # --- deadlines -----------------------------------------------------------------------

    def _enter(self, conn: GuardedConnection, phase: _Phase) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        conn.phase = phase
        self._idle.pop(conn, None)
        if phase is _Phase.REQUEST:
            return
        self._idle[conn] = None
        loop = asyncio.get_running_loop()
        if phase is _Phase.HEAD:
            conn.head_bytes, conn.head_done, conn.tail = 0, False, b""
        limit = self.limits.keepalive_timeout_s if phase is _Phase.IDLE else self.limits.header_timeout_s
        conn.timer = loop.call_later(limit, self._expire, conn)

    def _expire(self, conn: GuardedConnection) -> None:
        conn.timer = None
        if conn.transport not in self._open:
            return
        if conn.phase is _Phase.HEAD:
            self.counts["head_timeouts"] += 1
            limit = self.limits.header_timeout_s
            self._refuse(conn, 408, f"the request's headers did not arrive within {limit:g} s")
        else:
            self.counts["idle_closed"] += 1
            self._drop(conn, abort=False)
            assert conn.transport is not None
            conn.transport.close()

    def _refuse(self, conn: GuardedConnection, status: int, reason: str) -> None:
        self._drop(conn, abort=False)
        transport = conn.transport
        assert transport is not None
        transport.write(raw_refusal(status, reason))
        transport.close()

    def _drop(self, conn: GuardedConnection, *, abort: bool) -> None:
        if conn.timer is not None:
            conn.timer.cancel()
            conn.timer = None
        self._idle.pop(conn, None)
        transport = conn.transport
        if transport is not None and self._open.get(transport) is conn:
            del self._open[transport]
            if abort:
                transport.abort()


class GuardedSite(web.BaseSite):
    """A TCP site whose connections are made by ``protocol`` (aiohttp's request handler) and go
    through a ``ConnectionGuard``, which also bounds the TLS handshake (``header_timeout_s``)."""

    def __init__(
        self,
        runner: web.BaseRunner,
        guard: ConnectionGuard,
        protocol: ProtocolFactory,
        host: str,
        port: int,
        *,
        ssl_context: Any = None,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self.guard = guard
        self.protocol = protocol
        self.host = host
        self.port = port

    @property
    def name(self) -> str:
        scheme = "https" if self._ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        await super().start()
        tls = self._ssl_context is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.guard.wrap(self.protocol),
            self.host,
            self.port,
            ssl=self._ssl_context,
            ssl_handshake_timeout=self.guard.limits.header_timeout_s if tls else None,
            backlog=self._backlog,
        )
