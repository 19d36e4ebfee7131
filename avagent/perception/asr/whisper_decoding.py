"""faster-whisper decoding, and the worker process that does it: ``python -m
avagent.perception.asr.whisper_decoding``.

A worker reads one JSON line of settings (``folder``, ``device``, ``compute_type``, ``threads``,
``language``, ``beam_size``, ``max_samples``, ``prompt``, and optionally ``commands``), loads the
model from that folder with the Hugging Face hub switched off (nothing is ever fetched), and answers
``{"ok": true}`` or ``{"error": ...}``. It then serves requests until its input closes: a 4-byte
little-endian length and that many bytes of 16 kHz int16 PCM (at most ``max_samples`` samples); the
answer is one JSON line ``{"text": ...}`` of at most ``MAX_TEXT_CHARS`` characters, or ``{"error":
...}``. With ``commands`` (``whisper_scoring.Written`` as JSON), the answer also names the most
likely command and its margin over the free transcript, and the most likely urgent phrase with its
own margin: ``{"text", "command", "margin", "urgent", "urgent_margin"}``.

Decoding is greedy (or a small beam) at temperature 0, with no timestamps and no conditioning on
earlier text: each utterance is independent, and its cost is bounded by its length.
"""

from __future__ import annotations

import os
import struct
import sys
from typing import Any, BinaryIO

import numpy as np

from avagent.core.child_process import answer

MAX_TEXT_CHARS = 2000
"""The longest transcript a worker returns (two minutes of fast speech is about 2,000 characters)."""
_DISCARD_BLOCK = 1 << 16


def load_model(settings: dict[str, Any]) -> Any:
    """The faster-whisper model in ``settings["folder"]``, loaded without any network access."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # before faster-whisper imports the hub client
    from faster_whisper import WhisperModel

    return WhisperModel(
        settings["folder"],
        device=settings.get("device", "cpu"),
        compute_type=settings.get("compute_type", "int8"),
        cpu_threads=int(settings.get("threads", 2)),
        num_workers=1,
        local_files_only=True,
    )


def transcribe(
    model: Any, samples: np.ndarray, language: str | None, beam_size: int, prompt: str = ""
) -> str:
    """The text of one utterance of 16 kHz float32 audio, cut to ``MAX_TEXT_CHARS``, read as
    following ``prompt`` (none when empty)."""
    segments, _info = model.transcribe(
        samples,
        language=language,
        beam_size=beam_size,
        temperature=0.0,
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,
        initial_prompt=prompt or None,
    )
    texts: list[str] = []
    length = 0
    for segment in segments:
        text = str(segment.text).strip()
        if text:
            texts.append(text)
            length += len(text) + 1
        if length > MAX_TEXT_CHARS:
            break  # the rest is not decoded at all
    return " ".join(texts)[:MAX_TEXT_CHARS]


def _discard(stdin: BinaryIO, length: int) -> None:
    while length > 0:
        got = stdin.read(min(length, _DISCARD_BLOCK))
        if not got:
            return
        length -= len(got)


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """The worker process: settings, then one answer per request, until its input closes."""
    import json

    settings = json.loads(stdin.readline() or b"{}")
    try:
        model = load_model(settings)
    except Exception as exc:
        answer(stdout, {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]})
        return 1
    language = settings.get("language")
    beam_size = int(settings.get("beam_size", 1))
    prompt = str(settings.get("prompt") or "")
    max_bytes = 2 * int(settings.get("max_samples", 0))
    scorer = None
    if settings.get("commands"):
        from avagent.perception.asr.whisper_scoring import CommandScorer, Written

        try:
            written = [Written.from_json(c) for c in settings["commands"]]
            scorer = CommandScorer(model, written, prompt)
        except Exception as exc:
            answer(stdout, {"error": f"commands: {type(exc).__name__}: {exc}".splitlines()[0][:300]})
            return 1
    answer(stdout, {"ok": True})
    while True:
        header = stdin.read(4)
        if len(header) < 4:
            return 0
        (length,) = struct.unpack("<I", header)
        if length > max_bytes or length % 2:
            _discard(stdin, length)
            answer(stdout, {"error": f"a request of {length} bytes (at most {max_bytes}, even)"})
            continue
        pcm = stdin.read(length)
        if len(pcm) < length:
            return 0
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / np.float32(32768.0)
        try:
            if scorer is None:
                answer(stdout, {"text": transcribe(model, samples, language, beam_size, prompt)})
                continue
            scored = scorer.score(samples)
            text = scored.text[:MAX_TEXT_CHARS]
            answer(
                stdout,
                {
                    "text": text,
                    "command": scored.command,
                    "margin": scored.margin,
                    "urgent": scored.urgent,
                    "urgent_margin": scored.urgent_margin,
                },
            )
        except Exception as exc:
            answer(stdout, {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]})


if __name__ == "__main__":
    raise SystemExit(serve(sys.stdin.buffer, sys.stdout.buffer))
