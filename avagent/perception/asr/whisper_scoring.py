"""Which expected command an utterance is, by whisper's own likelihood of each (worker side).

A free-speech decoder writes the text it finds best, one token at a time, and in noise or an odd
voice that greedy path goes astray early ("Stop." in babble at 10 dB comes out as "It's not.").
Told the short list of what may be said, the same model can instead be asked how likely each of
those texts is, given the audio: the log-probabilities of its tokens, teacher-forced, plus that of
the end of text after it. Two passes over one run of the encoder:

1. Which command: every written phrase is scored with the commands' examples as the prompt (which
   makes whisper expect them), plus ``LENGTH_BONUS`` per token: without it the likelihood favours
   short texts, and whisper tends to end early ("Turn left." for "turn left ninety degrees").
2. Whether it was said at all: the chosen phrase and whisper's own unprompted transcript are scored
   without the prompt, and compared per token (a long sentence's transcript has a low total
   likelihood simply by being long): ``margin`` is the phrase's mean log-probability per token
   minus the transcript's. A phrase that was said comes close to the transcript or beats it
   (greedy decoding does not find the most likely text); other speech leaves it well below.

The caller decides from the margin (``checked.py``); bench/hearing.py measures how many commands
and how much other speech each margin lets through.

A command with a number ("turn left {n} degrees") is scored in two steps: the distribution of the
token after its written prefix ("Turn left") ranks the values the slot allows (whisper writes each
of 0-360 as one token), and the ``TOP_NUMBERS`` best are scored whole, in digits and in words, with
the values whisper's prompted transcript names (up to ``HEARD_NUMBERS``): an espeak "ninety" after
"Look at" ranks below "fifty" as the next token, yet the transcript reads "Look at ninety degrees.".

The decoder's cross-attention reads only the frames of the utterance and ``MARGIN_FRAMES`` after it,
not the 30 s window's padding, which makes scoring a few dozen texts cost about as much as one
free decode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

TOP_NUMBERS = 3
HEARD_NUMBERS = 3
"""Values named in the transcript that are scored besides the ``TOP_NUMBERS`` best, at most."""
LENGTH_BONUS = 0.5
"""Added per token when choosing the phrase (natural log), against the likelihood's bias to short texts."""
MARGIN_FRAMES = 150
"""Encoder frames (20 ms each) kept after the utterance for scoring: 3 s of the padding. On the
tuning voices' hardest cells 1.5 s heard fewer commands (58.3 % against 59.9 %), and the whole 30 s
window fewer still, at 2.5 times the cost (docs/policy.md)."""
MAX_FREE_TOKENS = 96
MAX_SCORED_S = 15.0
"""A longer utterance is no command: it is only transcribed."""
FRAME_SAMPLES = 320
"""Audio samples (16 kHz) per encoder frame."""


@dataclass(frozen=True, slots=True)
class Written:
    """One command as whisper writes it: ``before`` + (a number from ``numbers``) + ``after``.

    ``spoken``: the grammar's words, with ``{n}`` where the number goes. Without numbers the text
    is ``before + after`` ("Stop" + ".")."""

    spoken: str
    before: str
    after: str
    numbers: tuple[int, ...] = ()
    number_words: tuple[str, ...] = ()
    urgent: bool = False
    """A safety phrase ("stop"): its own margin is reported too (``Scored.urgent_margin``)."""

    @staticmethod
    def from_json(data: dict[str, Any]) -> Written:
        numbers = tuple(int(n) for n in data.get("numbers", ()))
        words = tuple(str(w) for w in data.get("number_words", ()))
        if len(words) != len(numbers):
            raise ValueError("number_words must match numbers")
        urgent = bool(data.get("urgent", False)) and not numbers
        return Written(str(data["spoken"]), str(data["before"]), str(data["after"]), numbers, words, urgent)


@dataclass(frozen=True, slots=True)
class Scored:
    """What an utterance was: whisper's transcript (prompted with the commands), and the most
    likely command with its margin."""

    text: str
    command: str | None
    margin: float | None
    """Mean log-probability per token (natural log) of the command minus that of whisper's own
    unprompted transcript: 0 or more when whisper finds the command at least as likely."""
    urgent: str | None = None
    """The most likely urgent phrase ("stop"), whether or not it is the best command."""
    urgent_margin: float | None = None
    """``urgent``'s own margin, measured as ``margin`` is: the halt is decided on it (``checked.py``)."""


