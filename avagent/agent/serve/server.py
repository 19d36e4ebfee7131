"""The call server: an aiohttp app that answers WebRTC offers with an agent per call.

Routes:
  ``GET /``             the call page (plain HTML and JS, served from this package)
  ``GET /ice-servers``  ``{"iceServers": [...]}``: STUN/TURN for the browser, fresh credentials
  ``POST /offer``       ``{"sdp", "type": "offer"}`` in, ``{"sdp", "type": "answer", "call_id"}`` out
  ``GET /healthz``      ``{"status": "ok", "calls": N, "max_calls": M}`` (no token needed)
  ``GET /calls``        figures of every call in progress (see ``CallSession.stats``) and connections

Every refusal is a 4xx or 5xx with a JSON body ``{"error": "<one line>"}``, and never disturbs
the calls in progress. Models are loaded once (``Resources``) and shared by every call.

Whoever can reach the server is held to bounds: connections (``connections.py``: how many, how
long a request's head and an idle connection may take), offers (counted as calls from the moment
they arrive, their body read against a size and a time limit, their JSON depth and their SDP and
ICE candidates screened: ``avagent/io/webrtc/offer.py``), and calls (``max_calls``). No token,
credential or secret goes into a response, a log line or an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import importlib.resources
import logging
import os
import signal
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.agent.serve.config import ServeConfig
from avagent.agent.serve.connections import (
    ConnectionGuard,
    ConnectionLimits,
    GuardedSite,
    JsonErrorHandler,
    http_log,
)
from avagent.agent.serve.ice import IceServers
from avagent.agent.serve.session import CallSession
from avagent.core.errors import ConfigError, InputError
from avagent.core.text import describe_error, one_line
from avagent.io.webrtc.offer import CandidateRules, OfferRejected, parse_offer_body

log = logging.getLogger("avagent.webrtc")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN_PATHS = frozenset({"/healthz"})
_NO_STORE = {"Cache-Control": "no-store"}
SHUTDOWN_GRACE_S = 3.0
"""How long shutdown lets a request handler that is still running finish (answering an offer);
never spent waiting for a client, whose connections shutdown closes first."""
LINGER_S = 2.0
"""After refusing a request whose body is still coming, read and drop it this long before
closing, so the client reads the refusal rather than a connection reset."""


def refusal(
    status: int, reason: str, headers: dict[str, str] | None = None, *, close: bool = False
) -> web.Response:
    """An error response with a one-line reason (``close``: and the connection closes after it)."""
    response = web.json_response({"error": one_line(reason)}, status=status, headers=headers)
    if close:
        response.force_close()
    return response


def resolve_token(serve: ServeConfig) -> str | None:
    """The bearer token the server asks for, from the config or its environment variable."""
    if serve.token_env is not None:
        value = os.environ.get(serve.token_env)
        if not value:
            raise ConfigError(f"serve.token_env: the environment variable {serve.token_env} is not set")
        return value
    return serve.token or None


def page_html() -> str:
    """The call page. It holds no setting and no secret: it asks ``/ice-servers`` for the STUN and
    TURN servers (and credentials) with the token, right before each call."""
    return importlib.resources.files("avagent.agent.serve").joinpath("static/call.html").read_text("utf-8")


class CallServer:
    """Serves the call page and runs one agent session per call."""

    def __init__(self, config: AgentConfig, *, resources: Resources | None = None) -> None:
        self.config = config
        self.serve = config.serve
        self._token = resolve_token(self.serve)
        self._ice = IceServers(self.serve, has_token=self._token is not None)
        self._rules = CandidateRules.from_cidrs(
            self.serve.ice_allowed_networks,
            loopback_only=self.serve.loopback_only,
            max_candidates=self.serve.max_ice_candidates,
        )
        self._guard = ConnectionGuard(
            ConnectionLimits(
                max_connections=self.serve.max_connections,
                max_header_bytes=self.serve.max_header_bytes,
                header_timeout_s=self.serve.header_timeout_s,
                keepalive_timeout_s=self.serve.keepalive_timeout_s,
            )
        )
        self._page = page_html()
        self._resources = resources
        self._owns_resources = resources is None
        self.sessions: dict[str, CallSession] = {}
        self._setting_up = 0
        self._calls_changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._closed = False
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application(
            client_max_size=self.serve.max_offer_bytes, middlewares=[self._track, self._check_token]
        )
        app.router.add_get("/", self._send_page)
        app.router.add_get("/ice-servers", self._ice_servers)
        app.router.add_post("/offer", self._offer)
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/calls", self._calls)
        app.on_shutdown.append(self._close_calls)
        return app

    @property
    def resources(self) -> Resources:
        if self._resources is None:
            self._resources = Resources(self.config)
        return self._resources

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> str:
        """Load the models, listen, and return the server's URL (port 0 picks a free port)."""
        # A config the agent cannot run with fails here, once, rather than at every call.
        Agent(self.config, resources=self.resources)
        await self.resources.start()
        serve = self.serve
        context = _tls_context(serve)
        options: dict[str, Any] = {
            "access_log": None,
            "logger": http_log,
            # Lingering ends before the guard's deadline for a next request's head could strike.
            "lingering_time": min(LINGER_S, serve.header_timeout_s),
            # The guard closes idle connections first; aiohttp's own timer is only a backstop.
            "keepalive_timeout": max(serve.keepalive_timeout_s, serve.header_timeout_s) + 1.0,
        }
        runner = web.AppRunner(self.app, handle_signals=False, shutdown_timeout=SHUTDOWN_GRACE_S, **options)
        await runner.setup()
        manager, loop = runner.server, asyncio.get_running_loop()
        assert manager is not None
        site = GuardedSite(
            runner,
            self._guard,
            lambda: JsonErrorHandler(manager, loop=loop, **options),
            serve.host,
            serve.port,
            ssl_context=context,
        )
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise InputError(f"cannot listen on {serve.host}:{serve.port}: {exc.strerror or exc}") from None
        self._runner = runner
        host, port = runner.addresses[0][:2]
        scheme = "https" if context is not None else "http"
        host_text = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host_text}:{port}/"

    @property
    def needs_token(self) -> bool:
        return self._token is not None

    async def stop(self) -> None:
        """Hang up every call, stop listening, free the models. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        # No client is waited for: every connection is closed now, half-sent requests and all.
        self._guard.close_all()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        await self._close_calls(self.app)
        if self._owns_resources and self._resources is not None:
            await self._resources.stop()

    async def _close_calls(self, _app: web.Application) -> None:
        sessions = list(self.sessions.values())
        results = await asyncio.gather(
            *(s.stop("the server is shutting down") for s in sessions), return_exceptions=True
        )
        for session, result in zip(sessions, results, strict=True):
            if isinstance(result, Exception):
                log.error("call %s did not close cleanly: %s", session.id, describe_error(result))

    # --- requests --------------------------------------------------------------------------

    @web.middleware
    async def _track(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        # While a handler runs the guard sets no deadline: the handler bounds its own reads.
        connection = self._guard.request_started(request.transport)
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            # aiohttp's own refusals (no such route, method not allowed) as one line of JSON too.
            allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return refusal(exc.status, exc.reason, allow)
        finally:
            body_left = request.body_exists and not request.content.is_eof()
            self._guard.request_ended(connection, body_left=body_left)

    @web.middleware
    async def _check_token(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._token is None or request.path in _OPEN_PATHS:
            return await handler(request)
        given: str | None = None
        header = request.headers.get("Authorization")
        if header is not None:
            scheme, _, value = header.partition(" ")
            if scheme.lower() != "bearer" or not value.strip():
                return refusal(401, "the Authorization header must be 'Bearer TOKEN'", _challenge())
            given = value.strip()
        elif "token" in request.query:
            given = request.query["token"]
        if not given:
            return refusal(401, "this server needs a token: Authorization: Bearer TOKEN", _challenge())
        if not hmac.compare_digest(given.encode(), self._token.encode()):
            return refusal(403, "the token is not valid")
        return await handler(request)

    async def _send_page(self, _request: web.Request) -> web.Response:
        # The page's address may carry ?token=: no Referer takes it anywhere else.
        headers = {**_NO_STORE, "Referrer-Policy": "no-referrer"}
        return web.Response(text=self._page, content_type="text/html", headers=headers)

    async def _ice_servers(self, _request: web.Request) -> web.Response:
        # Behind the token check (when a TURN server is set, a token is too: see IceServers).
        return web.json_response({"iceServers": self._ice.for_caller()}, headers=_NO_STORE)

    async def _health(self, _request: web.Request) -> web.Response:
        status = "closing" if self._closed else "ok"
        return web.json_response(
            {"status": status, "calls": len(self.sessions), "max_calls": self.serve.max_calls}
        )

    async def _calls(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _offer(self, request: web.Request) -> web.Response:
        serve = self.serve
        if self._closed:
            return refusal(503, "the server is shutting down")
        if request.content_type != "application/json":
            return refusal(415, f"the offer must be application/json, not {request.content_type}")
        if request.content_length is not None and request.content_length > serve.max_offer_bytes:
            return refusal(413, f"the offer is larger than {serve.max_offer_bytes} bytes")
        if len(self.sessions) + self._setting_up >= serve.max_calls:
            return refusal(
                503, f"the server is full ({serve.max_calls} calls); try again later", {"Retry-After": "5"}
            )
        # Counted from here, before its body is read: an offer still arriving holds a call's place.
        self._setting_up += 1
        try:
            body = await self._read_body(request)
            return body if isinstance(body, web.Response) else await self._answer(body)
        finally:
            self._setting_up -= 1

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        """The offer's body, or the refusal if it is too large, too slow or never comes."""
        limit, within = self.serve.max_offer_bytes, self.serve.body_timeout_s
        try:
            async with asyncio.timeout(within):
                return await request.read()
        except TimeoutError:
            return await _send_and_close(
                request, refusal(408, f"the offer did not arrive within {within:g} s")
            )
        except web.HTTPRequestEntityTooLarge:
            return refusal(413, f"the offer is larger than {limit} bytes")
        except ConnectionError:
            return refusal(400, "the connection closed before the offer arrived", close=True)

    async def _answer(self, body: bytes) -> web.Response:
        session: CallSession | None = None
        try:
            offer = parse_offer_body(body, self._rules)
            if offer.dropped:
                dropped = ", ".join(f"{n} {why}" for why, n in sorted(offer.dropped.items()))
                log.info("offer: ICE candidates dropped: %s", dropped)
            session = CallSession(
                self.config, self.resources, on_closed=self._forget, ice_servers=self._ice.for_server()
            )
            answer = await session.answer(offer)
        except OfferRejected as exc:
            log.info("offer refused: %s", exc.reason)
            if session is not None:
                await session.stop("the offer was refused")
            return refusal(exc.status, exc.reason)
        except BaseException:
            if session is not None:
                await session.stop("the server failed to answer")
            raise
        if self._closed:
            # The server began to shut down while this offer was answered: no call to outlive it.
            await session.stop("the server is shutting down")
            return refusal(503, "the server is shutting down")
        self.sessions[session.id] = session
        log.info("call %s started (%d in progress)", session.id, len(self.sessions))
        return web.json_response({"sdp": answer.sdp, "type": answer.type, "call_id": session.id})

    async def wait_for_calls(self, at_most: int = 0) -> None:
        """Wait until at most ``at_most`` calls are in progress."""
        while len(self.sessions) > at_most:
            self._calls_changed.clear()
            await self._calls_changed.wait()

    def _forget(self, session: CallSession) -> None:
        if self.sessions.pop(session.id, None) is not None:
            self._calls_changed.set()
            log.info("call %s ended: %s (%d in progress)", session.id, session.end_reason, len(self.sessions))

    def stats(self) -> dict[str, Any]:
        """What ``GET /calls`` answers: the figures of every call in progress, and of the connections
        (open, by phase, and how many were displaced, refused or closed for a limit)."""
        return {
            "calls": [s.stats() for s in self.sessions.values()],
            "offers_arriving": self._setting_up,
            "connections": self._guard.stats(),
        }


