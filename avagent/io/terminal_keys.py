"""Single keys from the terminal the agent runs in: an emergency stop within reach of the hand.

Only when standard input is a terminal and the process is in its foreground: then the terminal is
put in cbreak mode (each key arrives as it is pressed; Ctrl-C still interrupts) and restored when
the stage ends. Otherwise (a pipe, a file, a test, a service) the stage does nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

OnKey = Callable[[str], Awaitable[None]]


def interactive(stream: TextIO) -> bool:
    """``stream`` is a terminal this process reads in the foreground."""
    try:
        fd = stream.fileno()
        return os.isatty(fd) and os.getpgrp() == os.tcgetpgrp(fd)
    except (OSError, ValueError, AttributeError):
        return False


class TerminalKeys:
    """Hands each key pressed to ``on_key``."""

    name = "keys"
    consumes: tuple[type, ...] = ()
    produces: tuple[type, ...] = ()

    def __init__(self, on_key: OnKey, stream: TextIO | None = None) -> None:
        self.on_key = on_key
        self.stream = stream if stream is not None else sys.stdin

    async def run(self) -> None:
        if not interactive(self.stream):
            return
        import termios
        import tty

        fd = self.stream.fileno()
        saved = termios.tcgetattr(fd)
        keys: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)
        loop = asyncio.get_running_loop()

        def readable() -> None:
            with contextlib.suppress(OSError, asyncio.QueueFull):
                keys.put_nowait(os.read(fd, 32))

        tty.setcbreak(fd)
        loop.add_reader(fd, readable)
        try:
            while True:
                data = await keys.get()
                if not data:
                    return  # the terminal went away
                for key in data.decode(errors="ignore"):
                    await self.on_key(key)
        finally:
            loop.remove_reader(fd)
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
