"""The builder: turns a configuration into the parts of an agent, wired together.

This is the one place that knows every part of an agent and every config section it reads: the
listener's settings, the policy (a model, or the offline commands when none is configured or it
cannot be reached), the tool rules, and the spatial stages (sound direction, camera, faces, the
active speaker, a head that follows the talker). The models every agent of a process shares
(recogniser, synthesiser, the tools' spoken phrases) come from ``agent/resources.py``. The
``Agent`` runs what is built here.

Nothing is started here: processes, threads and connections start when the agent runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from avagent.agent.avllm import chat_model_for, is_local, wire_senses
from avagent.agent.config import AgentConfig, ArrayConfig, CameraConfig
from avagent.agent.hearing import urgent_spotters, wake_word
from avagent.agent.recording import wire_recording
from avagent.agent.resources import Resources, asr_backend, default_tools
from avagent.agent.robot import Robot, build_robot
from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.events import Error, Say
from avagent.core.stage import Stage
from avagent.core.trace import TurnTracer
from avagent.io.actuators import Body
from avagent.io.head import HeadLimits, PanTiltHead, SimulatedPanTiltHead
from avagent.io.playback import Playback
from avagent.io.speech_out import SpeechOut
from avagent.perception.arrays import MicArray, from_positions, load_geometry, preset
from avagent.perception.asr.stage import Transcriber
from avagent.perception.doa import DoaSettings, SoundDirectionStage
from avagent.perception.echo import EchoCanceller
from avagent.perception.listening import Listener
from avagent.perception.turns import TurnSettings
from avagent.perception.vad import SileroJitVad, SileroVad, VadSettings
from avagent.policy.base import Policy
from avagent.policy.commands import CommandPolicy
from avagent.policy.follow import FollowSettings, FollowSpeaker
from avagent.policy.limits import AnswerLimits
from avagent.policy.runner import PolicyRunner
from avagent.tools.executor import RateLimit, ToolExecutor
from avagent.tools.phrases import CommandPhrases
from avagent.tools.registry import ToolRegistry
from avagent.tools.senses import SenseLink

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from avagent.io.camera import CameraSource, VideoFileSource
    from avagent.perception.faces import FaceStage
    from avagent.perception.speaker import ActiveSpeakerStage
    from avagent.policy.models import ModelSettings
    from avagent.tools.mcp import McpToolbox

log = logging.getLogger("avagent")

DEFAULT_PLAYBACK_RATE = 22050


# --- the policy ----------------------------------------------------------------------------------


def build_executor(config: AgentConfig, registry: ToolRegistry, clock: MediaClock) -> ToolExecutor:
    """The executor with the configured permissions, rate limits, timeout and threads. Rate limits
    count media time: a recording fed faster than real time is limited as it would be live."""
    t = config.tools
    return ToolExecutor(
        registry,
        permissions=dict(t.permissions),
        rate_limits={name: RateLimit(r.calls, r.per_s) for name, r in t.rate_limits.items()},
        timeout_s=t.timeout_s,
        sync_workers=t.sync_workers,
        clock=clock.now,
    )


def answer_limits(config: AgentConfig) -> AnswerLimits:
    p = config.policy
    return AnswerLimits(
        max_answer_words=p.max_answer_words,
        max_answer_s=p.max_answer_s,
        cut_notice=p.cut_notice,
        max_tool_calls_per_step=p.max_tool_calls_per_step,
    )


def command_policy(config: AgentConfig, phrases: CommandPhrases, executor: ToolExecutor) -> CommandPolicy:
    return CommandPolicy(
        phrases,
        sorry=config.policy.sorry,
        min_confidence=config.policy.min_confidence,
        exact=asr_backend(config) == "pocketsphinx",
        wake=wake_word(config.hearing, phrases),
        asks=lambda tool: executor.permission(tool) == "confirm",
    )


def model_settings(config: AgentConfig) -> ModelSettings:
    from avagent.policy.models import ModelSettings

    p = config.policy
    return ModelSettings(
        model=p.model or "",
        base_url=p.base_url,
        shared_base_url=config.base_url,
        api_key_env=p.api_key_env,
        shared_api_key_env=config.api_key_env,
        temperature=p.temperature,
        max_retries=p.max_retries,
    )


def choose_policy(
    config: AgentConfig,
    phrases: CommandPhrases,
    executor: ToolExecutor,
    chat_model: BaseChatModel | None = None,
) -> tuple[Policy, str | None]:
    """The configured policy, or the offline one and why, when the model cannot be built.
    ``chat_model`` answers in place of the configured model (a recording's answers, in a replay)."""
    p = config.policy
    if not p.model:
        return command_policy(config, phrases, executor), None
    # LangChain takes half a second to import: only when a model is configured.
    from avagent.policy.context import PerceptionContext
    from avagent.policy.llm import LLMPolicy
    from avagent.policy.memory import ConversationMemory
    from avagent.policy.models import ModelUnavailable

    settings = model_settings(config)
    try:
        model = chat_model if chat_model is not None else chat_model_for(config, settings)
    except ModelUnavailable as exc:
        return command_policy(config, phrases, executor), str(exc)
    policy = LLMPolicy(
        model,
        executor,
        system_prompt=p.system_prompt,
        persona=p.persona,
        max_tool_steps=p.max_tool_steps,
        memory=ConversationMemory(p.memory_turns, p.memory_tokens),
        context=PerceptionContext(),
        stream_timeout_s=p.stream_timeout_s,
        sorry=p.sorry,
        label=settings.describe(),
        limits=answer_limits(config),
        wake=wake_word(config.hearing, phrases),
    )
    return policy, None


async def check_model(policy: Policy, config: AgentConfig) -> str | None:
    """None when ``policy`` is not a model policy or its model answers; else why it cannot be used."""
    from avagent.policy.llm import LLMPolicy

    if not isinstance(policy, LLMPolicy):
        return None
    from avagent.policy.models import ModelUnavailable, probe

    try:
        await probe(policy.model, config.policy.probe_timeout_s)
    except ModelUnavailable as exc:
        return f"{model_settings(config).describe()} is unreachable: {exc}"
    return None


def describe_policy(policy: Policy) -> str:
    """The policy's name, and its model for a model policy: for the start-up line."""
    label = getattr(policy, "label", None)
    return f"{policy.name} ({label})" if label else policy.name


# --- where sound comes from, and sight -----------------------------------------------------------


def array_from_config(config: ArrayConfig) -> MicArray | None:
    """The configured microphone array, or None when there is none."""
    if config.preset is not None:
        return preset(config.preset)
    if config.geometry is not None:
        return load_geometry(config.geometry)
    if config.mics is not None:
        return from_positions("array.mics", config.mics)
    return None


def vad_settings(config: AgentConfig) -> VadSettings:
    return VadSettings(**config.vad.model_dump(exclude={"backend"}))


def turn_settings(config: AgentConfig) -> TurnSettings:
    return TurnSettings(**config.turns.model_dump())


def doa_settings(config: AgentConfig) -> DoaSettings:
    return DoaSettings(**config.array.doa.model_dump())


def video_source(config: CameraConfig, bus: Bus, clock: MediaClock) -> CameraSource | VideoFileSource:
    """A video file (played in step with the audio) or a live camera / stream URL."""
    from avagent.io.camera import CameraSource, VideoFileSource

    source = config.source
    if isinstance(source, str) and source.strip().isdigit():
        source = int(source)
    if isinstance(source, str) and "://" not in source:
        return VideoFileSource(source, bus, clock, fps=config.fps)
    assert source is not None
    return CameraSource(source, bus, clock, fps=config.fps, width=config.width, height=config.height)


@dataclass
class Spatial:
    """The spatial stages of one agent (each None when not configured)."""

    array: MicArray | None = None
    doa: SoundDirectionStage | None = None
    video: CameraSource | VideoFileSource | None = None
    faces: FaceStage | None = None
    speaker: ActiveSpeakerStage | None = None
    head: PanTiltHead | None = None
    follow: FollowSpeaker | None = None

    @property
    def stages(self) -> list[Stage]:
        found: list[Stage | None] = [self.doa, self.video, self.faces, self.speaker, self.follow]
        return [s for s in found if s is not None]


def build_spatial(
    config: AgentConfig,
    bus: Bus,
    clock: MediaClock,
    *,
    head: PanTiltHead | None = None,
    follow_head: PanTiltHead | None = None,
    video_from_source: bool = False,
) -> Spatial:
    """The spatial stages that ``config`` asks for, subscribed to ``bus``. ``head`` replaces the
    simulated head (a real one behind the same interface); the follow behaviour points
    ``follow_head`` when given (the head through the actuator layer). With ``video_from_source``
    frames come from the agent's source (a call) instead of the configured camera."""
    spatial = Spatial(array=array_from_config(config.array))
    if spatial.array is not None:
        spatial.doa = SoundDirectionStage(bus, spatial.array, doa_settings(config))
    sees = config.faces.on_calls if video_from_source else config.camera.source is not None
    if sees:
        from avagent.perception.face_detection import FaceSettings
        from avagent.perception.faces import FaceStage
        from avagent.perception.speaker import ActiveSpeakerStage, SpeakerSettings

        f, camera = config.faces, config.camera
        if not video_from_source:
            spatial.video = video_source(camera, bus, clock)
        spatial.faces = FaceStage(
            bus,
            FaceSettings(
                **f.model_dump(exclude={"speaker_tolerance_deg", "on_calls"}),
                hfov_deg=camera.hfov_deg,
                yaw_deg=camera.yaw_deg,
            ),
        )
        spatial.speaker = ActiveSpeakerStage(
            bus, SpeakerSettings(tolerance_deg=f.speaker_tolerance_deg), has_array=spatial.array is not None
        )
    if config.head.enabled:
        h = config.head
        limits = HeadLimits(**h.model_dump(exclude={"enabled", "hysteresis_deg", "min_confidence"}))
        spatial.head = head if head is not None else SimulatedPanTiltHead(limits, clock.now)
        follow: Literal["active_speaker", "sound"] = "active_speaker" if spatial.speaker else "sound"
        spatial.follow = FollowSpeaker(
            bus,
            follow_head if follow_head is not None else spatial.head,
            FollowSettings(follow=follow, hysteresis_deg=h.hysteresis_deg, min_confidence=h.min_confidence),
        )
    return spatial


# --- one agent -----------------------------------------------------------------------------------


@dataclass
class AgentParts:
    """Everything one agent is made of, wired to its own bus and clock."""

    config: AgentConfig
    resources: Resources
    bus: Bus
    clock: MediaClock
    playback: Playback
    body: Body
    tools: ToolRegistry
    executor: ToolExecutor
    listener: Listener
    transcriber: Transcriber
    policy_runner: PolicyRunner
    speech_out: SpeechOut
    tracer: TurnTracer
    spatial: Spatial
    policy_notice: str | None = None
    """Why the offline policy runs although a model is configured (None when it does not)."""
    check_model: bool = True
    """Probe the configured model when the agent starts (not for a policy given by the caller)."""
    extra: list[Stage] = field(default_factory=list)
    robot: Robot | None = None
    """The actuators, the robot bus and which part of a split agent this is (agent/robot.py)."""
    absent: set[str] = field(default_factory=set)
    """Stages built but not run: they run in another part of a split agent."""

    @property
    def stages(self) -> list[Stage]:
        return [s for s in self.built_stages() if s.name not in self.absent]

    def built_stages(self) -> list[Stage]:
        """Every stage built, the absent ones included."""
        return [
            self.listener,
            self.transcriber,
            self.policy_runner,
            self.speech_out,
            self.tracer,
            *self.spatial.stages,
            *self.extra,
        ]


def build(
    config: AgentConfig,
    resources: Resources,
    *,
    tools: ToolRegistry | None = None,
    body: Body | None = None,
    policy: Policy | None = None,
    playback_rate: int | None = None,
    realtime: bool = True,
    video_from_source: bool = False,
    echo: EchoCanceller | None = None,
    chat_model: BaseChatModel | None = None,
) -> AgentParts:
    """The parts of one agent for ``config``, on models from ``resources``; ``chat_model``
    answers in place of the configured model (a replay's recorded answers)."""
    bus = Bus()
    clock = MediaClock(extrapolate=realtime)
    bus.media_time = clock.now
    robot = build_robot(config, bus, clock, realtime=realtime)
    body = body if body is not None else robot.body
    senses = SenseLink()
    tools = tools if tools is not None else robot.tools(default_tools(config, body, senses))
    playback = Playback(
        playback_rate or config.audio.output.sample_rate or DEFAULT_PLAYBACK_RATE, bus.publish_from_any_thread
    )
    speech_out = SpeechOut(bus, resources.synthesizer, playback, max_queued_s=config.tts.max_queued_s)
    executor = build_executor(config, tools, clock)
    notice = None
    if policy is None:
        policy, notice = choose_policy(config, resources.phrases, executor, chat_model)
    runner = PolicyRunner(bus, policy, executor, confirm_timeout_s=config.tools.confirm_timeout_s)
    listener = Listener(
        bus,
        vad_settings(config),
        turn_settings(config),
        # Thinking counts too: the user can cut in while the model is still generating.
        agent_speaking=lambda: speech_out.busy or runner.thinking,
        model=SileroJitVad() if config.vad.backend == "jit" else SileroVad(),
        echo=echo,
    )
    sees = video_from_source or config.camera.source is not None
    model = model_settings(config) if config.policy.model else None
    extra = wire_senses(config, bus, senses, policy, sees=sees, model=model)
    extra += urgent_spotters(config.hearing, bus, resources.recognizer, resources.phrases)
    parts = AgentParts(
        config=config,
        resources=resources,
        bus=bus,
        clock=clock,
        playback=playback,
        body=body,
        tools=tools,
        executor=executor,
        listener=listener,
        transcriber=Transcriber(bus, resources.recognizer),
        policy_runner=runner,
        speech_out=speech_out,
        tracer=TurnTracer(bus),
        spatial=build_spatial(
            config,
            bus,
            clock,
            head=robot.head,
            follow_head=robot.follow_head,
            video_from_source=video_from_source,
        ),
        policy_notice=notice,
        check_model=notice is None
        and chat_model is None
        and config.policy.model is not None
        and not is_local(config.policy.model),
        extra=extra,
        robot=robot,
    )
    robot.attach(parts)
    wire_recording(parts)
    return parts


async def connect(parts: AgentParts) -> McpToolbox | None:
    """What an agent needs before its first turn: its models, the MCP servers' tools, and a model
    that answers (if it does not, the offline command policy takes over and says so aloud once).
    Must be awaited in the task that runs the agent (MCP sessions are bound to it); the toolbox
    returned is stopped when the agent stops."""
    await parts.resources.start()
    config, bus, now = parts.config, parts.bus, parts.clock.now
    mcp = None
    if config.tools.mcp_servers:
        from avagent.tools.mcp import McpServer, McpToolbox  # LangChain and MCP load only when used

        mcp = McpToolbox({name: McpServer(**s.model_dump()) for name, s in config.tools.mcp_servers.items()})
        for t in await mcp.start():
            if t.name in parts.tools:
                log.warning("MCP tool %s has the name of a tool already registered: left out", t.name)
                continue
            parts.tools.register(t)
        for name, why in mcp.failures.items():
            bus.publish_nowait(Error(t=now(), stage="mcp", message=f"{name}: {why}"))
    if parts.check_model:
        parts.check_model = False
        parts.policy_notice = await check_model(parts.policy_runner.policy, config)
        if parts.policy_notice is not None:
            runner = parts.policy_runner
            runner.policy = command_policy(config, parts.resources.phrases, runner.executor)
    if parts.policy_notice is not None:
        log.warning("%s; using the offline command policy", parts.policy_notice)
        bus.publish_nowait(Error(t=now(), stage="policy", message=parts.policy_notice))
        bus.publish_nowait(Say(t=now(), text=config.policy.fallback_notice))
    return mcp
