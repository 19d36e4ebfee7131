"""The offline command policy: a recognised phrase becomes a tool call and a short spoken answer."""

from __future__ import annotations

from avagent.core.events import Transcript
from avagent.policy.base import Actions
from avagent.tools.phrases import CommandPhrases


class CommandPolicy:
    """Maps phrases of the tools' templates to tool calls; anything else, or anything the
    recogniser is unsure of, gets a spoken "sorry"."""

    name = "commands"

    def __init__(
        self,
        phrases: CommandPhrases,
        *,
        sorry: str = "Sorry, I did not understand.",
        min_confidence: float = 0.75,
        exact: bool = False,
    ) -> None:
        """``exact``: the recogniser decodes with the phrases' grammar, so only whole phrases count."""
        self.phrases = phrases
        self.exact = exact
        self.sorry = sorry
        self.min_confidence = min_confidence

    async def respond(self, transcript: Transcript, actions: Actions) -> None:
        unsure = transcript.confidence is not None and transcript.confidence < self.min_confidence
        match = None if unsure else self.phrases.match(transcript.text, exact=self.exact)
        if match is None:
            await actions.say(self.sorry)
            return
        outcome = await actions.call_tool(match.tool, match.args)
        if outcome.ok:
            await actions.say(outcome.result or "Done.")
        else:
            await actions.say("Sorry, I could not do that.")