class CommandScorer:
    """Scores ``commands`` against utterances with a loaded faster-whisper model ``whisper``.

    ``prompt``: text taken to have come just before each utterance when choosing the command
    (examples of the commands)."""

    def __init__(self, whisper: Any, commands: list[Written], prompt: str = "") -> None:
        self._whisper = whisper
        self._model = whisper.model
        tokenizer = whisper.hf_tokenizer
        self._tokenizer = tokenizer
        special = {name: tokenizer.token_to_id(name) for name in _SPECIAL}
        self._eot = special["<|endoftext|>"]
        start = [special["<|startoftranscript|>"]]
        if self._model.is_multilingual:
            # A multilingual model is told the language and the task, as faster-whisper does.
            start += [tokenizer.token_to_id("<|en|>"), tokenizer.token_to_id("<|transcribe|>")]
        self._plain = [*start, special["<|notimestamps|>"]]
        self._prompted = self._plain
        if prompt:
            told = self._ids(" " + prompt.strip())[-223:]
            self._prompted = [special["<|startofprev|>"], *told, *self._plain]
        self._fixed: list[tuple[str, list[int]]] = []
        self._numeric: list[tuple[Written, list[int]]] = []
        self._urgent: list[tuple[str, list[int]]] = []
        for c in commands:
            if c.numbers:
                self._numeric.append((c, self._ids(" " + c.before) if c.before else []))
            else:
                self._fixed.append((c.spoken, self._ids(" " + c.before + c.after)))
                if c.urgent:
                    self._urgent.append(self._fixed[-1])
        self._first_tokens: dict[int, int] = {}

    @property
    def start_tokens(self) -> list[int]:
        """The tokens every unprompted text is read after (with the language and the task for a
        multilingual model, as faster-whisper itself writes them)."""
        return list(self._plain)

    def _ids(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def _first_token(self, number: int) -> int:
        if number not in self._first_tokens:
            self._first_tokens[number] = self._ids(f" {number}")[0]
        return self._first_tokens[number]

    def score(self, samples: np.ndarray) -> Scored:
        """Whisper's transcript of ``samples`` (16 kHz float32) and the best command with its
        margin; a long utterance is transcribed only."""
        import ctranslate2

        features = self._whisper.feature_extractor(samples)
        frames = features.shape[-1]
        window = np.zeros((features.shape[0], 3000), dtype=np.float32)
        window[:, : min(frames, 3000)] = features[:, :3000]
        encoded = self._model.encode(ctranslate2.StorageView.from_array(window[None]), to_cpu=True)
        told = self._transcribe(encoded, self._prompted)
        text = str(self._tokenizer.decode(told)).strip()
        if samples.shape[0] > MAX_SCORED_S * 16000 or not (self._fixed or self._numeric):
            return Scored(text, None, None)
        memory = np.asarray(encoded)[:, : min(1500, samples.shape[0] // FRAME_SAMPLES + MARGIN_FRAMES)]
        memory = np.ascontiguousarray(memory)
        spoken, written = self._choose(memory, _words(text))
        free = self._transcribe(encoded, self._plain) if self._prompted is not self._plain else told
        # The urgent phrases ride in the same batch: a "stop" the choice passed over (in noise,
        # or in an accent whisper hears as "what") still has its own margin, for the halt.
        urgent = [ids for _, ids in self._urgent]
        (command, own, *safety), _ = self._scores(memory, self._plain, [written, free, *urgent])
        own_mean = own / (len(free) + 1)
        margin = command / (len(written) + 1) - own_mean
        if not safety:
            return Scored(text, spoken, round(margin, 3))
        best = max(range(len(safety)), key=lambda i: safety[i] / (len(urgent[i]) + 1))
        urgent_margin = safety[best] / (len(urgent[best]) + 1) - own_mean
        return Scored(text, spoken, round(margin, 3), self._urgent[best][0], round(urgent_margin, 3))

    def _transcribe(self, encoded: Any, start: list[int]) -> list[int]:
        found = self._model.generate(encoded, [start], beam_size=1, max_length=len(start) + MAX_FREE_TOKENS)
        return [t for t in found[0].sequences_ids[0] if t < self._eot]

    def _choose(self, memory: np.ndarray, heard: str) -> tuple[str, list[int]]:
        """The most likely phrase (grammar words, written tokens), read after the prompt;
        ``heard``: the transcript's words (``_words``), whose numbers are scored too."""
        start = self._prompted
        first = [ids for _, ids in self._fixed] + [ids for _, ids in self._numeric]
        scores, ends = self._scores(memory, start, first)
        candidates = [(spoken, ids, s) for (spoken, ids), s in zip(self._fixed, scores, strict=False)]
        texts: list[tuple[str, list[int]]] = []
        for i, (c, _) in enumerate(self._numeric):
            after = ends[len(self._fixed) + i]
            ranked = sorted(
                zip(c.numbers, c.number_words, strict=True),
                key=lambda nw: -float(after[self._first_token(nw[0])]),
            )
            named = [nw for nw in ranked[TOP_NUMBERS:] if _names(heard, *nw)][:HEARD_NUMBERS]
            for number, words in ranked[:TOP_NUMBERS] + named:
                spoken = c.spoken.replace("{n}", words)
                texts.append((spoken, self._ids(_text(c.before, str(number), c.after))))
                texts.append((spoken, self._ids(_text(c.before, words, c.after))))
        if texts:
            more, _ = self._scores(memory, start, [ids for _, ids in texts])
            candidates.extend((spoken, ids, s) for (spoken, ids), s in zip(texts, more, strict=True))
        spoken, ids, _ = max(candidates, key=lambda c: c[2] + LENGTH_BONUS * (len(c[1]) + 1))
        return spoken, ids

    def _scores(
        self, memory: np.ndarray, start: list[int], sequences: list[list[int]]
    ) -> tuple[list[float], list[np.ndarray]]:
        """log P(sequence, then the end of text) for each, read after ``start``; and the
        log-distribution of the token that would follow each sequence."""
        import ctranslate2

        batch = ctranslate2.StorageView.from_array(np.repeat(memory, len(sequences), axis=0))
        longest = max(len(s) for s in sequences)
        # Decoding goes on past the forced tokens until it ends: bounded by max_length.
        results = self._model.generate(
            batch,
            [start + s for s in sequences],
            beam_size=1,
            max_length=len(start) + 2 * longest + 24,
            return_logits_vocab=True,
            suppress_blank=False,
        )
        totals: list[float] = []
        following: list[np.ndarray] = []
        for sequence, result in zip(sequences, results, strict=True):
            steps = result.logits[0]
            if len(steps) <= len(sequence):
                raise RuntimeError("the decoder returned fewer steps than the text it was given")
            kept = steps[: len(sequence) + 1]
            logits = np.stack([np.asarray(s, dtype=np.float32).reshape(-1) for s in kept])
            top = logits.max(axis=1, keepdims=True)
            log_p = logits - (top + np.log(np.exp(logits - top).sum(axis=1, keepdims=True)))
            forced = log_p[np.arange(len(sequence)), sequence].sum() if sequence else 0.0
            totals.append(float(forced + log_p[len(sequence), self._eot]))
            following.append(log_p[len(sequence)])
        return totals, following


def _words(text: str) -> str:
    """``text`` as lower-case words between single spaces, with one at each end ("Forty-five." is
    " forty five ")."""
    return " " + " ".join("".join(c if c.isalnum() else " " for c in text.lower()).split()) + " "


def _names(heard: str, number: int, words: str) -> bool:
    """Whether the words ``heard`` (``_words``) name ``number``, in digits or in ``words``."""
    return f" {number} " in heard or f" {words} " in heard


def _text(before: str, number: str, after: str) -> str:
    middle = f"{before} {number}" if before else number[:1].upper() + number[1:]
    return " " + middle + after


_SPECIAL = ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>", "<|startofprev|>")
