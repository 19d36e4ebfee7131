"""What every agent of a process shares, loaded once: the speech recogniser and synthesiser the
configuration names, and the spoken phrases of the tools (the offline recogniser's grammar).

In ``avagent serve`` every call's agent uses the same ``Resources``; a lone agent makes its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Literal

from avagent.agent.avllm import offered_sense_tools
from avagent.agent.config import AgentConfig
from avagent.agent.hearing import checked_recognizer
from avagent.agent.whisper_wiring import whisper_recognizer
from avagent.core.errors import ConfigError
from avagent.io.actuators import Body, SimulatedBody
from avagent.io.tts.base import Synthesizer
from avagent.perception.asr.base import Recognizer
from avagent.perception.asr.whisper_model import whisper_installed
from avagent.tools.builtin import builtin_tools
from avagent.tools.confirm import CONFIRM_PHRASES
from avagent.tools.phrases import CommandPhrases
from avagent.tools.registry import Tool, ToolRegistry
from avagent.tools.senses import SenseLink

log = logging.getLogger("avagent")


def default_tools(config: AgentConfig, body: Body, senses: SenseLink | None = None) -> ToolRegistry:
    """The built-in tools the config names, acting on ``body``, and the sense tools when the
    config offers them, answering through ``senses``."""
    chosen = set(config.tools.builtin)
    return ToolRegistry(
        [*(t for t in builtin_tools(body) if t.name in chosen), *offered_sense_tools(config, senses)]
    )


def needs_confirmation(config: AgentConfig, tools: Iterable[Tool]) -> bool:
    """Whether any tool may have to be confirmed aloud (then the offline recogniser must know yes/no)."""
    t = config.tools
    return (
        "confirm" in t.permissions.values()
        or any(s.permission == "confirm" for s in t.mcp_servers.values())
        or any(tool.permission == "confirm" and tool.name not in t.permissions for tool in tools)
    )


def asr_backend(config: AgentConfig) -> Literal["pocketsphinx", "whisper", "openai"]:
    """The recogniser that runs: the configured one, else pocketsphinx for the offline commands and
    the packaged whisper (when installed) for a language model, which needs free speech."""
    if config.asr.backend is not None:
        return config.asr.backend
    if config.policy.model and whisper_installed():
        return "whisper"
    return "pocketsphinx"


def build_recognizer(config: AgentConfig, grammar: str | None) -> Recognizer:
    """The configured recogniser; pocketsphinx decodes with ``grammar`` (JSGF) when given one."""
    asr = config.asr
    backend = asr_backend(config)
    if asr.backend is None and config.policy.model and backend == "pocketsphinx":
        log.warning("the language model hears only commands: install the whisper extra (scripts/setup.sh)")
    if backend == "pocketsphinx":
        from avagent.perception.asr.pocketsphinx import PocketsphinxRecognizer

        return PocketsphinxRecognizer(grammar, processes=2)
    if backend == "whisper":
        return whisper_recognizer(asr.whisper)
    from avagent.perception.asr.openai import OpenAIRecognizer

    o = asr.openai
    return OpenAIRecognizer(
        _server(o.base_url, config, "asr.openai.base_url"),
        model=o.model,
        language=o.language,
        api_key_env=config.api_key_env,
        timeout_s=o.timeout_s,
    )


def build_synthesizer(config: AgentConfig) -> Synthesizer:
    tts = config.tts
    if tts.backend == "espeak":
        from avagent.io.tts.espeak import EspeakSynthesizer

        return EspeakSynthesizer(tts.voice, tts.rate_wpm)
    if tts.backend == "piper":
        from avagent.io.tts.piper import PiperSynthesizer

        if not tts.piper.model:
            raise ConfigError("tts.piper.model: the piper backend needs the path of a voice file")
        return PiperSynthesizer(tts.piper.model)
    from avagent.io.tts.openai import OpenAISynthesizer

    o = tts.openai
    return OpenAISynthesizer(
        _server(o.base_url, config, "tts.openai.base_url"),
        model=o.model,
        voice=o.voice,
        api_key_env=config.api_key_env,
        timeout_s=o.timeout_s,
    )


def _server(section_url: str | None, config: AgentConfig, what: str) -> str:
    url = section_url or config.base_url
    if not url:
        raise ConfigError(f"{what}: the openai backend needs a server: give --base-url URL or set base_url")
    return url


class Resources:
    """What is loaded once and shared by every agent in the process: the recogniser, the
    synthesiser, and the command phrases of the tools (the offline recogniser's grammar).

    Building checks the configuration; ``start`` loads models and starts worker processes, ``stop``
    ends them. Both are safe to call twice, and from several agents at once."""

    def __init__(
        self,
        config: AgentConfig,
        tools: ToolRegistry | None = None,
        *,
        recognizer: Recognizer | None = None,
        synthesizer: Synthesizer | None = None,
    ) -> None:
        """``tools``: whose phrases the offline recogniser listens for (the built-in ones by default).
        ``recognizer``, ``synthesizer``: your own, in place of the configured backends."""
        self.config = config
        template_tools = tools if tools is not None else default_tools(config, SimulatedBody())
        extra = CONFIRM_PHRASES if needs_confirmation(config, template_tools) else ()
        self.phrases = CommandPhrases(template_tools, extra_phrases=extra, name=config.hearing.wake_word)
        if recognizer is None:
            grammar = self.phrases.jsgf() if asr_backend(config) == "pocketsphinx" else None
            recognizer = build_recognizer(config, grammar)
            if grammar is not None:
                recognizer = checked_recognizer(config.hearing, config.asr.whisper, recognizer, self.phrases)
        self.recognizer: Recognizer = recognizer
        self.synthesizer: Synthesizer = synthesizer if synthesizer is not None else build_synthesizer(config)

    async def start(self) -> None:
        # Each part's start is idempotent and safe to run from several agents at once.
        await self.recognizer.start()
        await self.synthesizer.start()

    async def stop(self) -> None:
        await self.recognizer.stop()
        await self.synthesizer.stop()
