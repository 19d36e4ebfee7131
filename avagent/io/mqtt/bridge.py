"""The MQTT bridge stage: an agent (or one part of it) on the robot bus.

Out: every event of the contract as JSON on ``<prefix>/<node>/events/<type>`` (QoS 0; audio never
leaves), a retained status, heartbeats. In: commands on ``<prefix>/<node>/cmd/<name>``, each
checked (``commands``), run once, and answered on ``<prefix>/<node>/ack``; and, for a split agent,
the events of the other parts it needs, put on this part's bus as if they were its own.

What a command does is not the bridge's business: the assembly hands it one ``Handler`` per
command name. Control commands (the e-stop) run the moment they arrive, ahead of anything queued;
the others wait in a bounded queue for a few workers, so that a slow tool holds up nothing else.
While the link is down everything else goes on: events are dropped and counted (reported as
``overflow`` events), never waited for.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import aiomqtt

from avagent.core.bus import Bus
from avagent.core.event_codec import EventDecodeError, event_from_dict
from avagent.core.events import Error, Event, Overflow
from avagent.core.streams import OverflowPolicy
from avagent.core.text import describe_error
from avagent.io.mqtt.commands import (
    Command,
    CommandFailed,
    CommandRefused,
    RateGate,
    SeenIds,
    ack,
    parse_command,
)
from avagent.io.mqtt.link import MqttLink
from avagent.io.mqtt.peers import PeerWatch
from avagent.io.mqtt.topics import CONTROL_COMMANDS, Topics
from avagent.io.webrtc.offer import json_too_deep

log = logging.getLogger("avagent.mqtt")

Handler = Callable[[Command], Awaitable[str]]
"""Runs a command; returns the ack's result, raises ``CommandRefused`` / ``CommandFailed``."""

_REPORT_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    heartbeat_s: float = 1.0
    max_payload_bytes: int = 64 * 1024
    max_commands_per_s: float = 50.0
    max_queued_commands: int = 64
    command_workers: int = 4


