"""Actuators: what the agent moves, and the layer every command to them passes through.

- ``base``: the ``Actuator`` protocol (commands in, state out, ``stop()`` always safe), and ``Body``,
  what the built-in tools drive.
- ``simulated``, ``log``, ``mqtt``: the built-in actuators; ``registry``: types by name, plug-ins
  from the entry-point group ``avagent.actuators``.
- ``envelope``, ``sources``, ``hub``: the safety envelope, the command sources' priorities and
  leases, and the hub that applies them and holds the emergency stop.
- ``body``: the hub as the tools' ``Body`` and the follow behaviour's head; ``stage``: the hub on
  the bus.
"""

from avagent.io.actuators.base import Actuator, ActuatorRefused, Axis, Body, Limited, Reading
from avagent.io.actuators.simulated import SimulatedBase, SimulatedBody, SimulatedHead

__all__ = [
    "Actuator",
    "ActuatorRefused",
    "Axis",
    "Body",
    "Limited",
    "Reading",
    "SimulatedBase",
    "SimulatedBody",
    "SimulatedHead",
]
