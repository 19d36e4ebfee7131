"""Builds the configured speech recogniser and synthesiser (loaded once, shared by sessions)."""

from __future__ import annotations

from avagent.agent.config import AgentConfig
from avagent.agent.errors import ConfigError
from avagent.io.tts.base import Synthesizer
from avagent.perception.asr.base import Recognizer


def _base_url(section_url: str | None, config: AgentConfig, what: str) -> str:
    url = section_url or config.base_url
    if not url:
        raise ConfigError(f"{what}: the openai backend needs a server: give --base-url URL or set base_url")
    return url


def build_recognizer(config: AgentConfig, grammar: str | None) -> Recognizer:
    """The configured recogniser; pocketsphinx decodes with ``grammar`` (JSGF) when given one."""
    asr = config.asr
    if asr.backend == "pocketsphinx":
        from avagent.perception.asr.pocketsphinx import PocketsphinxRecognizer

        return PocketsphinxRecognizer(grammar, processes=2)
    if asr.backend == "whisper":
        from avagent.perception.asr.whisper import WhisperRecognizer

        w = asr.whisper
        return WhisperRecognizer(
            w.model, device=w.device, compute_type=w.compute_type, language=w.language, beam_size=w.beam_size
        )
    from avagent.perception.asr.openai import OpenAIRecognizer

    o = asr.openai
    return OpenAIRecognizer(
        _base_url(o.base_url, config, "asr.openai.base_url"),
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
        _base_url(o.base_url, config, "tts.openai.base_url"),
        model=o.model,
        voice=o.voice,
        api_key_env=config.api_key_env,
        timeout_s=o.timeout_s,
    )