class MqttBridge:
    """Runs the link, sends the events, takes the commands and imports other parts' events."""

    name = "mqtt"
    consumes: tuple[type, ...] = (Event,)

    def __init__(
        self,
        bus: Bus,
        link: MqttLink,
        topics: Topics,
        handlers: Mapping[str, Handler],
        *,
        settings: BridgeSettings | None = None,
        imports: Mapping[str, Sequence[type[Event]]] | None = None,
        peers: PeerWatch | None = None,
        produces: Sequence[type] = (),
    ) -> None:
        """``imports``: node -> the event types taken from it; ``peers``: the nodes watched."""
        self.bus = bus
        self.link = link
        self.topics = topics
        self.handlers = dict(handlers)
        self.settings = s = settings or BridgeSettings()
        self.imports = {node: tuple(types) for node, types in (imports or {}).items()}
        imported = {t for types in self.imports.values() for t in types}
        self.produces: tuple[type, ...] = (
            Error,
            Overflow,
            *produces,
            *sorted(imported, key=lambda t: t.type),
        )
        self._from_peers: set[int] = set()
        self._recent_imports: collections.deque[Event] = collections.deque(maxlen=2048)
        self.peers = peers
        self._events = bus.subscribe(
            Event, name="mqtt.events", maxsize=1024, policy=OverflowPolicy.DROP_OLDEST
        )
        self._queue: asyncio.Queue[Command] = asyncio.Queue(s.max_queued_commands)
        self._seen = SeenIds()
        self._gate = RateGate(s.max_commands_per_s, max(1, int(2 * s.max_commands_per_s)))
        self._reported_drops = 0
        self._last_report = 0.0
        self.bad_imports = 0
        self.commands_run = 0
        link.subscribe(topics.commands, self._on_command, qos=1)
        for node, types in self.imports.items():
            for kind in types:
                link.subscribe(topics.of(node).event(kind.type), self._importer(kind), qos=0)
        if peers is not None:
            for node in peers.peers:
                link.subscribe(topics.of(node).status, self._status_of(node), qos=1)
                link.subscribe(topics.of(node).heartbeat, self._heartbeat_of(node), qos=0)
            link.when_connected(self._peers_link_up)

    async def run(self) -> None:
        tasks: list[asyncio.Task[None]] = []
        async with asyncio.TaskGroup() as group:
            tasks.append(group.create_task(self.link.run(), name="mqtt.link"))
            tasks.append(group.create_task(self._heartbeats(), name="mqtt.heartbeat"))
            for i in range(self.settings.command_workers):
                tasks.append(group.create_task(self._work(), name=f"mqtt.commands.{i}"))
            try:
                async for event in self._events:
                    self._export(event)
            finally:
                for task in tasks:
                    task.cancel()

    # --- events out -------------------------------------------------------------------------------

    def _export(self, event: Event) -> None:
        if id(event) in self._from_peers:
            self._from_peers.discard(id(event))
            return  # another part's event: it published it itself
        try:
            payload = json.dumps(event.to_dict(), allow_nan=False).encode()
        except (TypeError, ValueError):
            self.link.dropped += 1
            return
        self.link.send(self.topics.event(event.type), payload)
        self._report_drops()

    def _report_drops(self) -> None:
        now = time.monotonic()
        dropped = self.link.dropped
        # Said once the link is back: a report made while it is down would be dropped too.
        if (
            self.link.connected
            and dropped > self._reported_drops
            and now - self._last_report >= _REPORT_EVERY_S
        ):
            self._last_report = now
            new = dropped - self._reported_drops
            self._reported_drops = dropped
            self.bus.publish_nowait(Overflow(t=self.bus.media_time(), stream="mqtt.link", dropped=new))

    async def _heartbeats(self) -> None:
        last = -float("inf")
        while True:
            if self.link.connected and time.monotonic() - last >= self.settings.heartbeat_s:
                last = time.monotonic()
                self.link.send(self.topics.heartbeat, json.dumps({"t": round(time.time(), 3)}).encode())
            self._report_drops()
            if self.peers is not None:
                await self.peers.check()
            await asyncio.sleep(min(self.settings.heartbeat_s, 0.25))

    # --- commands in ------------------------------------------------------------------------------

    async def _on_command(self, message: aiomqtt.Message) -> None:
        name = self.topics.command_name(message.topic.value) or ""
        payload = (
            message.payload if isinstance(message.payload, bytes) else bytes(str(message.payload), "utf-8")
        )
        try:
            command = parse_command(name, payload, max_payload_bytes=self.settings.max_payload_bytes)
        except CommandRefused as exc:
            self._refuse(exc.command_id, exc.command, str(exc))
            return
        if not self._seen.first_time(command):
            earlier = self._seen.answer_of(command)
            if earlier is not None:
                self.link.send(self.topics.ack, earlier, qos=1)
            return
        if command.name in CONTROL_COMMANDS:
            await self._run(command)  # the e-stop waits for nothing
        elif not self._gate.allow():
            self._refuse(
                command.id,
                command.name,
                f"{command.name}: refused, more than {self.settings.max_commands_per_s:g} commands a second",
                command,
            )
        else:
            try:
                self._queue.put_nowait(command)
            except asyncio.QueueFull:
                self._refuse(
                    command.id,
                    command.name,
                    f"{command.name}: refused, "
                    f"{self.settings.max_queued_commands} commands are already waiting",
                    command,
                )

    async def _work(self) -> None:
        while True:
            command = await self._queue.get()
            await self._run(command)

    async def _run(self, command: Command) -> None:
        if command.expired():
            self._refuse(command.id, command.name, f"{command.name}: expired before it could run", command)
            return
        handler = self.handlers.get(command.name)
        if handler is None:
            self._refuse(command.id, command.name, f"{command.name}: this part does not take it", command)
            return
        try:
            result = await handler(command)
        except asyncio.CancelledError:
            raise
        except CommandRefused as exc:
            self._refuse(command.id, command.name, str(exc), command)
            return
        except CommandFailed as exc:
            self._answer(command, ack(command.id, command.name, False, str(exc)))
            return
        except Exception as exc:
            log.exception("command %s failed", command.name)
            self._refuse(command.id, command.name, f"{command.name} failed: {describe_error(exc)}", command)
            return
        self.commands_run += 1
        self._answer(command, ack(command.id, command.name, True, result))

    def _answer(self, command: Command, payload: bytes) -> None:
        self._seen.answered(command, payload)
        self.link.send(self.topics.ack, payload, qos=1)

    def _refuse(
        self, command_id: str | int | None, name: str | None, reason: str, command: Command | None = None
    ) -> None:
        payload = ack(command_id, name, False, reason)
        if command is not None:
            self._seen.answered(command, payload)
        self.link.send(self.topics.ack, payload, qos=1)
        label = f"command id {command_id!r}" if command_id is not None else "command"
        self.bus.publish_nowait(Error(t=self.bus.media_time(), stage=self.name, message=f"{label}: {reason}"))

    # --- other parts ------------------------------------------------------------------------------

    def _importer(self, kind: type[Event]) -> Callable[[aiomqtt.Message], Awaitable[None]]:
        async def take(message: aiomqtt.Message) -> None:
            payload = message.payload
            if (
                not isinstance(payload, bytes)
                or len(payload) > self.settings.max_payload_bytes
                or json_too_deep(payload)
            ):
                self.bad_imports += 1
                return
            try:
                event = event_from_dict(json.loads(payload))
            except (EventDecodeError, ValueError, UnicodeDecodeError) as exc:
                self.bad_imports += 1
                log.debug("event from %s refused: %s", message.topic.value, exc)
                return
            if type(event) is not kind:
                self.bad_imports += 1
                return
            # Each part has its own media clock: what arrives is stamped with this part's time.
            event = dataclasses.replace(event, t=self.bus.media_time())
            # Kept (so that its id stays its own) until the export stream has passed it by.
            if len(self._recent_imports) == self._recent_imports.maxlen:
                self._from_peers.discard(id(self._recent_imports[0]))
            self._recent_imports.append(event)
            self._from_peers.add(id(event))
            # Never waits: a full stream counts the event as dropped (reported as an overflow).
            self.bus.publish_nowait(event)

        return take

    def _status_of(self, node: str) -> Callable[[aiomqtt.Message], Awaitable[None]]:
        async def take(message: aiomqtt.Message) -> None:
            if self.peers is not None and isinstance(message.payload, bytes):
                await self.peers.status(node, message.payload[:4096])

        return take

    def _heartbeat_of(self, node: str) -> Callable[[aiomqtt.Message], Awaitable[None]]:
        async def take(_message: aiomqtt.Message) -> None:
            if self.peers is not None:
                await self.peers.heartbeat(node)

        return take

    async def _peers_link_up(self) -> None:
        if self.peers is not None:
            self.peers.link_up()
