"""Agents as separate processes on a real Mosquitto broker: the Last Will of a killed agent, and
one agent split in three (``--role perception|policy|actuators``) carrying a spoken command from
the microphone's process through the policy's to the motors', and staying safe when a part dies."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import signal
import subprocess
import sys
import termios
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SceneFactory
from tests.mosquitto import Broker, broker
from tests.mqtt_support import Seen, bus_client

__all__ = ["broker"]


@contextlib.contextmanager
def avagent(*args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "avagent", "run", "--json", *args],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def status_of(node: str, state: str) -> Callable[[Seen], bool]:
    return lambda s: (
        s.topic == f"avagent/{node}/status" and isinstance(s.data, dict) and s.data["state"] == state
    )


@pytest.mark.slow
async def test_a_killed_agent_goes_offline_by_its_last_will(broker: Broker, tmp_path: Path) -> None:
    args = ("--role", "actuators", "--mqtt", broker.url, "--agent-id", "lw")
    async with bus_client(broker.port) as bus:
        with avagent(*args, log=tmp_path / "agent.log") as process:
            await bus.wait_for(status_of("lw-actuators", "online"), within_s=60.0)
            process.send_signal(signal.SIGKILL)
            [gone] = await bus.wait_for(status_of("lw-actuators", "offline"), within_s=20.0)
            assert gone.data == {
                "state": "offline",
                "node": "lw-actuators",
                "agent_id": "lw",
                "role": "actuators",
            }
    async with bus_client(broker.port) as late:
        [kept] = await late.wait_for(lambda s: s.topic == "avagent/lw-actuators/status")
        assert (kept.retain, kept.data["state"]) == (True, "offline")


def event(node: str, kind: str, **fields: object) -> Callable[[Seen], bool]:
    def match(s: Seen) -> bool:
        return (
            s.topic == f"avagent/{node}/events/{kind}"
            and isinstance(s.data, dict)
            and all(s.data.get(k) == v for k, v in fields.items())
        )

    return match


@pytest.mark.slow
async def test_one_agent_split_across_three_processes_carries_a_spoken_command_to_the_motors(
    broker: Broker, tmp_path: Path, make_scene: SceneFactory
) -> None:
    _, path = make_scene(["turn left"], snr_db=25.0, seed=51, lead_s=1.0, tail_s=12.0)
    bus_args = ("--mqtt", broker.url, "--agent-id", "robot")
    async with bus_client(broker.port) as bus:
        with (
            avagent("--role", "actuators", *bus_args, log=tmp_path / "actuators.log"),
            avagent("--role", "policy", *bus_args, log=tmp_path / "policy.log") as policy,
        ):
            for node in ("robot-actuators", "robot-policy"):
                await bus.wait_for(status_of(node, "online"), within_s=60.0)
            perception_args = ("--role", "perception", *bus_args, "--input", str(path), "--realtime")
            with avagent(*perception_args, log=tmp_path / "perception.log"):
                [heard] = await bus.wait_for(event("robot-perception", "transcript"), within_s=60.0)
                assert heard.data["text"] == "turn left"
                [moved] = await bus.wait_for(
                    event("robot-actuators", "actuator", name="base", cause="command"),
                    within_s=20.0,
                )
                assert (moved.data["source"], moved.data["target"]) == ("voice", {"heading": 90.0})
                [result] = await bus.wait_for(event("robot-policy", "tool_result", name="turn"))
                assert (result.data["ok"], result.data["result"]) == (True, "Turning left 90 degrees.")
                await bus.wait_for(
                    event("robot-perception", "speaking_started", text="Turning left 90 degrees."),
                    within_s=20.0,
                )
                # The policy's process dies: the motors stop and stay stopped, the robot says so.
                policy.send_signal(signal.SIGKILL)
                [estop] = await bus.wait_for(
                    event("robot-actuators", "estop", source="heartbeat"), within_s=20.0
                )
                assert "robot-policy went offline" in estop.data["reason"]
                await bus.wait_for(
                    event(
                        "robot-perception", "say", text="I lost contact with my policy, so I cannot answer."
                    ),
                    within_s=20.0,
                )


def _take_the_terminal() -> None:
    """In the child: a new session whose controlling terminal is its standard input (a pty)."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _on_terminal(args: list[str], tty: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "avagent", "run", "--json", *args],
            stdin=tty,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_take_the_terminal,
        )


@pytest.mark.slow
async def test_a_key_on_the_terminal_engages_and_clears_the_estop(broker: Broker, tmp_path: Path) -> None:
    terminal, tty = pty.openpty()
    args = ["--role", "actuators", "--mqtt", broker.url, "--agent-id", "keys"]
    process = _on_terminal(args, tty, tmp_path / "agent.log")
    os.close(tty)
    try:
        async with bus_client(broker.port) as bus:
            await bus.wait_for(status_of("keys-actuators", "online"), within_s=60.0)
            await asyncio.sleep(0.5)
            os.write(terminal, b"e")
            [estop] = await bus.wait_for(event("keys-actuators", "estop"), within_s=10.0)
            assert (estop.data["source"], estop.data["reason"]) == ("key", "a key on the terminal")
            os.write(terminal, b"c")
            [cleared] = await bus.wait_for(event("keys-actuators", "estop_cleared"), within_s=10.0)
            assert cleared.data["source"] == "key"
    finally:
        process.kill()
        process.wait(10)
        os.close(terminal)
    assert "space or e: emergency stop" in (tmp_path / "agent.log").read_text()
