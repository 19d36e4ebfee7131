"""Free speech with known truth: everyday sentences to synthesise, and the word error rate of a
transcript against them."""

from __future__ import annotations

import re
from collections.abc import Sequence

SENTENCES = [
    "the weather is nice today",
    "could you tell me the way to the station",
    "i would like a cup of coffee please",
    "my sister lives in a small house by the river",
    "please close the door when you leave",
    "we are going to the beach this weekend",
    "the children are playing in the garden",
    "can you help me carry these boxes",
    "i left my keys on the kitchen table",
    "the train was late again this morning",
    "what would you like for dinner tonight",
    "she reads a book every evening before bed",
    "the meeting has been moved to next week",
    "he forgot to water the plants",
    "turn off the lights in the living room",
    "the museum opens at nine in the morning",
    "do you know where my glasses are",
    "the dog is sleeping under the chair",
    "it is going to rain later today",
    "remind me to call my mother tomorrow",
    "the shop on the corner sells fresh bread",
    "i need to buy some milk and eggs",
    "this room is too cold for me",
    "our friends are coming over for lunch",
    "the music is too loud please turn it down",
    "where did you park the car",
    "the flowers in the park are beautiful",
    "please put the cups back in the cupboard",
    "i am looking for a good book to read",
    "the cat jumped over the fence",
    "tell me a story about a brave little robot",
    "how far is it to the nearest hospital",
    "the bus stops right outside our house",
    "let us go for a walk after lunch",
    "he plays the guitar in a small band",
    "the window in the bedroom is open",
]
"""36 sentences of common words (no numbers, whose spelling a recogniser may choose)."""


def words(text: str) -> list[str]:
    """``text`` as lower-case words, without punctuation (an apostrophe stays inside a word)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Words substituted, deleted and inserted to turn ``reference`` into ``hypothesis``."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        current = [i]
        for j, hyp in enumerate(hypothesis, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Errors over all the reference words (corpus word error rate)."""
    errors = total = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref = words(reference)
        errors += edit_distance(ref, words(hypothesis))
        total += len(ref)
    return errors / max(1, total)
