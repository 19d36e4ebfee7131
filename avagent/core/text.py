"""Text helpers every part shares: cutting text into sentences for speaking, and one-line messages.

A sentence ends at ``.``, ``!``, ``?``, ``;`` or ``:`` (with any closing quotes or brackets)
followed by white space, so "3.5" and "e.g." inside a word stay whole, or at a line break. Text
that streams in (a model's answer) is cut as it comes, so speaking starts at the first sentence;
a long run without such an end is cut at the last comma (or else space) before ``max_chars``, so a
model that never ends a sentence is still heard.
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?;:][\"'”’)\]]*\s+|\n+")
_PAUSE = re.compile(r"[,\u2014]\s+")
_SPACE = re.compile(r"\s+")


class SentenceSplitter:
    """Feed text as it streams in; take complete sentences out."""

    def __init__(self, max_chars: int | None = 220) -> None:
        self.max_chars = max_chars
        self._buffer = ""

    def feed(self, text: str) -> list[str]:
        """The sentences completed by ``text``."""
        self._buffer += text
        out: list[str] = []
        while (m := _END.search(self._buffer)) is not None:
            sentence = self._buffer[: m.end()].strip()
            self._buffer = self._buffer[m.end() :]
            if sentence:
                out.append(sentence)
        if self.max_chars is not None and len(self._buffer) > self.max_chars:
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


def split_sentences(text: str) -> list[str]:
    """``text`` cut into its sentences (however long each is)."""
    splitter = SentenceSplitter(max_chars=None)
    return splitter.feed(text) + splitter.flush()


def one_line(text: str, limit: int | None = 200) -> str:
    """``text`` on one line of printable characters, at most ``limit`` long (None: any length)."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if limit is None or len(flat) <= limit:
        return flat
    return flat[: limit - 3] + "..."


_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@]+(?::[^/\s@]*)?@")
_SECRET_NAMES = r"(?:api[_-]?key|access[_-]?token|token|key|secret|password|passwd|credential|signature|sig)"
_SECRET_ASSIGNED = re.compile(rf"(?i)\b({_SECRET_NAMES}\s*=\s*)[^\s\"'&,;}}]+")
_SECRET_QUOTED = re.compile(rf"(?i)([\"']{_SECRET_NAMES}[\"']\s*:\s*[\"'])[^\"']+")
_SECRET_LABELLED = re.compile(rf"(?i)\b({_SECRET_NAMES}:\s*)([^\s\"'&,;}}]+)")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[a-z0-9._~+/=-]{8,}")
_KEY_LIKE = re.compile(r"\b(sk|pk|rk|ghp|gho|xox[abp]|hf)[-_][A-Za-z0-9_-]{12,}\b")


def redact(text: str) -> str:
    """``text`` with what looks like a credential replaced by ``***``: the user and password of a
    URL, ``key=...``, ``token: ...`` and the like, bearer and basic credentials, and API keys in
    their usual shapes. For everything that leaves the process: events, logs, errors."""
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    text = _SECRET_ASSIGNED.sub(r"\1***", text)
    text = _SECRET_QUOTED.sub(r"\1***", text)
    text = _SECRET_LABELLED.sub(_labelled, text)
    text = _BEARER.sub(r"\1 ***", text)
    return _KEY_LIKE.sub("***", text)


def _labelled(match: re.Match[str]) -> str:
    # "token: x7Fq..." is a secret; "token: Input should be a string" is prose about one.
    value = match.group(2)
    secret_like = len(value) >= 8 and (any(c.isdigit() for c in value) or not value.isalpha())
    return match.group(1) + "***" if secret_like else match.group(0)


def describe_error(exc: BaseException, limit: int = 200) -> str:
    """What went wrong, fit for an event or a log line: the exception's type and its message, on one
    line, redacted and bounded. An HTTP error from another server gives its status, never its body
    (which may echo a prompt, a key or the server's internals)."""
    status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
    if isinstance(status, int) and 100 <= status <= 599:
        return f"{type(exc).__name__}: HTTP {status}"
    message = one_line(redact(str(exc)), limit)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
