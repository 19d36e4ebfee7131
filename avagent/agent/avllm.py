"""Wiring audio-visual understanding into an agent (docs/avllm.md): the frame sampler and the sound
log, the senses they make up, the media and voice of a multimodal policy model, and the scene
describer behind ``describe_scene`` and ``listen``.

The builder calls ``wire_senses`` once it has made an agent's parts; this module reads the
``avllm`` section and ``policy.model_input`` / ``model_output`` and hands each part its settings.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from avagent.agent.config import AgentConfig
from avagent.core.bus import Bus
from avagent.core.errors import ConfigError
from avagent.core.stage import Stage
from avagent.policy.base import Policy
from avagent.tools.registry import Tool
from avagent.tools.senses import DESCRIBE_TIMEOUT_S, SenseLink, sense_tools

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from avagent.perception.avllm.local_chat import LocalChatModel
    from avagent.policy.llm import LLMPolicy
    from avagent.policy.models import ModelSettings
    from avagent.policy.omni import ModelVoice
    from avagent.policy.scene import Lifecycle

log = logging.getLogger("avagent")

OPENAI_URL = "https://api.openai.com/v1"
LOCAL_PREFIX = "transformers:"
"""``policy.model: transformers:/models/qwen2.5-omni``: the policy runs on a local model."""


def senses_offered(config: AgentConfig) -> bool:
    """Whether ``describe_scene`` and ``listen`` are among the agent's tools."""
    if config.avllm.tools is not None:
        return config.avllm.tools
    media = {"image", "audio"} & set(config.policy.model_input)
    return bool(
        config.camera.source is not None or config.faces.on_calls or config.avllm.model is not None or media
    )


def offered_sense_tools(config: AgentConfig, link: SenseLink | None = None) -> list[Tool]:
    """The sense tools the config offers, answering through ``link`` (a fresh, unconnected one
    when None: the tools' phrases for the offline grammar)."""
    if not senses_offered(config):
        return []
    return sense_tools(link or SenseLink(), timeout_s=max(DESCRIBE_TIMEOUT_S, config.avllm.timeout_s + 5.0))


def is_local(model: str | None) -> bool:
    return bool(model) and str(model).startswith(LOCAL_PREFIX)


def chat_model_for(config: AgentConfig, settings: ModelSettings) -> BaseChatModel:
    """The policy's chat model: a local transformers model for ``transformers:PATH``, else the
    one ``settings`` names (``policy.models.build_chat_model``)."""
    if is_local(settings.model):
        return local_model(settings.model.removeprefix(LOCAL_PREFIX), config, "policy.model")
    from avagent.policy.models import build_chat_model

    return build_chat_model(settings)


def local_model(path: str, config: AgentConfig, setting: str) -> LocalChatModel:
    """A local model folder, checked (not loaded: that happens when the agent starts)."""
    folder = Path(path).expanduser()
    if not (folder / "config.json").is_file():
        raise ConfigError(f"{setting}: {folder} is not a model folder (it has no config.json)")
    try:
        from avagent.perception.avllm.local_chat import LocalChatModel, LocalModelSettings
    except ImportError as exc:
        raise ConfigError(f"{setting}: a local model needs pip install 'avagent[local]' ({exc})") from None
    a = config.avllm
    return LocalChatModel.for_settings(
        LocalModelSettings(path=str(folder), device=a.device, max_new_tokens=a.max_new_tokens)
    )


def _scene_model(config: AgentConfig, policy_model: object) -> tuple[BaseChatModel | None, Lifecycle | None]:
    a = config.avllm
    if a.model is None:
        return None, None
    if a.backend == "transformers":
        from avagent.perception.avllm.local_chat import LocalChatModel

        if isinstance(policy_model, LocalChatModel) and policy_model.settings.path == str(
            Path(a.model).expanduser()
        ):
            return policy_model, policy_model  # one model in memory serves both
        model = local_model(a.model, config, "avllm.model")
        return model, model
    from avagent.policy.models import ModelSettings, ModelUnavailable, build_chat_model

    settings = ModelSettings(
        model=a.model,
        base_url=a.base_url,
        shared_base_url=config.base_url,
        api_key_env=a.api_key_env,
        shared_api_key_env=config.api_key_env,
        max_retries=0,
    )
    try:
        return build_chat_model(settings), None
    except ModelUnavailable as exc:
        raise ConfigError(f"avllm.model: {exc}") from None


