"""How well the agent hears; writes bench/results/hearing.json (and prints it).

    .venv/bin/python bench/hearing.py [--quick] [--commands-only] [--dump FILE | --from FILE]
                                      [--model FOLDER]

``--commands-only`` measures section 1 and keeps the others from the results file (with the date
they were measured); ``--dump FILE`` writes what each recogniser made of each utterance, and
``--from FILE`` scores such a file again without decoding (to compare decision rules and margins:
the decode times are then those in the results file); ``--model FOLDER`` scores with that
CTranslate2 whisper model instead of the packaged tiny.en.

1. Commands (this file): the offline commands, on avagent/sim/command_matrix.py's utterances of
   known truth: every command of the built-in grammar in 6 voices x 4 noises (pink, white, babble,
   music) x 3 SNRs (10, 15, 20 dB), rates 130-190 wpm (864 utterances; ``--quick``: 2 voices, 2
   noises, 2 SNRs, 96), and other speech (300 utterances of the TEST sentences, which nothing was
   tuned on; the DEV sentences, on which the acceptance margin was tuned, are reported apart). Two
   ways of hearing: the grammar alone (pocketsphinx and its phone-loop confidence,
   ``policy.min_confidence``) and whisper scoring the commands (``hearing.check_commands:
   whisper``, at ``hearing.accept_margin`` and at a sweep of margins). Reported: commands
   recognised right (right phrase and acted on) by voice x noise x SNR, "stop" alone, commands
   taken for another command, other speech that would have become a tool call, and decode time;
   and how often the robot halts (a ``stop`` event: the stop command taken, or a safety phrase
   within ``hearing.halt_margin``, and with the safety-word spotter too) on "stop", on the other
   commands and on other speech, with a sweep of halt margins.
2. Free speech: ``measure()`` of bench/hearing_whisper.py, when that file exists.
3. Echo cancellation: ``measure()`` of bench/hearing_echo.py, when that file exists.

Decode times are wall-clock milliseconds per utterance on this machine, next to a baseline (a fixed
numpy FFT workload timed in the same run) so that machines can be compared.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.perception.asr.base import Recognition
from avagent.perception.asr.checked import decide
from avagent.perception.asr.pocketsphinx import PocketsphinxRecognizer
from avagent.perception.asr.whisper_scoring import Scored
from avagent.perception.spotting import spotted
from avagent.policy.commands import acted_on
from avagent.sim import command_matrix as matrix
from avagent.tools.phrases import CommandPhrases
from avagent.tools.written import written_commands

RESULTS = Path(__file__).resolve().parent / "results"
HERE = Path(__file__).resolve().parent


class _Decoded:
    """One utterance and what each recogniser made of it: the grammar's recognition, and whisper's
    transcript, best command and margin."""

    def __init__(self, u: matrix.Utterance, grammar: Recognition, scored: Scored | None) -> None:
        self.u = u
        self.grammar = grammar
        self.scored = scored


def _decode_all(
    utterances: Sequence[matrix.Utterance],
    grammar: PocketsphinxRecognizer,
    scorer: Any | None,
    times: dict[str, list[float]],
) -> list[_Decoded]:
    out = []
    for u in utterances:
        started = time.perf_counter()
        g = grammar.transcribe_sync(u.audio, 16000)
        times["grammar"].append(time.perf_counter() - started)
        scored = None
        if scorer is not None:
            started = time.perf_counter()
            scored = scorer.scored_sync(u.audio, 16000)
            times["whisper_scoring"].append(time.perf_counter() - started)
        out.append(_Decoded(u, g, scored))
    return out


def _grammar_acted(phrases: CommandPhrases, min_confidence: float, d: _Decoded) -> str | None:
    """The phrase the agent would act on with the grammar alone, or None."""
    return acted_on(phrases, d.grammar.text, d.grammar.confidence, min_confidence)


def _scored_decision(
    phrases: CommandPhrases, margin: float, agreed: float, halt: float | None, d: _Decoded
) -> Recognition | None:
    """What the checked recogniser makes of ``d`` at these margins (None without whisper)."""
    if d.scored is None:
        return None
    return decide(
        d.scored,
        phrases.spoken,
        margin,
        urgent=phrases.urgent,
        grammar=d.grammar,
        agreed_margin=agreed,
        halt_margin=halt,
        numbers_differ=phrases.numbers_differ,
    )


def _scored_acted(phrases: CommandPhrases, margin: float, agreed: float, d: _Decoded) -> str | None:
    """The phrase the agent would act on with whisper scoring at ``margin`` (and ``agreed`` when
    whisper's prompted transcript and the grammar agree), or None."""
    result = _scored_decision(phrases, margin, agreed, None, d)
    return None if result is None else _taken(phrases, result)


def _taken(phrases: CommandPhrases, result: Recognition) -> str | None:
    """The phrase ``result`` (a checked recogniser's decision) is acted on, or None."""
    return result.text if result.confidence == 1.0 and phrases.match(result.text, exact=True) else None


def _halts(
    phrases: CommandPhrases, margin: float, agreed: float, halt: float | None, spot: float | None, d: _Decoded
) -> bool:
    """Whether the turn halts the robot: taken for an urgent phrase, or a halt by the urgent
    phrase's margin (``halt``), or (``spot``: the spotter's least confidence) the grammar heard an
    urgent phrase, as the safety-word spotter would at the pause after it."""
    result = _scored_decision(phrases, margin, agreed, halt, d)
    if result is not None and (result.halt is not None or _taken(phrases, result) in phrases.urgent):
        return True
    return spot is not None and spotted(d.grammar, phrases.urgent, spot)


def _halt_rates(
    decoded: dict[str, list[_Decoded]], halts: Callable[[_Decoded], bool], urgent: Collection[str]
) -> dict[str, Any]:
    """How often the robot halts: on "stop", on the other urgent phrases, on the other commands,
    and on other speech (with examples)."""
    commands = decoded["commands"]
    out: dict[str, Any] = {}
    for name, chosen in (
        ("stop", [d for d in commands if d.u.text == "stop"]),
        ("other_urgent_phrases", [d for d in commands if d.u.text in urgent and d.u.text != "stop"]),
        ("other_commands", [d for d in commands if d.u.text not in urgent]),
    ):
        out[name] = _rate(sum(halts(d) for d in chosen), len(chosen))
    for name in ("other_test", "other_dev"):
        halted = [d for d in decoded[name] if halts(d)]
        out[name] = {
            "rate": round(len(halted) / len(decoded[name]), 4),
            "n": len(decoded[name]),
            "examples": sorted({repr(d.u.text) for d in halted})[:12],
        }
    return out


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


def _earlier(key: str) -> Any:
    """A figure of the commands section of the results file, as the last decoding run wrote it."""
    path = RESULTS / "hearing.json"
    return json.loads(path.read_text())["commands"].get(key) if path.exists() else None


def _dump(path: Path, decoded: dict[str, list[_Decoded]]) -> None:
    """Each utterance's truth and what each recogniser made of it, one JSON line each."""
    with path.open("w", encoding="utf-8") as f:
        for name, items in decoded.items():
            for d in items:
                scored = d.scored
                row = {
                    "set": name,
                    "text": d.u.text,
                    "voice": d.u.voice,
                    "grammar": [d.grammar.text, d.grammar.confidence],
                    "scored": None
                    if scored is None
                    else [scored.text, scored.command, scored.margin, scored.urgent, scored.urgent_margin],
                }
                f.write(json.dumps(row) + "\n")


def _load(path: Path, sets: dict[str, list[matrix.Utterance]]) -> dict[str, list[_Decoded]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    out: dict[str, list[_Decoded]] = {name: [] for name in sets}
    for name, utterances in sets.items():
        mine = [r for r in rows if r["set"] == name]
        if [r["text"] for r in mine] != [u.text for u in utterances]:
            raise SystemExit(f"{path} does not hold this run's {name} utterances")
        for u, r in zip(utterances, mine, strict=True):
            scored = None if r["scored"] is None else Scored(*r["scored"])
            out[name].append(_Decoded(u, Recognition(*r["grammar"]), scored))
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


def commands(
    quick: bool = False, dump: Path | None = None, dumped: Path | None = None, model: str | None = None
) -> dict[str, Any]:
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
        test_n, dev_n = 300, 400
    sets = {
        "commands": matrix.synthesize(specs, seed=1),
        "other_test": matrix.synthesize(matrix.other_specs(matrix.OTHER_TEST, test_n), seed=3),
        "other_dev": matrix.synthesize(matrix.other_specs(matrix.OTHER_DEV, dev_n), seed=2),
    }
    grammar = PocketsphinxRecognizer(phrases.jsgf(), processes=0)
    scorer = None
    if importlib.util.find_spec("faster_whisper") is not None:
        from avagent.perception.asr.whisper import WhisperRecognizer, prompt_for

        scorer = WhisperRecognizer(
            model,
            threads=2,
            processes=1,
            prompt=prompt_for(phrases.examples()),
            commands=written_commands(phrases),
        )
        if dumped is None:
            asyncio.run(scorer.start())
    times: dict[str, list[float]] = {"grammar": [], "whisper_scoring": []}
    baseline = _baseline_ms()
    if dumped is not None:
        # What each recogniser made of each utterance, saved by an earlier run with --dump; its
        # decode times are those of the results file (the run that made the dump).
        decoded = _load(dumped, sets)
        times = {}
    else:
        try:
            decoded = {name: _decode_all(us, grammar, scorer, times) for name, us in sets.items()}
        finally:
            if scorer is not None:
                asyncio.run(scorer.stop())
    if dump is not None:
        _dump(dump, decoded)
    margin, agreed = config.hearing.accept_margin, config.hearing.agreed_margin
    out: dict[str, Any] = {
        "voices": sorted({s.voice for s in specs}),
        "noises": sorted({s.noise for s in specs}),
        "snrs_db": sorted({s.snr_db for s in specs if s.snr_db is not None}),
        "rates_wpm": list(matrix.RATES),
        "min_confidence": min_confidence,
        "whisper_model": None if scorer is None else scorer.model.label,
        "accept_margin": margin,
        "agreed_margin": agreed,
        "test_sentences": "OTHER_TEST (reported); OTHER_DEV was used for tuning",
        "baseline_fft_ms": round(baseline, 1) if times else _earlier("baseline_fft_ms"),
        "decode_ms_per_utterance": {name: _ms(values) for name, values in times.items()}
        if times
        else _earlier("decode_ms_per_utterance"),
        "grammar_alone": _score(decoded, lambda d: _grammar_acted(phrases, min_confidence, d)),
    }
    if scorer is None:
        out["scored_by_whisper"] = "not measured: faster-whisper is not installed (the whisper extra)"
        return out
    out["scored_by_whisper"] = _score(decoded, functools.partial(_scored_acted, phrases, margin, agreed))
    halt, spot = config.hearing.halt_margin, config.hearing.spot_confidence
    out["halt_margin"] = halt
    out["spot_confidence"] = spot
    # "right" here: the share of those utterances on which the robot halted.
    out["halted"] = {
        "at_the_end_of_the_turn": _halt_rates(
            decoded, functools.partial(_halts, phrases, margin, agreed, halt, None), phrases.urgent
        ),
        "with_the_spotter_too": _halt_rates(
            decoded, functools.partial(_halts, phrases, margin, agreed, halt, spot), phrases.urgent
        ),
        "by_halt_margin": {
            f"{h:g}": {
                name: rate.get("right", rate.get("rate"))
                for name, rate in _halt_rates(
                    decoded, functools.partial(_halts, phrases, margin, agreed, h, None), phrases.urgent
                ).items()
            }
            for h in (0.5, 1.0, 1.5, 2.0, 2.5, 2.75, 3.0)
        },
    }
    # Keys: "accept_margin/agreed_margin"; an agreed margin of 0 turns the agreement off.
    sweep = {}
    for m in (0.25, 0.375, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0):
        for a in (0.0, agreed):
            scored = _score(decoded, functools.partial(_scored_acted, phrases, m, a))
            sweep[f"{m:g}/{a:g}"] = {
                "commands_right": scored["commands_right"]["right"],
                "stop": scored["stop"]["right"],
                "commands_taken_for_another_command": scored["commands_taken_for_another_command"],
                "other_test_became_a_tool_call": scored["other_test_became_a_tool_call"]["rate"],
                "other_dev_became_a_tool_call": scored["other_dev_became_a_tool_call"]["rate"],
            }
    out["scored_by_whisper_margin_sweep"] = sweep
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
    dump = Path(sys.argv[sys.argv.index("--dump") + 1]) if "--dump" in sys.argv else None
    dumped = Path(sys.argv[sys.argv.index("--from") + 1]) if "--from" in sys.argv else None
    model = sys.argv[sys.argv.index("--model") + 1] if "--model" in sys.argv else None
    out["commands"] = commands(quick, dump, dumped, model)
    earlier = RESULTS / "hearing.json"
    if "--commands-only" in sys.argv and earlier.exists():
        # The other sections' figures are kept from the earlier run, with its date.
        kept = json.loads(earlier.read_text())
        for name in ("free_speech", "echo_cancellation"):
            section = kept.get(name, {})
            out[name] = {**section, "measured": section.get("measured", kept.get("date"))}
    else:
        print("2/3 free speech (bench/hearing_whisper.py)", file=sys.stderr)
        out["free_speech"] = _section("hearing_whisper.py", quick)
        print("3/3 echo cancellation (bench/hearing_echo.py)", file=sys.stderr)
        out["echo_cancellation"] = _section("hearing_echo.py", quick)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "hearing.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
