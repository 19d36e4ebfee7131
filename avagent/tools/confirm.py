"""Spoken confirmation of a tool call: the question the agent asks, and reading the user's answer.

Only a clear "yes" confirms; anything else (a "no", other words, silence) cancels the call.
"""

from __future__ import annotations

from typing import Any

from avagent.tools.phrases import normalise

YES = ("yes", "yes please", "yes do it", "do it", "go ahead", "sure", "okay", "ok")
CONFIRM_PHRASES = ("yes", "no", "yes please", "no thanks", "go ahead", "cancel")
"""What the offline recogniser's grammar must accept for spoken confirmations."""


def is_yes(text: str) -> bool:
    """True only when ``text`` is an unambiguous yes (and no "no" in it)."""
    said = normalise(text)
    if not said:
        return False
    words = said.split()
    if any(w in ("no", "not", "don't", "cancel", "stop") for w in words):
        return False
    return said in YES or words[0] in ("yes", "yeah", "yep", "sure", "okay", "ok")


def question(name: str, args: dict[str, Any]) -> str:
    """The question asked before running ``name`` with ``args``."""
    what = name.replace("_", " ")
    if args:
        detail = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in args.items())
        what = f"{what} with {detail}"
    return f"Shall I {what}? Please say yes or no."
