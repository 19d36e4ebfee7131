"""One connection to an MQTT broker (aiomqtt), kept up for as long as ``run()`` runs.

- It reconnects with backoff (doubling, with jitter, up to ``reconnect_max_s``) and subscribes again
  each time. The session is persistent (a fixed client id, ``clean_session`` off, subscriptions at
  QoS 1), so the broker keeps the commands sent while the link was down and delivers them after.
- ``send`` never waits: messages go into a bounded outbox that one task empties. While the link is
  down, messages at QoS 0 (events) are dropped and counted; messages at QoS 1 (acks, status) wait
  in the outbox for the next connection (the oldest go first when it is full).
- Incoming messages are handed to the handler of the first filter they match, in order, except
  that *control* topics (an e-stop) overtake whatever else is queued.
- A Last Will (``will``) is left with the broker at each connection; on a clean stop ``farewell``
  is published first (a clean disconnect makes the broker forget the will).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiomqtt

from avagent.core.text import describe_error
from avagent.io.mqtt.attempt import connection
from avagent.io.mqtt.settings import LinkSettings

log = logging.getLogger("avagent.mqtt")

SEND_BATCH = 256
"""Messages handed to the broker together."""

Handler = Callable[[aiomqtt.Message], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


class _ControlFirst(asyncio.Queue[aiomqtt.Message]):
    """aiomqtt's incoming queue, with a lane for control topics that overtakes the rest."""

    def is_control(self, topic: str) -> bool:
        return False

    def _init(self, maxsize: int) -> None:
        self._data: collections.deque[aiomqtt.Message] = collections.deque()
        self._lane: collections.deque[aiomqtt.Message] = collections.deque()

    def _put(self, item: aiomqtt.Message) -> None:
        (self._lane if self.is_control(item.topic.value) else self._data).append(item)

    def _get(self) -> aiomqtt.Message:
        return self._lane.popleft() if self._lane else self._data.popleft()

    def qsize(self) -> int:
        return len(self._data) + len(self._lane)

    def empty(self) -> bool:
        return not self._data and not self._lane


