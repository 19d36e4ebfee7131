"""How well the agent hears; writes bench/results/hearing.json (and prints it).

    .venv/bin/python bench/hearing.py [--quick]

1. Commands (this file): the offline commands, on avagent/sim/command_matrix.py's utterances of
   known truth: every command of the built-in grammar in 6 voices x 4 noises (pink, white, babble,
   music) x 3 SNRs (10, 15, 20 dB), rates 130-190 wpm (864 utterances; ``--quick``: 2 voices, 2
   noises, 2 SNRs, 96), and other speech (300 utterances of the TEST sentences, which nothing was
   tuned on; the DEV sentences, on which the rejection was tuned, are reported apart). Two ways of
   hearing: the grammar alone (pocketsphinx and its phone-loop confidence, ``policy.min_confidence``)
   and the grammar checked by whisper told which commands to expect (``hearing.check_commands:
   whisper``). Reported: commands
   recognised right (right phrase and acted on) by voice x noise x SNR, "stop" alone, commands
   taken for another command, other speech that would have become a tool call, and decode time.
2. Free speech: ``measure()`` of bench/hearing_whisper.py, when that file exists.
3. Echo cancellation: ``measure()`` of bench/hearing_echo.py, when that file exists.

Decode times are wall-clock milliseconds per utterance on this machine, next to a baseline (a fixed
numpy FFT workload timed in the same run) so that machines can be compared.
"""

from __future__ import annotations

import asyncio
import collections
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.perception.asr.base import Recognition
from avagent.perception.asr.checked import CheckedRecognizer
from avagent.perception.asr.pocketsphinx import PocketsphinxRecognizer
from avagent.sim import command_matrix as matrix
from avagent.tools.phrases import CommandPhrases

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent


class _Decoded:
    """One utterance and what each recogniser made of it."""

    def __init__(self, u: matrix.Utterance, grammar: Recognition, free: Recognition | None) -> None:
        self.u = u
        self.grammar = grammar
        self.free = free


def _decode_all(
    utterances: Sequence[matrix.Utterance],
    grammar: PocketsphinxRecognizer,
    free: Any | None,
    times: dict[str, list[float]],
) -> list[_Decoded]:
    out = []
    for u in utterances:
        started = time.perf_counter()
        g = grammar.transcribe_sync(u.audio, 16000)
        times["grammar"].append(time.perf_counter() - started)
        f = None
        if free is not None:
            started = time.perf_counter()
            f = free.transcribe_sync(u.audio, 16000)
            times["whisper"].append(time.perf_counter() - started)
        out.append(_Decoded(u, g, f))
    return out


def _acted(
    phrases: CommandPhrases, min_confidence: float, checker: CheckedRecognizer | None, d: _Decoded
) -> str | None:
    """The phrase the agent would act on, or None."""
    result = d.grammar if checker is None or d.free is None else checker.decide(d.grammar, d.free)
    if result.confidence is not None and result.confidence < min_confidence:
        return None
    return phrases.spoken(result.text) if phrases.match(result.text, exact=True) else None


def _rate(hits: int, total: int) -> dict[str, Any]:
    return {"right": round(hits / total, 4) if total else None, "n": total}


def _score(decoded: dict[str, list[_Decoded]], acted: Callable[[_Decoded], str | None]) -> dict[str, Any]:
    commands = decoded["commands"]
    cells: dict[str, dict[str, dict[str, list[int]]]] = collections.defaultdict(
        lambda: collections.defaultdict(dict)
    )
    by: dict[str, dict[str, list[int]]] = {
        k: collections.defaultdict(lambda: [0, 0]) for k in ("voice", "noise", "snr", "command")
    }
    right = wrong = 0
    stop = [0, 0]
    for d in commands:
        said = acted(d)
        ok = said == d.u.text
        right += ok
        wrong += said is not None and not ok
        snr = f"{d.u.snr_db:g} dB" if d.u.snr_db is not None else "clean"
        cell = cells[d.u.voice][d.u.noise].setdefault(snr, [0, 0])
        cell[0] += ok
        cell[1] += 1
        for key, value in (("voice", d.u.voice), ("noise", d.u.noise), ("snr", snr), ("command", d.u.text)):
            by[key][value][0] += ok
            by[key][value][1] += 1
        if d.u.text == "stop":
            stop[0] += ok
            stop[1] += 1
    out: dict[str, Any] = {
        "commands_right": _rate(right, len(commands)),
        "commands_taken_for_another_command": round(wrong / len(commands), 4),
        "stop": _rate(*stop),
        "by_voice": {k: _rate(*v) for k, v in by["voice"].items()},
        "by_noise": {k: _rate(*v) for k, v in by["noise"].items()},
        "by_snr": {k: _rate(*v) for k, v in by["snr"].items()},
        "by_command": {k: _rate(*v) for k, v in by["command"].items()},
        "by_voice_noise_snr": {
            voice: {
                noise: {snr: round(c[0] / c[1], 3) for snr, c in snrs.items()}
                for noise, snrs in noises.items()
            }
            for voice, noises in cells.items()
        },
    }
    for name in ("other_test", "other_dev"):
        others = decoded[name]
        moved = [d for d in others if acted(d) is not None]
        out[f"{name}_became_a_tool_call"] = {
            "rate": round(len(moved) / len(others), 4),
            "n": len(others),
            "examples": sorted({f"{d.u.text!r} -> {acted(d)!r}" for d in moved})[:12],
        }
    return out


