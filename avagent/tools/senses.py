"""The sense tools: ``describe_scene`` and ``listen``, the agent's eyes and ears on demand.

A model may call them with any question; offline, their spoken phrases ("what do you see", "who
is speaking", "what was that sound"...) are part of the recogniser's grammar, so the agent answers
them with no model at all. Tools are made before the agent's senses are wired (the recogniser's
grammar is made from them once per process), so they reach the senses through a ``SenseLink``
that the assembly connects.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from pydantic import Field

from avagent.tools.registry import Tool, tool

SCENE_QUESTIONS = ["what do you see", "who is there", "who is speaking", "what is happening"]
SOUND_QUESTIONS = ["what do you hear", "what was that sound"]
DESCRIBE_TIMEOUT_S = 30.0
"""A description by a model may take longer than an ordinary tool (its own limit is
``avllm.timeout_s``)."""


class Senses(Protocol):
    """What the agent's senses can answer."""

    async def describe_scene(self, question: str) -> str: ...

    async def listen(self, question: str) -> str: ...


class SenseLink:
    """Where the sense tools find the agent's senses, once the assembly has wired them."""

    def __init__(self) -> None:
        self.senses: Senses | None = None

    def connect(self, senses: Senses) -> None:
        self.senses = senses


NOT_WIRED = "My senses are not connected, so I cannot tell."


def sense_tools(link: SenseLink, timeout_s: float = DESCRIBE_TIMEOUT_S) -> list[Tool]:
    """``describe_scene`` and ``listen``, answering through ``link``."""

    @tool(phrases=["{question}"], timeout_s=timeout_s)
    async def describe_scene(
        question: Annotated[
            str,
            Field(description="What to look for, in the user's words.", examples=SCENE_QUESTIONS),
        ] = "what do you see",
    ) -> str:
        """Look through the camera and say what is there: who is in view and where, who is
        speaking, how the scene looks. Use it for questions about what can be seen."""
        senses = link.senses
        return await senses.describe_scene(question) if senses is not None else NOT_WIRED

    @tool(phrases=["{question}"], timeout_s=timeout_s)
    async def listen(
        question: Annotated[
            str,
            Field(description="What to listen for, in the user's words.", examples=SOUND_QUESTIONS),
        ] = "what do you hear",
    ) -> str:
        """Say what was heard lately: voices and where they came from, and sounds that were not
        speech. Use it for questions about sounds."""
        senses = link.senses
        return await senses.listen(question) if senses is not None else NOT_WIRED

    return [describe_scene, listen]