class MqttLink:
    """A resilient connection: subscriptions with handlers, a non-blocking outbox, a will."""

    def __init__(
        self,
        settings: LinkSettings,
        *,
        will: Outgoing | None = None,
        farewell: Outgoing | None = None,
        is_control: Callable[[str], bool] = lambda _topic: False,
    ) -> None:
        self.settings = settings
        self.will = will
        self.farewell = farewell
        self._subscriptions: list[tuple[str, int, Handler]] = []
        self._on_connect: list[Hook] = []
        self._on_disconnect: list[Hook] = []
        self._outbox: collections.deque[Outgoing] = collections.deque()
        self._urgent: collections.deque[Outgoing] = collections.deque()
        self._wake = asyncio.Event()
        self._connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self.dropped = 0
        """Messages dropped: events sent while the link was down, or past the outbox's bound."""
        self.connections = 0
        self.failures = 0
        """Connections that failed or were lost."""
        self._queue_type = _control_first(is_control)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def queued(self) -> int:
        """Messages waiting to be sent."""
        return len(self._outbox) + len(self._urgent)

    async def wait_connected(self) -> None:
        await self._connected.wait()

    def subscribe(self, topic_filter: str, handler: Handler, qos: int = 1) -> None:
        """Hand messages matching ``topic_filter`` to ``handler`` (from the next connection on,
        or at once when connected)."""
        self._subscriptions.append((topic_filter, qos, handler))
        client = self._client
        if client is not None and self.connected:
            task = asyncio.ensure_future(client.subscribe(topic_filter, qos))
            task.add_done_callback(_quietly)

    def when_connected(self, hook: Hook) -> None:
        self._on_connect.append(hook)

    def when_disconnected(self, hook: Hook) -> None:
        self._on_disconnect.append(hook)

    def send(
        self, topic: str, payload: bytes, *, qos: int = 0, retain: bool = False, urgent: bool = False
    ) -> bool:
        """Queue a message; never waits. ``urgent`` ones (an actuator's stop) go out before anything
        queued. False when it was dropped (an event while disconnected, or the outbox full)."""
        if qos == 0 and not self.connected:
            self.dropped += 1
            return False
        item = Outgoing(topic, payload, qos, retain)
        if urgent:
            self._urgent.append(item)
        elif len(self._outbox) < self.settings.max_outbox:
            self._outbox.append(item)
        elif qos == 0:
            self.dropped += 1
            return False
        else:
            self._outbox.popleft()
            self._outbox.append(item)
            self.dropped += 1
        self._wake.set()
        return True

    # --- the connection ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and reconnect whenever the link drops, until cancelled."""
        s = self.settings
        backoff = s.reconnect_min_s
        while True:
            before = self.connections
            try:
                await self._connect_once()
            except aiomqtt.MqttError as exc:
                self.failures += 1
                log.warning("MQTT link to %s: %s", s.broker.describe(), describe_error(exc))
            if self.connections > before:
                backoff = s.reconnect_min_s  # it worked: come back quickly after a loss
            await asyncio.sleep(backoff * random.uniform(0.8, 1.2))
            backoff = min(backoff * 2, s.reconnect_max_s)

    async def _connect_once(self) -> None:
        s = self.settings
        client = aiomqtt.Client(
            s.broker.host,
            s.broker.port,
            identifier=s.client_id,
            clean_session=False,
            username=s.broker.username,
            password=s.password,
            keepalive=s.keepalive_s,
            will=_will(self.will),
            tls_params=_tls(s),
            tls_insecure=s.tls.insecure if s.tls is not None else None,
            queue_type=self._queue_type,
            # Small messages (an e-stop, an ack) go out at once, not held back by Nagle's algorithm.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
            timeout=5.0,
        )
        async with connection(client):
            self._client = client
            try:
                for topic_filter, qos, _handler in self._subscriptions:
                    await client.subscribe(topic_filter, qos)
                self._connected.set()
                self.connections += 1
                log.info("MQTT link to %s is up", s.broker.describe())
                for hook in self._on_connect:
                    await hook()
                await self._serve(client)
            except asyncio.CancelledError:
                await self._say_farewell(client)
                raise
            finally:
                self._client = None
                was_connected = self._connected.is_set()
                self._connected.clear()
                # Events are for now: those not sent are dropped; acks and stops wait.
                stale = sum(1 for item in self._outbox if item.qos == 0)
                if stale:
                    self._outbox = collections.deque(item for item in self._outbox if item.qos > 0)
                    self.dropped += stale
                if was_connected:
                    for hook in self._on_disconnect:
                        await _safely(hook)

    async def _serve(self, client: aiomqtt.Client) -> None:
        reader = asyncio.ensure_future(self._read(client))
        sender = asyncio.ensure_future(self._send(client))
        try:
            done, _pending = await asyncio.wait({reader, sender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, sender):
                task.cancel()
            await asyncio.gather(reader, sender, return_exceptions=True)
        for task in done:
            task.result()  # raises the MqttError that ended the connection

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            for topic_filter, _qos, handler in self._subscriptions:
                if message.topic.matches(topic_filter):
                    try:
                        await handler(message)
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.exception("handling an MQTT message on %s failed", message.topic.value)
                    break

    async def _send(self, client: aiomqtt.Client) -> None:
        # aiomqtt confirms each publish a loop turn or two later; sent one by one, a busy loop would
        # cap the rate at a few hundred a second. So what is queued goes out together (in order),
        # and is confirmed together.
        client.pending_calls_threshold = self.settings.max_outbox + SEND_BATCH
        while True:
            while not self._urgent and not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            urgent = [self._urgent.popleft() for _ in range(min(len(self._urgent), SEND_BATCH))]
            rest = [self._outbox.popleft() for _ in range(min(len(self._outbox), SEND_BATCH - len(urgent)))]
            batch = urgent + rest
            sent = await asyncio.gather(
                *(client.publish(m.topic, m.payload, qos=m.qos, retain=m.retain) for m in batch),
                return_exceptions=True,
            )
            failed = [(m, r) for m, r in zip(batch, sent, strict=True) if isinstance(r, BaseException)]
            if not failed:
                continue
            # Acks and stops wait for the next connection, in their order; events are dropped.
            keep_urgent = [m for m, _ in failed if m in urgent and m.qos > 0]
            keep = [m for m, _ in failed if m not in urgent and m.qos > 0]
            self._urgent.extendleft(reversed(keep_urgent))
            self._outbox.extendleft(reversed(keep))
            self.dropped += sum(1 for m, _ in failed if m.qos == 0)
            error = failed[0][1]
            if isinstance(error, aiomqtt.MqttError):
                raise error
            raise aiomqtt.MqttError(describe_error(error))

    async def _say_farewell(self, client: aiomqtt.Client) -> None:
        if self.farewell is None:
            return
        f = self.farewell
        try:
            async with asyncio.timeout(1.0):
                await client.publish(f.topic, f.payload, qos=f.qos, retain=f.retain)
        except (TimeoutError, aiomqtt.MqttError) as exc:
            log.warning("could not say goodbye on MQTT: %s", describe_error(exc))


def _control_first(is_control: Callable[[str], bool]) -> type[asyncio.Queue[aiomqtt.Message]]:
    class Incoming(_ControlFirst):
        def is_control(self, topic: str) -> bool:
            return is_control(topic)

    return Incoming


def _will(will: Outgoing | None) -> aiomqtt.Will | None:
    if will is None:
        return None
    return aiomqtt.Will(will.topic, will.payload, qos=will.qos, retain=will.retain)


def _tls(s: LinkSettings) -> aiomqtt.TLSParameters | None:
    if not s.broker.tls and s.tls is None:
        return None
    tls = s.tls
    if tls is None:
        return aiomqtt.TLSParameters()
    return aiomqtt.TLSParameters(ca_certs=tls.ca_file, certfile=tls.cert_file, keyfile=tls.key_file)


async def _safely(hook: Hook) -> None:
    try:
        await hook()
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("an MQTT link hook failed")


def _quietly(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("MQTT subscribe failed: %s", describe_error(task.exception() or Exception()))
