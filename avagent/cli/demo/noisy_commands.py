"""Part of the demo's hearing act: commands in loud noise and odd voices, and speech that is none.

Each utterance is heard twice: by the grammar recogniser alone (pocketsphinx, the default) and by
whisper scoring the commands (``hearing.check_commands: whisper``): British and female voices in
babble and white noise at 10 dB, where the grammar alone loses most commands, and a half-command
that the grammar takes for "stop moving" and that must move nothing, and a Scottish "stop" in
white noise at 5 dB that neither hears, which must still halt the robot (``hearing.halt_margin``).
Not every command is heard there (bench/hearing.py measures the whole matrix): the part passes
when scoring hears more of the commands than the grammar alone, acts on none wrongly, moves nothing
on the half-command, and every "stop" either stops or halts.
"""

from __future__ import annotations

import sys

from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.perception.asr.checked import CheckedRecognizer
from avagent.policy.commands import acted_on
from avagent.sim import command_matrix as matrix

SAID = (
    matrix.Spec("stop", "en-gb", 150, "babble", 10.0),
    matrix.Spec("turn right", "en-gb-x-rp", 170, "white", 10.0),
    matrix.Spec("what time is it", "en-us+f3", 130, "babble", 10.0),
    matrix.Spec("stop and think", "en-us", 150, "music", 15.0),
    matrix.Spec("stop", "en-gb-scotland", 150, "white", 5.0),
)
"""What is said; the fourth is no command."""


async def noisy_commands() -> bool | None:
    """Run this part; True when every check passed, None without the whisper extra."""
    from avagent.perception.asr.whisper_model import whisper_installed

    if not whisper_installed():
        print("  commands in noise: skipped (the whisper extra is not installed)", file=sys.stderr)
        return None
    config = AgentConfig.model_validate({"hearing": {"check_commands": "whisper"}})
    resources = Resources(config)
    phrases = resources.phrases
    await resources.start()
    heard = by_grammar = wrong = unheeded = 0
    try:
        recognizer = resources.recognizer
        assert isinstance(recognizer, CheckedRecognizer)
        print("  commands in noise, heard by the grammar alone and scored by whisper:", file=sys.stderr)
        for spec, u in zip(SAID, matrix.synthesize(SAID, seed=11), strict=True):
            alone = await recognizer.grammar.transcribe(u.audio, 16000)
            scored = await recognizer.transcribe(u.audio, 16000)
            acted = acted_on(phrases, scored.text, scored.confidence, config.policy.min_confidence)
            grammar = acted_on(phrases, alone.text, alone.confidence, config.policy.min_confidence)
            command = phrases.match(spec.text, exact=True) is not None
            if command:
                heard += acted == spec.text
                by_grammar += grammar == spec.text
            # A command lost is answered with "sorry"; acting on the wrong one, or on no command, is worse.
            mistaken = acted is not None and acted != spec.text
            wrong += mistaken
            # A "stop" not taken must still halt: a lost "stop" is the one mistake a robot must not make.
            halted = scored.halt is not None
            unheeded += spec.text in phrases.urgent and acted != spec.text and not halted
            note = "  <- wrong" if mistaken else ("  <- missed" if command and acted is None else "")
            if halted:
                note += f' (halts: may have heard "{scored.halt}")'
            print(
                f'    "{spec.text}" ({spec.voice}, {spec.noise} at {spec.snr_db:g} dB): grammar alone '
                f"{_shown(grammar)}; scored by whisper {_shown(acted)}{note}",
                file=sys.stderr,
            )
    finally:
        await resources.stop()
    ok = heard > by_grammar and wrong == 0 and unheeded == 0
    mark = "ok " if ok else "BAD"
    commands = sum(phrases.match(s.text, exact=True) is not None for s in SAID)
    print(
        f"  [{mark}] commands in noise: scored by whisper {heard} of {commands} heard, the grammar alone "
        f'{by_grammar}; {wrong} acted on wrongly; {unheeded} "stop" neither stopped nor halted',
        file=sys.stderr,
    )
    return ok


def _shown(acted: str | None) -> str:
    return f'acts on "{acted}"' if acted is not None else "acts on nothing"