def _baseline_ms() -> float:
    """A fixed workload (numpy FFTs), to compare decode times across machines."""
    x = np.random.default_rng(0).standard_normal(1 << 16)
    started = time.perf_counter()
    for _ in range(50):
        np.fft.irfft(np.fft.rfft(x))
    return (time.perf_counter() - started) * 1000


def _ms(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered) * 1000, 1),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
    }


def commands(quick: bool = False) -> dict[str, Any]:
    """Section 1: the offline commands, by the grammar alone and checked by whisper."""
    config = AgentConfig()
    phrases = Resources(config).phrases
    min_confidence = config.policy.min_confidence
    if quick:
        specs = matrix.command_specs(
            voices=("en-gb", "en-us+f3"), noises=("babble", "white"), snrs=(10.0, 20.0)
        )
        test_n, dev_n = 60, 40
    else:
        specs = matrix.command_specs()
        test_n, dev_n = 300, 240
    sets = {
        "commands": matrix.synthesize(specs, seed=1),
        "other_test": matrix.synthesize(matrix.other_specs(matrix.OTHER_TEST, test_n), seed=3),
        "other_dev": matrix.synthesize(matrix.other_specs(matrix.OTHER_DEV, dev_n), seed=2),
    }
    grammar = PocketsphinxRecognizer(phrases.jsgf(), processes=0)
    free = None
    if importlib.util.find_spec("faster_whisper") is not None:
        from avagent.perception.asr.whisper import WhisperRecognizer, prompt_for

        free = WhisperRecognizer(threads=2, processes=1, prompt=prompt_for(phrases.examples()))
        asyncio.run(free.start())
    times: dict[str, list[float]] = {"grammar": [], "whisper": []}
    baseline = _baseline_ms()
    try:
        decoded = {name: _decode_all(us, grammar, free, times) for name, us in sets.items()}
    finally:
        if free is not None:
            asyncio.run(free.stop())
    hearing = config.hearing
    out: dict[str, Any] = {
        "voices": sorted({s.voice for s in specs}),
        "noises": sorted({s.noise for s in specs}),
        "snrs_db": sorted({s.snr_db for s in specs if s.snr_db is not None}),
        "rates_wpm": list(matrix.RATES),
        "min_confidence": min_confidence,
        "test_sentences": "OTHER_TEST (reported); OTHER_DEV was used for tuning",
        "baseline_fft_ms": round(baseline, 1),
        "decode_ms_per_utterance": {name: _ms(values) for name, values in times.items()},
        "grammar_alone": _score(decoded, lambda d: _acted(phrases, min_confidence, None, d)),
    }
    if free is not None:
        checker = CheckedRecognizer(
            grammar,
            free,
            phrases.spoken,
            alone=hearing.free_alone,
            grammar_alone=hearing.grammar_alone,
            min_similarity=hearing.min_similarity,
        )
        out["checked_by_whisper"] = _score(decoded, lambda d: _acted(phrases, min_confidence, checker, d))
        looser = CheckedRecognizer(
            grammar,
            free,
            phrases.spoken,
            alone=hearing.free_alone,
            grammar_alone=hearing.grammar_alone,
            min_similarity=0.65,
        )
        out["checked_by_whisper_min_similarity_0.65"] = _score(
            decoded, lambda d: _acted(phrases, min_confidence, looser, d)
        )
    else:
        out["checked_by_whisper"] = "not measured: faster-whisper is not installed (the whisper extra)"
    return out


def _section(file: str, quick: bool) -> dict[str, Any] | str:
    """``measure(quick)`` of another bench file next to this one, when it exists."""
    path = HERE / file
    if not path.exists():
        return f"not measured: {file} does not exist"
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        return f"not measured: {file} cannot be loaded"
    try:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        result = module.measure(quick=quick)
    except Exception as exc:  # one section failing must not lose the others' figures
        return f"failed: {type(exc).__name__}: {exc}"
    return dict(result)


def main() -> None:
    quick = "--quick" in sys.argv
    out: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "quick": quick}
    print("1/3 offline commands", file=sys.stderr)
    out["commands"] = commands(quick)
    print("2/3 free speech (bench/hearing_whisper.py)", file=sys.stderr)
    out["free_speech"] = _section("hearing_whisper.py", quick)
    print("3/3 echo cancellation (bench/hearing_echo.py)", file=sys.stderr)
    out["echo_cancellation"] = _section("hearing_echo.py", quick)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hearing.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
