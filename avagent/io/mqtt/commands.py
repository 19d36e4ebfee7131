"""Commands from the robot bus, checked before anything runs, and their acks.

Every command is a JSON object with an ``id`` (a string or an integer: the ack names it, and a
command whose id was seen already runs no second time: the broker may deliver a QoS 1 message
twice), optionally ``ttl_ms`` (the command is refused once that has passed, counted from ``ts``,
the sender's Unix time in seconds, when given, else from its arrival here) and the command's own
fields:

    say          {"id", "text"}
    call_tool    {"id", "name", "args": {...}, "source"?}
    mute, unmute, estop, clear_estop   {"id"} (estop may give a "reason")

Bounds: ``max_payload_bytes``, JSON nesting 8 deep, texts of at most ``MAX_TEXT_CHARS``, ids of at
most 128 characters, ``ttl_ms`` at most a day. Anything else is refused with a reason naming the
command (and its id when it could be read).
"""

from __future__ import annotations

import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from avagent.core.text import one_line
from avagent.io.webrtc.offer import json_too_deep

COMMANDS = ("say", "call_tool", "mute", "unmute", "estop", "clear_estop")
MAX_TEXT_CHARS = 2000
MAX_ID_CHARS = 128
MAX_TTL_MS = 24 * 3600 * 1000
MAX_JSON_DEPTH = 8


class CommandRefused(Exception):
    """A command that will not run; ``id`` is its id when it could be read."""

    def __init__(self, reason: str, command_id: str | int | None = None, command: str | None = None) -> None:
        super().__init__(one_line(reason, 300))
        self.command_id = command_id
        self.command = command


class CommandFailed(Exception):
    """A command that ran and failed (a tool that failed): the ack says why; it is no error of
    the bus, so no ``error`` event is published for it."""


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    id: str | int
    fields: dict[str, Any]
    received: float = field(default_factory=time.time)
    """Unix time of its arrival."""
    expires: float | None = None
    """Unix time after which it is refused (None: never)."""

    def expired(self, now: float | None = None) -> bool:
        return self.expires is not None and (now if now is not None else time.time()) > self.expires


def parse_command(name: str, payload: bytes, *, max_payload_bytes: int = 64 * 1024) -> Command:
    """The command ``name`` with ``payload``, checked; ``CommandRefused`` says why not."""
    if len(payload) > max_payload_bytes:
        raise CommandRefused(f"{name}: the payload is larger than {max_payload_bytes} bytes", None, name)
    if json_too_deep(payload, MAX_JSON_DEPTH):
        raise CommandRefused(f"{name}: the payload is nested deeper than {MAX_JSON_DEPTH} levels", None, name)
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CommandRefused(f"{name}: the payload is not JSON", None, name) from None
    if not isinstance(data, dict):
        raise CommandRefused(f"{name}: the payload must be a JSON object", None, name)
    command_id = data.get("id")
    if isinstance(command_id, bool) or not isinstance(command_id, str | int):
        raise CommandRefused(f"{name}: the command needs an id (a string or an integer)", None, name)
    if isinstance(command_id, str) and not 0 < len(command_id) <= MAX_ID_CHARS:
        raise CommandRefused(f"{name}: the id must be 1-{MAX_ID_CHARS} characters", None, name)
    if name not in COMMANDS:
        known = ", ".join(COMMANDS)
        raise CommandRefused(f"unknown command {name[:40]!r} (known: {known})", command_id, name)
    received = time.time()
    expires = _expiry(name, command_id, data, received)
    fields = {k: v for k, v in data.items() if k not in ("id", "ttl_ms", "ts")}
    _check_fields(name, command_id, fields)
    return Command(name, command_id, fields, received, expires)


def _expiry(name: str, command_id: str | int, data: dict[str, Any], received: float) -> float | None:
    ttl = data.get("ttl_ms")
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl <= MAX_TTL_MS:
        raise CommandRefused(f"{name}: ttl_ms must be a number of milliseconds up to a day", command_id, name)
    sent = data.get("ts", received)
    if isinstance(sent, bool) or not isinstance(sent, int | float) or not math.isfinite(sent):
        raise CommandRefused(f"{name}: ts must be the Unix time it was sent, in seconds", command_id, name)
    return float(sent) + ttl / 1000.0


def _check_fields(name: str, command_id: str | int, fields: dict[str, Any]) -> None:
    def refuse(why: str) -> CommandRefused:
        return CommandRefused(f"{name}: {why}", command_id, name)

    if name == "say":
        text = fields.get("text")
        if not isinstance(text, str) or not text.strip():
            raise refuse("give the text to say")
        if len(text) > MAX_TEXT_CHARS:
            raise refuse(f"the text is longer than {MAX_TEXT_CHARS} characters")
    elif name == "call_tool":
        if not isinstance(fields.get("name"), str) or not fields["name"]:
            raise refuse("give the tool's name")
        args = fields.setdefault("args", {})
        if not isinstance(args, dict):
            raise refuse("args must be a JSON object")
        source = fields.get("source")
        if source is not None and not isinstance(source, str):
            raise refuse("source must be a string")
    elif name == "estop":
        reason = fields.get("reason", "")
        if not isinstance(reason, str):
            raise refuse("reason must be a string")
        fields["reason"] = one_line(reason, 200)


def ack(command_id: str | int | None, command: str | None, ok: bool, text: str) -> bytes:
    """An ack: ``{"id", "command", "ok", "result"}`` or ``{..., "ok": false, "error"}``."""
    body: dict[str, Any] = {"id": command_id, "command": command, "ok": ok}
    body["result" if ok else "error"] = text
    return json.dumps(body).encode()


class SeenIds:
    """The ids of the last ``size`` commands, with their acks once answered: a repeated id is
    answered again, never run again."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._seen: OrderedDict[str | int, bytes | None] = OrderedDict()

    def first_time(self, command: Command) -> bool:
        key = command.id
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True

    def answered(self, command: Command, payload: bytes) -> None:
        key = command.id
        if key in self._seen:
            self._seen[key] = payload

    def answer_of(self, command: Command) -> bytes | None:
        """The ack of an earlier command with this id (None while it still runs)."""
        return self._seen.get(command.id)


class RateGate:
    """At most ``rate`` commands a second on average, ``burst`` at once (a token bucket on the
    wall clock: commands come from outside, in real time)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
