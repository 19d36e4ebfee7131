"""The call server: an aiohttp app that answers WebRTC offers with an agent per call.

Routes:
  ``GET /``         the call page (plain HTML and JS, served from this package)
  ``POST /offer``   ``{"sdp", "type": "offer"}`` in, ``{"sdp", "type": "answer", "call_id"}`` out
  ``GET /healthz``  ``{"status": "ok", "calls": N, "max_calls": M}`` (no token needed)
  ``GET /calls``    figures of every call in progress (see ``CallSession.stats``)

Every refusal is a 4xx or 5xx with a JSON body ``{"error": "<one line>"}``, and never disturbs
the calls in progress. Models are loaded once (``Resources``) and shared by every call.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import importlib.resources
import json
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
from avagent.agent.serve.session import CallSession
from avagent.core.errors import ConfigError, InputError
from avagent.core.text import one_line
from avagent.io.webrtc.offer import OfferRejected, parse_offer_body

log = logging.getLogger("avagent.webrtc")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_OPEN_PATHS = frozenset({"/healthz"})


def refusal(status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error response with a one-line reason."""
    return web.json_response({"error": one_line(reason)}, status=status, headers=headers)


def resolve_token(serve: ServeConfig) -> str | None:
    """The bearer token the server asks for, from the config or its environment variable."""
    if serve.token_env is not None:
        value = os.environ.get(serve.token_env)
        if not value:
            raise ConfigError(f"serve.token_env: the environment variable {serve.token_env} is not set")
        return value
    return serve.token or None


def page_html(serve: ServeConfig) -> str:
    """The call page, with the ICE servers the browser should use written into it."""
    template = (
        importlib.resources.files("avagent.agent.serve").joinpath("static/call.html").read_text("utf-8")
    )
    settings = {"iceServers": [s.model_dump(exclude_none=True) for s in serve.ice_servers]}
    # Inside a <script>: "<" is escaped so no value can close the script element.
    literal = json.dumps(settings).replace("<", "\\u003c")
    return template.replace("/*AVAGENT_SETTINGS*/ null", literal)


class CallServer:
    """Serves the call page and runs one agent session per call."""

    def __init__(self, config: AgentConfig, *, resources: Resources | None = None) -> None:
        self.config = config
        self.serve = config.serve
        self._token = resolve_token(self.serve)
        self._resources = resources
        self._owns_resources = resources is None
        self.sessions: dict[str, CallSession] = {}
        self._setting_up = 0
        self._calls_changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._closed = False
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=self.serve.max_offer_bytes, middlewares=[self._check_token])
        app.router.add_get("/", self._page)
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
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, serve.host, serve.port, ssl_context=context)
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
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        else:
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
                log.error("call %s did not close cleanly: %s", session.id, result)

    # --- requests --------------------------------------------------------------------------

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

    async def _page(self, _request: web.Request) -> web.Response:
        return web.Response(
            text=page_html(self.serve), content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    async def _health(self, _request: web.Request) -> web.Response:
        status = "closing" if self._closed else "ok"
        return web.json_response(
            {"status": status, "calls": len(self.sessions), "max_calls": self.serve.max_calls}
        )

    async def _calls(self, _request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def _offer(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return refusal(415, f"the offer must be application/json, not {request.content_type}")
        limit = self.serve.max_offer_bytes
        if request.content_length is not None and request.content_length > limit:
            return refusal(413, f"the offer is larger than {limit} bytes")
        if self._closed:
            return refusal(503, "the server is shutting down")
        if len(self.sessions) + self._setting_up >= self.serve.max_calls:
            return refusal(
                503,
                f"the server is full ({self.serve.max_calls} calls); try again later",
                {"Retry-After": "5"},
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return refusal(413, f"the offer is larger than {limit} bytes")
        self._setting_up += 1
        try:
            return await self._answer(body)
        finally:
            self._setting_up -= 1

    async def _answer(self, body: bytes) -> web.Response:
        session: CallSession | None = None
        try:
            offer = parse_offer_body(body)
            session = CallSession(self.config, self.resources, on_closed=self._forget)
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
        """What ``GET /calls`` answers: the figures of every call in progress."""
        return {"calls": [s.stats() for s in self.sessions.values()]}


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
