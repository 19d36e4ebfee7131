"""The Agent: runs the stages the builder made, and stops them cleanly.

One sound's path: a source publishes ``AudioFrame``s -> ``Listener`` (VAD, turns) publishes a
``TurnEnded`` -> ``Transcriber`` publishes a ``Transcript`` -> ``PolicyRunner`` calls tools and
publishes ``Say`` -> ``SpeechOut`` synthesises into the ``Playback`` -> a speaker pulls it.
What those stages are is the builder's business (``agent/builder.py``).

Every stage runs under a supervisor in one TaskGroup: a stage that crashes is reported as an
``error`` event and restarted; the others keep running. ``stop()`` is idempotent and returns once
every task has exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

from avagent.agent.builder import AgentParts, build, connect
from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.core.events import Error
from avagent.core.stage import Stage
from avagent.io.actuators import Body
from avagent.perception.echo import EchoCanceller
from avagent.policy.base import Policy
from avagent.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from avagent.tools.mcp import McpToolbox

log = logging.getLogger("avagent")

_SHUTDOWN_GRACE_S = 0.5


class Agent:
    """One conversational agent: its own bus, hearing, turn-taking, policy and voice."""

    def __init__(
        self,
        config: AgentConfig | None = None,
        *,
        resources: Resources | None = None,
        tools: ToolRegistry | None = None,
        body: Body | None = None,
        policy: Policy | None = None,
        playback_rate: int | None = None,
        realtime: bool = True,
        video_from_source: bool = False,
        echo: EchoCanceller | None = None,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        """An agent for ``config`` (the defaults of configs/laptop.yaml when None). ``resources``:
        models shared with other agents (else its own, stopped with it). ``tools``, ``body``,
        ``policy``: in place of the configured ones. ``realtime``: media time runs with the wall
        clock (not for a file fed as fast as possible). ``video_from_source``: the source publishes
        ``VideoFrame``s itself (a call's camera), so the configured camera is not opened. ``echo``:
        the microphone hears the agent's own speaker; cancel that echo before listening.
        ``chat_model``: answers in place of the configured model (a replay's recorded answers)."""
        config = config if config is not None else AgentConfig()
        self._owns_resources = resources is None
        if resources is None:
            resources = Resources(config, tools)
        self.parts: AgentParts = build(
            config,
            resources,
            tools=tools,
            body=body,
            policy=policy,
            playback_rate=playback_rate,
            realtime=realtime,
            video_from_source=video_from_source,
            echo=echo,
            chat_model=chat_model,
        )
        self.config = config
        self.resources = resources
        self.bus = self.parts.bus
        self.clock = self.parts.clock
        self.playback = self.parts.playback
        self._mcp: McpToolbox | None = None
        self._prepared = False
        self._stop_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self.stop_signal: signal.Signals | None = None
        """The signal that stopped a run started with ``handle_signals`` (None: it was not one)."""

    @property
    def tools(self) -> ToolRegistry:
        return self.parts.tools

    @property
    def policy(self) -> Policy:
        """The policy answering turns (the offline commands if the model could not be reached)."""
        return self.parts.policy_runner.policy

    @property
    def policy_notice(self) -> str | None:
        """Why the offline policy runs although a model is configured (None when it does not)."""
        return self.parts.policy_notice

    @property
    def stages(self) -> Sequence[Stage]:
        return self.parts.stages

    def add_stage(self, stage: Stage) -> None:
        """Run ``stage`` (a sink, an observer, another sense) alongside the built-in ones."""
        self.parts.extra.append(stage)

    def idle(self) -> bool:
        """Nobody has the floor and nothing is being worked on or said."""
        return self.bus.activity.idle()

    async def prepare(self) -> None:
        """Start the models and connect what the agent needs before its first turn (MCP servers,
        the model); a model that does not answer makes the offline command policy take over, said
        aloud once. Called by ``run``; call it first to know ``policy`` and ``policy_notice``
        before running. Must be awaited in the task that runs the agent."""
        if self._prepared:
            return
        self._prepared = True
        self._mcp = await connect(self.parts)

    async def run(self, source: Stage, *, handle_signals: bool = False) -> None:
        """Run until ``source`` ends (a file) or ``stop()`` is called (or, with ``handle_signals``,
        SIGINT or SIGTERM arrives). A source that fails ends the run, and its exception is raised
        once everything has shut down."""
        if self._running:
            raise RuntimeError("this agent is already running")
        self._running = True
        loop = asyncio.get_running_loop()
        self.bus.bind_loop(loop)
        signals = []
        for sig in (signal.SIGINT, signal.SIGTERM) if handle_signals else ():
            try:
                loop.add_signal_handler(sig, self._stop_on_signal, sig)
                signals.append(sig)
            except (NotImplementedError, RuntimeError):
                pass
        source_error: BaseException | None = None
        try:
            await self.prepare()
            async with asyncio.TaskGroup() as group:
                stage_tasks = [group.create_task(self._supervise(s), name=s.name) for s in self.stages]
                source_task = group.create_task(source.run(), name=source.name)
                stop_task = group.create_task(self._stop_requested.wait(), name="agent.stop")
                await asyncio.wait({source_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
                if source_task.done() and not source_task.cancelled():
                    source_error = source_task.exception()
                    if source_error is None:
                        # Let the last events reach the sinks before closing the streams.
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(2.0):
                                await self.bus.activity.settled()
                source_task.cancel()
                stop_task.cancel()
                self.bus.close()
                _done, pending = await asyncio.wait(stage_tasks, timeout=_SHUTDOWN_GRACE_S)
                for task in pending:
                    task.cancel()
        except* Exception as group_error:
            errors = [e for e in group_error.exceptions if e is not source_error]
            if errors:
                raise
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)
            if self._mcp is not None:
                await self._mcp.stop()
            self._stopped.set()
            if self._owns_resources:
                await self.resources.stop()
        if source_error is not None:
            raise source_error

    async def _supervise(self, stage: Stage) -> None:
        """Run ``stage``; if it crashes, report it and start it again (backing off)."""
        failures = 0
        while True:
            try:
                await stage.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                log.exception("stage %s failed", stage.name)
                self.bus.publish_nowait(
                    Error(t=self.clock.now(), stage=stage.name, message=f"{type(exc).__name__}: {exc}")
                )
                await asyncio.sleep(min(0.05 * 2**failures, 2.0))

    def _stop_on_signal(self, sig: signal.Signals) -> None:
        if self.stop_signal is None:
            self.stop_signal = sig
        self.request_stop()

    def request_stop(self) -> None:
        """Ask the agent to stop (safe from a signal handler); returns at once."""
        self._stop_requested.set()

    async def stop(self) -> None:
        """Stop and wait until every task has exited. Safe to call twice, or before ``run``."""
        self._stop_requested.set()
        if self._running:
            await self._stopped.wait()
