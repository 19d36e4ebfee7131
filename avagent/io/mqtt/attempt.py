"""One connection to the broker that leaves nothing open behind it, however it ends.

aiomqtt's ``async with client`` leaks when its connection attempt is cancelled or times out: paho
connects in a worker thread that cannot be stopped, and the socket it opens is closed only when the
client is garbage-collected, calling back into an event loop that may be closed by then (an error
and a task destroyed while pending, at a random later moment). Here the attempt, once begun, is let
finish (for at most ``SETTLE_S``) and whatever it opened is closed before the owner goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiomqtt

from avagent.core.text import describe_error

log = logging.getLogger("avagent.mqtt")

SETTLE_S = 1.0
"""How long a cancelled connection attempt may take to end: a stop waits this long at most."""

LEAVE_S = 1.0
"""How long a clean disconnect may take before the socket is simply closed."""


@contextlib.asynccontextmanager
async def connection(client: aiomqtt.Client) -> AsyncIterator[aiomqtt.Client]:
    """``async with client`` that closes every socket the client opened before it exits, and
    waits (bounded) for a cancelled attempt to end so that it can."""
    try:
        attempt = asyncio.ensure_future(client.__aenter__())
        try:
            await asyncio.shield(attempt)
        except asyncio.CancelledError:
            await _settle(client, attempt)
            raise
        try:
            yield client
        finally:
            await _leave(client)
    finally:
        _close_sockets(client)


async def _settle(client: aiomqtt.Client, attempt: asyncio.Future[aiomqtt.Client]) -> None:
    """Wait for a cancelled attempt to end, and disconnect if it got through."""
    done, _ = await asyncio.wait({attempt}, timeout=SETTLE_S)
    if not done:
        # Waiting for the broker's answer ends at once; a connect still in paho's thread cannot.
        attempt.cancel()
        await asyncio.wait({attempt})
        log.warning("an MQTT connection attempt was cut short %.1f s after the stop", SETTLE_S)
    if not attempt.cancelled() and attempt.exception() is None:
        await _leave(client)


async def _leave(client: aiomqtt.Client) -> None:
    try:
        async with asyncio.timeout(LEAVE_S):
            await client.__aexit__(None, None, None)
    except (TimeoutError, aiomqtt.MqttError) as exc:
        log.debug("MQTT disconnect: %s", describe_error(exc))


def _close_sockets(client: aiomqtt.Client) -> None:
    # aiomqtt (pinned) offers no public way to drop a half-open connection; paho's reinitialise
    # closes the socket through the client's own callbacks while this loop still runs.
    paho = client._client
    if paho.socket() is not None:
        paho.reinitialise()
