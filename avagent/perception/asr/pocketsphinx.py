"""Offline recognition with pocketsphinx, using the English model inside its wheel.

With a JSGF grammar (built from the tools' spoken phrases) it recognises exactly the commands the
agent can carry out. Its general language model is far too weak for free speech: use the whisper
or openai backends for that.

A grammar forces any speech onto some phrase of the grammar, so each utterance is also decoded by
an unconstrained phone loop; the grammar path's score relative to the phone loop's is the
``confidence``: about 1 for a phrase of the grammar, lower for speech forced onto one.

pocketsphinx holds the GIL while it decodes (10-40 ms per utterance), which would stall the event
loop and every other agent in the process. Decoding therefore runs in worker processes, the
grammar and the phone loop side by side.

Digitally silent stretches (synthesised or gated audio) throw off pocketsphinx's noise estimate
and cut its accuracy sharply, so a faint, seeded noise floor (about -66 dBFS) is added first.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import tempfile
from typing import Any

import numpy as np
import soxr

from avagent.agent.messages import to_int16
from avagent.perception.asr.base import Recognition, RecognizerError
from avagent.perception.asr.sphinx_pool import SphinxProcessPool

SAMPLE_RATE = 16000
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


@functools.lru_cache(maxsize=1)
def _stateless_features() -> str:
    """The model's feature settings with the noise tracker off (batch mean normalisation stays).

    The noise tracker adapts from one utterance to the next, so the same words would be scored
    differently depending on what was heard before; whole utterances are decoded here, and the
    noise floor added to each already gives the model the steady background it expects.
    """
    from pocketsphinx import get_model_path

    model = os.path.join(get_model_path(), "en-us", "en-us", "feat.params")
    with open(model, encoding="utf-8") as f:
        params = f.read().replace("-remove_noise yes", "-remove_noise no")
    fd, path = tempfile.mkstemp(prefix="avagent-feat-", suffix=".params")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(params)
    atexit.register(os.unlink, path)
    return path


def make_decoders(grammar: str | None, dictionary: str | None) -> dict[str, Any]:
    from pocketsphinx import Decoder, get_model_path

    base: dict[str, Any] = {"samprate": SAMPLE_RATE, "loglevel": "FATAL", "featparams": _stateless_features()}
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


class PocketsphinxRecognizer:
    """Grammar decoding with a phone-loop confidence, in ``processes`` worker processes (0: in this
    process, blocking the caller: for scripts and benchmarks only)."""

    name = "pocketsphinx"

    def __init__(
        self,
        grammar: str | None = None,
        *,
        processes: int = 2,
        noise_floor: float = 16.0 / 32768.0,
        dictionary: str | None = None,
    ) -> None:
        """``grammar`` is JSGF text; without one the general English language model is used (and no
        confidence is given)."""
        self.grammar = grammar
        self._noise_floor = noise_floor
        # Build the decoders here first: a bad grammar fails now, in this process, with its reason.
        self._local = make_decoders(grammar, dictionary)
        self._pool = SphinxProcessPool(processes, grammar, dictionary) if processes > 0 else None

    def _pcm(self, audio: np.ndarray, sample_rate: int) -> bytes:
        samples = audio.astype(np.float32, copy=False)
        if sample_rate != SAMPLE_RATE:
            samples = np.asarray(soxr.resample(samples, sample_rate, SAMPLE_RATE), dtype=np.float32)
        # The same floor for the same audio: results do not change from run to run.
        rng = np.random.default_rng(samples.shape[0])
        floor = np.asarray(rng.standard_normal(int(samples.shape[0])), dtype=np.float32) * np.float32(
            self._noise_floor
        )
        return to_int16(samples + floor).tobytes()

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        if audio.shape[0] == 0:
            return Recognition("")
        pcm = self._pcm(audio, sample_rate)
        pool = self._pool
        if pool is None:
            return self._decode_here(pcm)
        if self.grammar is None:
            return self._combine(await asyncio.to_thread(pool.decode, "words", pcm), None)
        words, phones = await asyncio.gather(
            asyncio.to_thread(pool.decode, "words", pcm), asyncio.to_thread(pool.decode, "phones", pcm)
        )
        return self._combine(words, phones)

    def transcribe_sync(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        """Blocking, in this process (scripts and benchmarks; never on an event loop)."""
        return self._decode_here(self._pcm(audio, sample_rate))

    def _decode_here(self, pcm: bytes) -> Recognition:
        phones = decode(self._local["phones"], pcm) if "phones" in self._local else None
        return self._combine(decode(self._local["words"], pcm), phones)

    @staticmethod
    def _combine(words: tuple[str, float], phones: tuple[str, float] | None) -> Recognition:
        text, score = words
        if not text:
            return Recognition("")
        if phones is None or phones[1] <= 0.0:
            return Recognition(text)
        return Recognition(text, round(min(1.0, score / phones[1]), 3))

    def close(self) -> None:
        """Stop the worker processes; safe to call twice."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)


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
