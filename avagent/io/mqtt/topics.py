"""The topic tree of one node (an agent, or one part of a split agent) on the robot bus:

    <prefix>/<node>/status          retained {"state": "online", ...}; the Last Will sets "offline"
    <prefix>/<node>/heartbeat       {"t": unix time} every heartbeat_s (QoS 0)
    <prefix>/<node>/events/<type>   every event of the contract, as JSON (QoS 0)
    <prefix>/<node>/cmd/<name>      commands in (QoS 1): say, call_tool, mute, unmute, estop, clear_estop
    <prefix>/<node>/ack             each command's answer {"id", "ok", "result" | "error"} (QoS 1)

A split agent's parts are nodes named ``<agent id>-<role>``: ``robot1-perception``,
``robot1-policy``, ``robot1-actuators``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from avagent.core.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,64}(/[A-Za-z0-9_.-]{1,64}){0,4}$")
CONTROL_COMMANDS = ("estop", "clear_estop")
"""Commands that overtake every other message queued for the node."""


def check_node_name(name: str, what: str = "mqtt.agent_id") -> str:
    """``name`` if it can be one level of a topic (letters, digits, ``_.-``), else ``ConfigError``."""
    if not _NAME.match(name):
        raise ConfigError(f"{what}: {name[:40]!r} must be 1-64 letters, digits, '_', '.' or '-'")
    return name


def check_prefix(prefix: str) -> str:
    if not _PREFIX.match(prefix):
        raise ConfigError(f"mqtt.prefix: {prefix[:40]!r} must be topic levels of letters, digits, '_.-'")
    return prefix


@dataclass(frozen=True, slots=True)
class Topics:
    """The topics of node ``node`` under ``prefix``."""

    prefix: str
    node: str

    @property
    def root(self) -> str:
        return f"{self.prefix}/{self.node}"

    @property
    def status(self) -> str:
        return f"{self.root}/status"

    @property
    def heartbeat(self) -> str:
        return f"{self.root}/heartbeat"

    @property
    def ack(self) -> str:
        return f"{self.root}/ack"

    @property
    def commands(self) -> str:
        """The filter of every command to this node."""
        return f"{self.root}/cmd/+"

    def command(self, name: str) -> str:
        return f"{self.root}/cmd/{name}"

    def event(self, kind: str) -> str:
        return f"{self.root}/events/{kind}"

    def of(self, node: str) -> Topics:
        """The topics of another node under the same prefix."""
        return Topics(self.prefix, node)

    def is_control(self, topic: str) -> bool:
        """``topic`` is a control command to this node (it overtakes queued messages)."""
        return any(topic == self.command(name) for name in CONTROL_COMMANDS)

    def command_name(self, topic: str) -> str | None:
        """The command a topic of this node names (None for other topics)."""
        head = f"{self.root}/cmd/"
        return topic[len(head) :] if topic.startswith(head) else None
