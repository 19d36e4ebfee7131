"""Wiring the ``hearing`` section: the offline command recogniser checked by free speech, the
safety-word spotter, and the wake word."""

from __future__ import annotations

from avagent.agent.hearing_config import HearingConfig
from avagent.agent.whisper_config import WhisperConfig
from avagent.agent.whisper_wiring import whisper_recognizer
from avagent.core.bus import Bus
from avagent.core.stage import Stage
from avagent.perception.asr.base import Recognizer
from avagent.perception.asr.checked import CheckedRecognizer
from avagent.perception.spotting import UrgentSpotter
from avagent.policy.wake import WakeWord
from avagent.tools.phrases import CommandPhrases


def checked_recognizer(
    hearing: HearingConfig, whisper: WhisperConfig, grammar: Recognizer, phrases: CommandPhrases
) -> Recognizer:
    """``grammar`` (the recogniser that decodes with the phrases' grammar) as it is, or checked by
    whisper (settings from ``asr.whisper``) when ``hearing.check_commands`` asks for it."""
    if hearing.check_commands is None:
        return grammar
    from avagent.perception.asr.whisper import prompt_for

    free = whisper_recognizer(
        whisper, prompt=prompt_for(phrases.examples()), needed_by="hearing.check_commands"
    )
    return CheckedRecognizer(
        grammar,
        free,
        phrases.spoken,
        alone=hearing.free_alone,
        grammar_alone=hearing.grammar_alone,
        min_similarity=hearing.min_similarity,
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
