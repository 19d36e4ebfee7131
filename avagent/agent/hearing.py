"""Wiring the ``hearing`` section: the offline commands scored by whisper, the safety-word spotter,
and the wake word."""

from __future__ import annotations

from avagent.agent.hearing_config import HearingConfig
from avagent.agent.whisper_config import WhisperConfig
from avagent.agent.whisper_wiring import whisper_recognizer
from avagent.core.bus import Bus
from avagent.core.errors import ConfigError
from avagent.core.stage import Stage
from avagent.perception.asr.base import Recognizer
from avagent.perception.asr.checked import CheckedRecognizer
from avagent.perception.spotting import UrgentSpotter
from avagent.policy.wake import WakeWord
from avagent.tools.phrases import CommandPhrases
from avagent.tools.written import written_commands


def checked_recognizer(
    hearing: HearingConfig, whisper: WhisperConfig, grammar: Recognizer, phrases: CommandPhrases
) -> Recognizer:
    """``grammar`` (the recogniser that decodes with the phrases' grammar) as it is, or, when
    ``hearing.check_commands`` asks for it, whisper (settings from ``asr.whisper``) scoring the
    phrases, with ``grammar`` kept for the safety-word spotter."""
    if hearing.check_commands is None:
        return grammar
    from avagent.perception.asr.whisper import prompt_for

    try:
        written = written_commands(phrases)
    except ValueError as exc:
        raise ConfigError(f"hearing.check_commands: {exc}") from None
    scorer = whisper_recognizer(
        whisper,
        prompt=prompt_for(phrases.examples()),
        commands=written,
        needed_by="hearing.check_commands",
    )
    return CheckedRecognizer(
        grammar,
        scorer,
        phrases.spoken,
        accept_margin=hearing.accept_margin,
        agreed_margin=hearing.agreed_margin,
        halt_margin=hearing.halt_margin,
        urgent=phrases.urgent,
        numbers_differ=phrases.numbers_differ,
    )


def urgent_spotters(
    hearing: HearingConfig, bus: Bus, recognizer: Recognizer, phrases: CommandPhrases
) -> list[Stage]:
    """The safety-word spotter, when ``hearing.spot_urgent`` asks for it and the recogniser decodes
    with the phrases' grammar (alone, or checked: then its grammar part, the fast one)."""
    grammar = recognizer.grammar if isinstance(recognizer, CheckedRecognizer) else recognizer
    if not hearing.spot_urgent or not phrases.urgent or getattr(grammar, "grammar", None) is None:
        return []
    # With a wake word the grammar may hear "robot stop": a safety word all the same.
    urgent = (*phrases.urgent, *(f"{phrases.name} {u}" for u in phrases.urgent if phrases.name))
    return [UrgentSpotter(bus, grammar, urgent, min_confidence=hearing.spot_confidence)]


def wake_word(hearing: HearingConfig, phrases: CommandPhrases) -> WakeWord | None:
    """The wake word a policy listens for (``hearing.wake_word``), or None when every turn counts;
    the tools' urgent phrases need no name."""
    if hearing.wake_word is None:
        return None
    return WakeWord(hearing.wake_word, urgent=phrases.urgent, window_s=hearing.wake_window_s)
