"""pocketsphinx decoding, and the worker process that does it: ``python -m
avagent.perception.asr.sphinx_decoding``.

Two decoders: the grammar made from the tools' spoken phrases (or the general language model) and,
with a grammar, an unconstrained phone loop whose score gives the grammar match its confidence.
Digitally silent stretches throw off pocketsphinx's noise estimate, and its noise tracker carries
state from one utterance to the next; both are dealt with here (see ``_stateless_features``).

pocketsphinx holds the GIL while it decodes, so the recogniser runs ``serve`` in worker processes.
A worker reads one JSON line of settings (``grammar``, ``dictionary``), answers ``{"ok": true}``
(or ``{"error": ...}``), then serves requests until its input closes: a request is a kind byte
(``w`` for the grammar, ``p`` for the phone loop), a 4-byte little-endian length and that many
bytes of 16 kHz int16 PCM; the answer is one JSON line ``{"text": ..., "score": ...}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import sys
import tempfile
from collections.abc import Iterator
from typing import Any, BinaryIO

from avagent.core.child_process import answer
from avagent.core.messages import SAMPLE_RATE
from avagent.perception.asr.base import RecognizerError

_PHONE_LOOP = {"ds": 2, "topn": 2, "maxhmmpf": 2000, "bestpath": False}
"""Settings that make the phone loop as fast as the grammar decode while keeping its scores (its
frame skipping carries a little state from one utterance to the next: confidences can differ in
the third decimal with the decoder's history)."""
_EXTRA_PRONUNCIATIONS = {
    # Flapped American forms the dictionary lists for "thirty" and "twenty" but not for these.
    "ninety(2)": "N AY N D IY",
    "forty(2)": "F AO R D IY",
    "eighty(2)": "EY D IY",
}


@contextlib.contextmanager
def _stateless_features() -> Iterator[str]:
    """The model's feature settings with the noise tracker off (batch mean normalisation stays).

    The noise tracker adapts from one utterance to the next, so the same words would be scored
    differently depending on what was heard before; whole utterances are decoded here, and the
    noise floor added to each already gives the model the steady background it expects.
    """
    from pocketsphinx import get_model_path

    model = os.path.join(get_model_path(), "en-us", "en-us", "feat.params")
    with open(model, encoding="utf-8") as f:
        params = f.read().replace("-remove_noise yes", "-remove_noise no")
    # The decoders read it when they are made: it is gone before they run (worker processes are
    # ended without their exit handlers, which would leave one file per worker behind).
    fd, path = tempfile.mkstemp(prefix="avagent-feat-", suffix=".params")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(params)
        yield path
    finally:
        os.unlink(path)


def make_decoders(grammar: str | None, dictionary: str | None) -> dict[str, Any]:
    with _stateless_features() as features:
        return _decoders(grammar, dictionary, features)


def _decoders(grammar: str | None, dictionary: str | None, features: str) -> dict[str, Any]:
    from pocketsphinx import Decoder, get_model_path

    base: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL", "featparams": features}
    if dictionary is not None:
        base["dict"] = dictionary
    decoders: dict[str, Any] = {}
    # A lower word insertion penalty stops short commands ("stop") from losing to longer phrases
    # that soak up the noise after them ("say hello"): 96 % instead of 94 % on synthesised commands.
    words = Decoder(**base, wip=0.02)
    if dictionary is None:
        for i, (word, phones) in enumerate(_EXTRA_PRONUNCIATIONS.items()):
            words.add_word(word, phones, i == len(_EXTRA_PRONUNCIATIONS) - 1)
    if grammar is not None:
        missing = sorted(w for w in grammar_words(grammar) if words.lookup_word(w) is None)
        if missing:
            raise RecognizerError(
                "these phrase words are not in the pronunciation dictionary: " + ", ".join(missing)
            )
        try:
            words.add_jsgf_string("commands", grammar)
        except ValueError as exc:
            raise RecognizerError(f"the command grammar does not parse: {exc}") from None
        words.activate_search("commands")
        phone_model = os.path.join(get_model_path(), "en-us-phone.lm.bin")
        decoders["phones"] = Decoder(allphone=phone_model, **base, **_PHONE_LOOP)
    decoders["words"] = words
    return decoders


def decode(decoder: Any, pcm: bytes) -> tuple[str, float]:
    """(text, path score) of one utterance of 16 kHz int16 PCM."""
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    if hypothesis is None:
        return "", 0.0
    return hypothesis.hypstr.strip(), float(hypothesis.score)


def grammar_words(jsgf: str) -> set[str]:
    """The words a JSGF grammar uses (rule names, weights and operators left out)."""
    words: set[str] = set()
    for line in jsgf.splitlines():
        if "=" not in line or line.startswith("#"):
            continue
        body = line.split("=", 1)[1]
        for token in body.replace(";", " ").replace("|", " ").replace("(", " ").replace(")", " ").split():
            token = token.strip("[]*+")
            if token and not token.startswith("<") and not token.startswith("/"):
                words.add(token)
    return words


KINDS = {b"w": "words", b"p": "phones"}


def serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    """The worker process: settings, then one answer per request, until its input closes."""
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
