"""What a tool can do to the agent is bounded: plain tools that never return hold a few threads of
their own (never the agent's), and a tool's result and failure are cut and redacted."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Iterator

import pytest

from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.core.events import Transcript
from avagent.policy.base import Actions
from avagent.tools.executor import ToolExecutor
from avagent.tools.registry import MAX_RESULT_CHARS, ToolRegistry, tool
from tests.conftest import SceneFactory
from tests.test_limits_policy import eventually

# --- plain tools that never return ------------------------------------------------------------------


def tool_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("avagent-tool")]


@pytest.fixture
def released() -> Iterator[threading.Event]:
    """An event the stuck tools wait on; set at the end, so that their threads end too."""
    event = threading.Event()
    yield event
    event.set()


async def test_plain_tools_run_on_a_few_threads_of_their_own(released: threading.Event) -> None:
    @tool(timeout_s=0.2)
    def jam() -> str:
        """Never returns (until the test ends)."""
        released.wait()
        return "late"

    @tool
    def where() -> str:
        """The thread it runs on."""
        return threading.current_thread().name

    executor = ToolExecutor(ToolRegistry([jam, where]), sync_workers=2)
    assert not tool_threads(), "no thread is started before a call needs one"
    outcomes = await asyncio.gather(*(executor.execute("jam", {}) for _ in range(3)))
    timed_out = [o for o in outcomes if "timed out" in o.result]
    refused = [o for o in outcomes if "threads for plain tools are still held" in o.result]
    assert (len(timed_out), len(refused)) == (2, 1)
    assert not refused[0].ran
    assert executor.sync_workers.held == 2
    assert "still held" in (await executor.execute("where", {})).result

    executor.close()  # returns at once: the stuck threads are not waited for
    assert not executor.sync_workers.running
    named = (await executor.execute("where", {})).result
    assert named.startswith("avagent-tool"), "a later call starts new threads, never asyncio's own"
    executor.close()
    released.set()
    await eventually(lambda: not tool_threads())


class Jammer:
    """Jams the plain-tool threads at the first turn, then answers every turn with what it heard."""

    name = "jammer"

    def __init__(self) -> None:
        self.heard: list[str] = []
        self.outcomes: list[str] = []

    async def respond(self, transcript: Transcript, actions: Actions) -> None:
        self.heard.append(transcript.text)
        if len(self.heard) == 1:
            outcomes = await asyncio.gather(*(actions.call_tool("jam", {}) for _ in range(6)))
            self.outcomes = [o.result for o in outcomes]
            await actions.say("Some tools are stuck, but I can still talk.")
        else:
            await actions.say(f"You said {transcript.text}.")


async def test_stuck_plain_tools_never_make_the_agent_mute_or_deaf(
    make_scene: SceneFactory, resources: Resources, released: threading.Event
) -> None:
    @tool(timeout_s=0.3)
    def jam() -> str:
        """Never returns (until the test ends)."""
        released.wait()
        return "late"

    # asyncio's default threads as on a two-core machine: six stuck tools there would take them all.
    loop = asyncio.get_running_loop()
    default = concurrent.futures.ThreadPoolExecutor(6)
    loop.set_default_executor(default)
    _, path = make_scene(["turn left", "what time is it"], gap_s=2.0, snr_db=25.0, seed=3)
    policy = Jammer()
    async with asyncio.timeout(120):
        result = await run_on_file(path, resources=resources, tools=ToolRegistry([jam]), policy=policy)
    assert sum("timed out" in o for o in policy.outcomes) == 4
    assert sum("threads for plain tools are still held" in o for o in policy.outcomes) == 2
    assert policy.heard == ["turn left", "what time is it"], "the next turn was still recognised"
    spoken = [s["text"] for s in result.of_type("speaking_started")]
    assert spoken == ["Some tools are stuck, but I can still talk.", "You said what time is it."]
    assert not result.agent.parts.executor.sync_workers.running, "the threads go when the agent stops"


async def test_a_tools_result_is_bounded_and_its_failure_redacted() -> None:
    @tool
    async def dump() -> str:
        """Return a lot."""
        return "y" * (MAX_RESULT_CHARS * 3)

    @tool
    async def leak() -> str:
        """Fail with a secret in the message."""
        raise RuntimeError("cannot log in to http://robot:hunter2@10.0.0.9/api")

    executor = ToolExecutor(ToolRegistry([dump, leak]))
    big = await executor.execute("dump", {})
    assert big.ok
    assert len(big.result) < MAX_RESULT_CHARS + 100
    assert big.result.endswith(f"[cut: {MAX_RESULT_CHARS * 2} more characters]")
    failed = await executor.execute("leak", {})
    assert not failed.ok
    assert "hunter2" not in failed.result
    assert "RuntimeError" in failed.result
