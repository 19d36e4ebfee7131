"""The offline command policy: a recognised phrase becomes a tool call and a short spoken answer."""

from __future__ import annotations

from collections.abc import Callable

from avagent.core.events import Event, SpeakingEnded, Transcript
from avagent.policy.base import Actions
from avagent.policy.wake import WakeWord
from avagent.tools.phrases import CommandPhrases


class CommandPolicy:
    """Maps phrases of the tools' templates to tool calls; anything else, or anything the
    recogniser is unsure of, gets a spoken "sorry" (an unsure match for a tool that asks first
    is called, and so asked about)."""

    name = "commands"
    observes: tuple[type[Event], ...] = (SpeakingEnded,)

    def __init__(
        self,
        phrases: CommandPhrases,
        *,
        sorry: str = "Sorry, I did not understand.",
        min_confidence: float = 0.75,
        exact: bool = False,
        wake: WakeWord | None = None,
        asks: Callable[[str], bool] | None = None,
    ) -> None:
        """``exact``: the recogniser decodes with the phrases' grammar, so only whole phrases count.
        ``wake``: act only on turns that call the agent by name (``hearing.wake_word``). ``asks``:
        whether a tool asks the user before it runs (permission ``confirm``): a match below
        ``min_confidence`` for such a tool is called all the same, so the user is asked, where
        any other unsure match is answered with ``sorry``."""
        self.phrases = phrases
        self.wake = wake
        self.exact = exact
        self.sorry = sorry
        self.min_confidence = min_confidence
        self._asks = asks or (lambda _tool: False)

    def observe(self, event: Event) -> None:
        if self.wake is not None and isinstance(event, SpeakingEnded):
            self.wake.answer_ended(event.t)

    async def respond(self, transcript: Transcript, actions: Actions) -> None:
        text = transcript.text if self.wake is None else self.wake.accepts(transcript.text, transcript.t)
        if text is None:
            return  # not addressed to the agent
        unsure = transcript.confidence is not None and transcript.confidence < self.min_confidence
        match = self.phrases.match(text, exact=self.exact)
        if match is None or (unsure and not self._asks(match.tool)):
            await actions.say(self.sorry)
            return
        outcome = await actions.call_tool(match.tool, match.args)
        if outcome.ok:
            await actions.say(outcome.result or "Done.")
        else:
            await actions.say("Sorry, I could not do that.")


def acted_on(
    phrases: CommandPhrases, text: str, confidence: float | None, min_confidence: float
) -> str | None:
    """The whole phrase the command policy (decoding with the phrases' grammar) carries out for a
    recognition (``text``, ``confidence``) without asking, or None: for benchmarks and demos that
    judge a recogniser."""
    if confidence is not None and confidence < min_confidence:
        return None
    return text if phrases.match(text, exact=True) is not None else None
