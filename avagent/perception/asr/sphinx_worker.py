"""A pocketsphinx decoding process: ``python -m avagent.perception.asr.sphinx_worker``.

pocketsphinx holds the GIL while it decodes, so decoding runs in separate processes. Each worker
reads one JSON line of settings (``grammar``, ``dictionary``), answers ``{"ok": true}`` (or
``{"error": ...}``), then serves requests until its input closes: a request is a kind byte (``w``
for the grammar, ``p`` for the phone loop), a 4-byte little-endian length and that many bytes of
16 kHz int16 PCM; the answer is one JSON line ``{"text": ..., "score": ...}``.
"""

from __future__ import annotations

import json
import struct
import sys
from typing import BinaryIO

KINDS = {b"w": "words", b"p": "phones"}


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    from avagent.core.child_process import answer
    from avagent.perception.asr.sphinx_decoding import decode, make_decoders

    settings = json.loads(stdin.readline() or b"{}")
    try:
        decoders = make_decoders(settings.get("grammar"), settings.get("dictionary"))
    except Exception as exc:
        answer(stdout, {"error": str(exc)})
        return 1
    answer(stdout, {"ok": True})
    while True:
        header = stdin.read(5)
        if len(header) < 5:
            return 0
        kind = KINDS.get(header[:1])
        (length,) = struct.unpack("<I", header[1:])
        pcm = stdin.read(length)
        if kind is None or kind not in decoders or len(pcm) < length:
            answer(stdout, {"error": f"bad request {header[:1]!r}"})
            continue
        try:
            text, score = decode(decoders[kind], pcm)
            answer(stdout, {"text": text, "score": score})
        except Exception as exc:
            answer(stdout, {"error": f"{type(exc).__name__}: {exc}"})


if __name__ == "__main__":
    raise SystemExit(serve(sys.stdin.buffer, sys.stdout.buffer))
