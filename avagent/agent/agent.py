"""The Agent: wires a configuration into running stages, runs them, and stops them cleanly.

One sound's path: a source publishes ``AudioFrame``s -> ``Listener`` (VAD, turns) publishes a
``UserTurn`` -> ``Transcriber`` publishes a ``Transcript`` -> ``PolicyRunner`` calls tools and
publishes ``Say`` -> ``SpeechOut`` synthesises into the ``Playback`` -> a speaker pulls it.

Every stage runs under a supervisor in one TaskGroup: a stage that crashes is reported as an
``error`` event and restarted; the others keep running. ``stop()`` is idempotent and returns once
every task has exited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from avagent.agent.backends import build_recognizer, build_synthesizer
from avagent.agent.bus import Bus
from avagent.agent.clock import MediaClock
from avagent.agent.config import AgentConfig
from avagent.agent.events import Error, Event, Say
from avagent.agent.spatial import build_spatial
from avagent.agent.trace import TurnTracer
from avagent.io.actuators import Body, SimulatedBody
from avagent.io.playback import Playback
from avagent.io.speech_out import SpeechOut
from avagent.io.tts.base import Synthesizer
from avagent.perception.asr.base import Recognizer
from avagent.perception.asr.stage import Transcriber
from avagent.perception.echo import EchoCanceller
from avagent.perception.listening import Listener, ListenerSettings
from avagent.perception.turns import TurnSettings
from avagent.perception.vad import SegmenterSettings, SileroJitVad, SileroVad
from avagent.policy.base import Policy
from avagent.policy.runner import PolicyRunner
from avagent.policy.select import build_executor, check_model, choose_policy, command_policy
from avagent.tools.builtin import builtin_tools
from avagent.tools.confirm import CONFIRM_PHRASES, needs_confirmation
from avagent.tools.phrases import CommandPhrases
from avagent.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from avagent.tools.mcp import McpToolbox

log = logging.getLogger("avagent")

DEFAULT_PLAYBACK_RATE = 22050
_SHUTDOWN_GRACE_S = 0.5


class Stage(Protocol):
    name: str

    async def run(self) -> None: ...


class AudioSource(Stage, Protocol):
    @property
    def finite(self) -> bool:
        """True when the source ends by itself (a file); the agent stops when it has."""
        ...


def default_tools(config: AgentConfig, body: Body) -> ToolRegistry:
    chosen = set(config.tools.builtin)
    return ToolRegistry(t for t in builtin_tools(body) if t.name in chosen)


class Resources:
    """What is loaded once and shared by every agent in the process: recogniser, synthesiser, and
    the command phrases of the tools (which give the offline recogniser its grammar)."""

    def __init__(self, config: AgentConfig, tools: ToolRegistry | None = None) -> None:
        self.config = config
        template_tools = tools if tools is not None else default_tools(config, SimulatedBody())
        extra = CONFIRM_PHRASES if needs_confirmation(config, template_tools) else ()
        self.phrases = CommandPhrases(template_tools, extra_phrases=extra)
        grammar = self.phrases.jsgf() if config.asr.backend == "pocketsphinx" else None
        self.recognizer: Recognizer = build_recognizer(config, grammar)
        self.synthesizer: Synthesizer = build_synthesizer(config)

    async def aclose(self) -> None:
        await self.recognizer.aclose()
        closer = getattr(self.synthesizer, "aclose", None)
        if closer is not None:
            await closer()


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
    ) -> None:
        """``video_from_source``: the source publishes ``VideoFrame``s itself (a call's camera), so
        the configured camera is not opened; faces run on that video if ``faces.on_calls``.
        ``echo``: the microphone hears the agent's own speaker; cancel that echo before listening."""
        self.config = config = config if config is not None else AgentConfig()
        self.body: Body = body if body is not None else SimulatedBody()
        self.tools = tools if tools is not None else default_tools(config, self.body)
        self.resources = resources if resources is not None else Resources(config, self.tools)
        self._owns_resources = resources is None
        self.bus = Bus()
        self.clock = MediaClock(extrapolate=realtime)
        self.bus.media_time = self.clock.now
        rate = playback_rate or config.audio.output.sample_rate or DEFAULT_PLAYBACK_RATE
        self.playback = Playback(rate, self._emit_from_anywhere)
        self.speech_out = SpeechOut(self.bus, self.resources.synthesizer, self.playback)
        self.listener = Listener(
            self.bus,
            listener_settings(config),
            # Thinking counts too: the user can cut in while the model is still generating.
            agent_speaking=lambda: self.speech_out.busy or self.policy_runner.thinking,
            vad=SileroJitVad() if config.vad.backend == "jit" else SileroVad(),
            echo=echo,
        )
        self.transcriber = Transcriber(self.bus, self.resources.recognizer)
        self.executor = build_executor(config, self.tools)
        self.policy_notice: str | None = None
        """Why the offline policy runs although a model is configured (None when it does not)."""
        self.policy = policy if policy is not None else self._default_policy()
        self._check_model = policy is None
        self.policy_runner = PolicyRunner(
            self.bus, self.policy, self.executor, confirm_timeout_s=config.tools.confirm_timeout_s
        )
        self._mcp: McpToolbox | None = None
        self._prepared = False
        self.tracer = TurnTracer(self.bus)
        self._extra_stages: list[Stage] = []
        # Where sound comes from, faces, the active speaker and the head: only what the config names.
        self.spatial = build_spatial(config, self.bus, self.clock, video_from_source=video_from_source)
        self._extra_stages.extend(self.spatial.stages)
        self._stop_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        self._running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    def _default_policy(self) -> Policy:
        choice = choose_policy(self.config, self.resources.phrases, self.executor)
        self.policy_notice = choice.fallback_reason
        return choice.policy

    async def prepare(self) -> None:
        """Connect what the agent needs before its first turn (MCP servers, the model); a model
        that does not answer makes the offline command policy take over, said aloud once. Called
        by ``run``; call it first to know ``policy`` and ``policy_notice`` before running. Must
        be awaited in the task that runs the agent (MCP sessions are bound to it)."""
        if self._prepared:
            return
        self._prepared = True
        if self.config.tools.mcp_servers:
            from avagent.tools.mcp import McpToolbox  # LangChain and MCP load only when used

            self._mcp = McpToolbox(self.config.tools.mcp_servers)
            for t in await self._mcp.start():
                if t.name in self.tools:
                    log.warning("MCP tool %s has the name of a tool already registered: left out", t.name)
                    continue
                self.tools.register(t)
            for name, why in self._mcp.failures.items():
                self.bus.publish_nowait(Error(t=self.clock.now(), stage="mcp", message=f"{name}: {why}"))
        if self._check_model and self.policy_notice is None:
            self.policy_notice = await check_model(self.policy, self.config)
            if self.policy_notice is not None:
                self.policy = command_policy(self.config, self.resources.phrases)
                self.policy_runner.policy = self.policy
        if self.policy_notice is not None:
            log.warning("%s; using the offline command policy", self.policy_notice)
            self.bus.publish_nowait(Error(t=self.clock.now(), stage="policy", message=self.policy_notice))
            self.bus.publish_nowait(Say(t=self.clock.now(), text=self.config.policy.fallback_notice))

    def add_stage(self, stage: Stage) -> None:
        """Run ``stage`` (a sink, an observer, another sense) alongside the built-in ones."""
        self._extra_stages.append(stage)

    def idle(self) -> bool:
        """Nobody has the floor and nothing is being worked on or said."""
        return not (
            self.listener.busy
            or self.policy_runner.busy
            or self.speech_out.busy
            or self.bus.activity.pending > 0
        )

    def _emit_from_anywhere(self, event: Event) -> None:
        """Publish ``event`` from the loop's thread or any other (a sound card callback)."""
        if self._loop is not None and threading.get_ident() != self._loop_thread:
            self._loop.call_soon_threadsafe(self.bus.publish_nowait, event)
        else:
            self.bus.publish_nowait(event)

    @property
    def stages(self) -> Sequence[Stage]:
        return [
            self.listener,
            self.transcriber,
            self.policy_runner,
            self.speech_out,
            self.tracer,
            *self._extra_stages,
        ]

    async def run(self, source: AudioSource) -> None:
        """Run until ``source`` ends (a file) or ``stop()`` is called. A source that fails ends the
        run, and its exception is raised once everything has shut down."""
        if self._running:
            raise RuntimeError("this agent is already running")
        self._running = True
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self.bus.bind_loop(self._loop)
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
            if self._mcp is not None:
                await self._mcp.aclose()
            self._stopped.set()
            if self._owns_resources:
                await self.resources.aclose()
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

    def request_stop(self) -> None:
        """Ask the agent to stop (safe from a signal handler); returns at once."""
        self._stop_requested.set()

    async def stop(self) -> None:
        """Stop and wait until every task has exited. Safe to call twice, or before ``run``."""
        self._stop_requested.set()
        if self._running:
            await self._stopped.wait()


def listener_settings(config: AgentConfig) -> ListenerSettings:
    v, t = config.vad, config.turns
    return ListenerSettings(
        segmenter=SegmenterSettings(
            threshold=v.threshold,
            neg_threshold=v.neg_threshold,
            min_speech_s=v.min_speech_ms / 1000.0,
            min_silence_s=v.min_silence_ms / 1000.0,
            start_pad_s=v.start_pad_ms / 1000.0,
            end_pad_s=v.end_pad_ms / 1000.0,
        ),
        turns=TurnSettings(
            hangover_s=t.hangover_ms / 1000.0,
            max_utterance_s=t.max_utterance_s,
            barge_in=t.barge_in,
            min_barge_in_s=t.min_barge_in_ms / 1000.0,
            pause_on_onset=t.pause_on_onset,
        ),
    )