async def _send_and_close(request: web.Request, response: web.Response) -> web.Response:
    """Send ``response`` now and close the connection after it, rather than reading on (aiohttp
    would linger over the rest of the body) for a client that has already taken too long."""
    response.force_close()
    with contextlib.suppress(ConnectionError):
        await response.prepare(request)
        await response.write_eof()
    if request.transport is not None:
        request.transport.close()
    return response


def _challenge() -> dict[str, str]:
    return {"WWW-Authenticate": 'Bearer realm="avagent"'}


def _tls_context(serve: ServeConfig) -> ssl.SSLContext | None:
    if serve.tls_cert is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(serve.tls_cert, serve.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"serve.tls_cert: cannot load the certificate: {exc}") from None
    return context


async def serve_until_stopped(config: AgentConfig, announce: Callable[[str], None]) -> None:
    """Run a call server until SIGINT or SIGTERM, then hang up every call and stop.

    ``announce`` is told, in one line, where the server listens once it does.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):
            pass
    server = CallServer(config)
    try:
        url = await server.start()
        # What start-up loaded (libraries, models) lives as long as the process. Frozen, it is
        # left out of every later full garbage collection, which then takes a few milliseconds
        # instead of 50-100 ms that would hold up the audio of every call.
        gc.collect()
        gc.freeze()
        needs = " (open it with ?token=YOUR_TOKEN)" if server.needs_token else ""
        announce(f"answering calls at {url}{needs}; Ctrl-C stops")
        await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
        await server.stop()


@contextlib.asynccontextmanager
async def running_server(
    config: AgentConfig, resources: Resources | None = None
) -> AsyncIterator[tuple[CallServer, str]]:
    """A started ``CallServer`` and its URL; stopped (every call hung up) on leaving."""
    server = CallServer(config, resources=resources)
    try:
        url = await server.start()
        yield server, url
    finally:
        await server.stop()
