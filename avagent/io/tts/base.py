"""What every speech synthesiser offers, and how text is cut into sentences for speaking."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Protocol, TypeVar

import numpy as np

R = TypeVar("R")


class SynthesisError(RuntimeError):
    """A synthesiser could not start or could not speak a text."""


class Synthesizer(Protocol):
    """Text in, mono float32 speech at ``sample_rate`` out."""

    name: str
    sample_rate: int

    async def synthesize(self, text: str) -> np.ndarray: ...


async def run_in_worker(fn: Callable[..., R], *args: object) -> R:
    """Run a blocking synthesis call on a worker thread, never on the event loop."""
    return await asyncio.to_thread(fn, *args)


_SENTENCE_END = re.compile(r"[.!?;:][\"'”’)\]]*(?=\s)|\n")


def split_sentences(text: str) -> list[str]:
    """Cut ``text`` after sentence-ending punctuation (and closing quotes), so that speaking can
    start at the first sentence; "3.5" is not an end, nor is a full stop without a space after."""
    sentences = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        sentences.append(text[start : m.end()])
        start = m.end()
    sentences.append(text[start:])
    return [s.strip() for s in sentences if s.strip()]
