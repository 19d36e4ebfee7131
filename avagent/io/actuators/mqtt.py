"""An actuator behind an external motor controller on the MQTT bus.

Commands go out as JSON on ``<topic>/cmd`` at QoS 1:

    {"op": "move", "seq": 7, "targets": {"heading": 90.0}, "speed": 45.0, "lease_ms": 2000, "ts": 1767...}
    {"op": "stop", "seq": 8, "ts": 1767...}

and the controller reports on ``<topic>/state``: ``{"position": {"heading": 12.5}, "moving": true}``
(``target`` may be given too). A move carries ``lease_ms``: the controller should stop by itself if
no newer command comes within it, so that a lost link cannot leave the motor running. A move is
refused while the link is down; a stop is always sent, the moment the link allows (stopping late is
still safe). ``stop()`` returns as soon as the stop is on its way.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import aiomqtt

from avagent.io.actuators.base import ActuatorRefused, Axis, Reading
from avagent.io.mqtt.link import MqttLink

log = logging.getLogger("avagent.actuators")

MAX_STATE_BYTES = 16 * 1024
"""A state message larger than this is ignored."""


class MqttActuator:
    """Commands to ``<topic>/cmd``, state from ``<topic>/state``, over the agent's MQTT link."""

    def __init__(
        self,
        name: str,
        link: MqttLink,
        topic: str,
        *,
        axes: Sequence[str] = ("heading",),
        circular: Sequence[str] = ("heading",),
        lease_ms: int = 2000,
    ) -> None:
        if not topic or any(c in topic for c in "+#") or topic.endswith("/"):
            raise ValueError(f"actuator {name}: {topic!r} is not a topic to publish commands on")
        self.name = name
        self.link = link
        self.topic = topic
        self.axes: Mapping[str, Axis] = {a: Axis("deg", circular=a in circular) for a in axes}
        self.lease_ms = lease_ms
        self._seq = itertools.count(1)
        self._reading = Reading(dict.fromkeys(axes, 0.0), False)
        self.bad_states = 0
        link.subscribe(f"{topic}/state", self._on_state, qos=0)

    async def move(self, targets: Mapping[str, float], speed: float | None) -> None:
        if not self.link.connected:
            raise ActuatorRefused(f"{self.name}: the link to its motor controller is down")
        self._send({"op": "move", "targets": dict(targets), "speed": speed, "lease_ms": self.lease_ms})
        self._reading = Reading(self._reading.position, True, dict(targets))

    async def stop(self) -> None:
        self._send({"op": "stop"}, urgent=True)
        self._reading = Reading(self._reading.position, False, dict(self._reading.position))

    def reading(self) -> Reading:
        return self._reading

    def _send(self, body: dict[str, Any], *, urgent: bool = False) -> None:
        message = {**body, "seq": next(self._seq), "ts": round(time.time(), 3)}
        self.link.send(f"{self.topic}/cmd", json.dumps(message).encode(), qos=1, urgent=urgent)

    async def _on_state(self, message: aiomqtt.Message) -> None:
        payload = message.payload
        if not isinstance(payload, bytes | bytearray) or len(payload) > MAX_STATE_BYTES:
            self.bad_states += 1
            return
        try:
            data = json.loads(payload)
            position = {str(k): float(v) for k, v in dict(data["position"]).items() if str(k) in self.axes}
            moving = bool(data.get("moving", False))
            target = {
                str(k): float(v) for k, v in dict(data.get("target") or {}).items() if str(k) in self.axes
            }
        except (ValueError, TypeError, KeyError, AttributeError):
            self.bad_states += 1
            return
        if not all(math.isfinite(v) for v in (*position.values(), *target.values())):
            self.bad_states += 1
            return
        self._reading = Reading({**self._reading.position, **position}, moving, target)
