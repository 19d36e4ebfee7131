"""Streamed text cut into sentences as soon as each is complete, so speaking starts at the first.

A sentence ends at ``.``, ``!``, ``?``, ``;`` or ``:`` followed by white space (so "3.5" and
"e.g." inside a word stay whole), or at a line break. A long run without such an end is cut at
the last comma (or else space) before ``max_chars``, so a model that never stops a sentence is still heard.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?;:][\"')\]]*\s+|\n+")
_PAUSE = re.compile(r"[,\u2014]\s+")
_SPACE = re.compile(r"\s+")


class SentenceSplitter:
    """Feed text as it streams in; take complete sentences out."""

    def __init__(self, max_chars: int = 220) -> None:
        self.max_chars = max_chars
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        """The sentences completed by ``text``."""
        self._buffer += text
        out: list[str] = []
        while True:
            m = _END.search(self._buffer)
            if m is None:
                break
            sentence = self._buffer[: m.end()].strip()
            self._buffer = self._buffer[m.end() :]
            if sentence:
                out.append(sentence)
        if len(self._buffer) > self.max_chars:
            cut = None
            for pause in _PAUSE.finditer(self._buffer, 0, self.max_chars):
                cut = pause
            if cut is None:
                for space in _SPACE.finditer(self._buffer, 0, self.max_chars):
                    cut = space
            if cut is not None:
                piece = self._buffer[: cut.end()].strip()
                self._buffer = self._buffer[cut.end() :]
                if piece:
                    out.append(piece)
        return out

    def flush(self) -> list[str]:
        """Whatever is left at the end of the stream."""
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    @property
    def pending(self) -> str:
        return self._buffer
