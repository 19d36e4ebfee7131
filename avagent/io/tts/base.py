"""What every speech synthesiser offers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol, TypeVar

import numpy as np

R = TypeVar("R")


class SynthesisError(RuntimeError):
    """A synthesiser could not start or could not speak a text."""


class Synthesizer(Protocol):
    """Text in, mono float32 speech at ``sample_rate`` out. ``start`` and ``stop`` are safe to call
    twice; a synthesiser that holds nothing does nothing in them."""

    name: str
    sample_rate: int

    async def start(self) -> None:
        """Load what it needs; safe to call twice."""

    async def synthesize(self, text: str) -> np.ndarray: ...

    async def stop(self) -> None:
        """Let go of what it holds (connections); safe to call twice."""


async def run_in_worker(fn: Callable[..., R], *args: object) -> R:
    """Run a blocking synthesis call on a worker thread, never on the event loop."""
    return await asyncio.to_thread(fn, *args)