def _voice(config: AgentConfig, settings: ModelSettings | None) -> ModelVoice:
    from avagent.policy.models import split_model
    from avagent.policy.omni import ModelVoice, VoiceSettings

    server = settings.server if settings is not None else None
    if server is None and settings is not None and split_model(settings.model)[0] == "openai":
        server = OPENAI_URL
    if settings is None or server is None or is_local(settings.model):
        raise ConfigError(
            "policy.model_output: audio answers need a model on an OpenAI-compatible server (base_url)"
        )
    return ModelVoice(
        VoiceSettings(
            model=split_model(settings.model)[1],
            base_url=server,
            api_key_env=config.policy.api_key_env or config.api_key_env,
            voice=config.avllm.voice,
        )
    )


def wire_senses(
    config: AgentConfig,
    bus: Bus,
    link: SenseLink,
    policy: Policy,
    *,
    sees: bool,
    model: ModelSettings | None = None,
) -> list[Stage]:
    """The stages of audio-visual understanding for one agent, wired to its policy (whose model
    ``model`` names) and its sense tools (``link``); nothing when the config asks for none of it.
    ``sees``: video frames reach the agent's bus (a camera, a call)."""
    # Loaded only for an agent that uses them: OpenCV, LangChain.
    from avagent.perception.avllm.frames import FrameSampler, FrameSettings
    from avagent.perception.avllm.senses import AgentSenses
    from avagent.perception.avllm.sounds import SoundLog, SoundSettings
    from avagent.policy.inputs import ModelInputs, RequestLimits

    a = config.avllm
    llm = _llm_policy(policy)
    media = {"image", "audio"} & set(config.policy.model_input) if llm is not None else set()
    voice = llm is not None and "audio" in config.policy.model_output
    tools = senses_offered(config)
    if not (media or voice or tools):
        return []
    frames = (
        FrameSampler(bus, FrameSettings(**a.frames.model_dump()))
        if sees and (tools or "image" in media)
        else None
    )
    sounds = SoundLog(bus, SoundSettings(**a.sounds.model_dump())) if tools or media else None
    senses = AgentSenses(frames, sounds, bus.media_time, front_deg=config.camera.yaw_deg)
    limits = RequestLimits(**a.requests.model_dump())
    stages: list[Stage] = [s for s in (frames, sounds) if s is not None]
    if llm is not None:
        if media:
            llm.inputs = ModelInputs(config.policy.model_input, senses, limits)
        if voice:
            llm.voice = _voice(config, model)
    if tools:
        from avagent.policy.scene import SceneDescriber, SceneSettings

        scene_model, lifecycle = _scene_model(config, llm.model if llm is not None else None)
        describer = SceneDescriber(
            bus,
            senses,
            scene_model,
            SceneSettings(
                model_input=a.model_input, timeout_s=a.timeout_s, max_words=a.max_words, listen_s=a.listen_s
            ),
            limits,
            lifecycle=lifecycle,
            label=a.model or "",
        )
        link.connect(describer)
        stages.append(describer)
    if "image" in media and frames is None:
        log.warning("policy.model_input has image, but the agent has no camera: no frames will be sent")
    return stages


def _llm_policy(policy: Policy) -> LLMPolicy | None:
    if getattr(policy, "name", None) != "llm":
        return None  # LangChain loads only with a model policy
    from avagent.policy.llm import LLMPolicy

    return policy if isinstance(policy, LLMPolicy) else None
