"""Figures for the bounds on one model answer (functions only; bench/limits.py runs them).

1. ``answer_memory``: peak memory of a real agent on a spoken question while a local
   OpenAI-compatible server streams a 1 MB answer, against the same agent answered in one short
   sentence (the baseline), in the same process and run. Memory is traced with ``tracemalloc``
   (Python and NumPy allocations, from the moment the agent is made to the end of its run) and, on
   Linux, as the resident set's high-water mark above where it stood before the run.
2. ``cut_latency``: how soon an answer is cut once a limit is reached, with a server that streams
   for ever: for ``max_answer_words``, from the server sending the first word beyond the limit; for
   ``max_answer_s``, from the instant the answer's time ran out; to the server seeing the stream
   closed and to the policy's ``error`` event.

The server is ``tests/endless_server.py``: it makes each chunk as it sends it, so its own memory
stays small however much it streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import SecretStr

from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.core.bus import Bus
from avagent.core.events import Error, Transcript
from avagent.policy.limits import AnswerLimits
from avagent.policy.runner import PolicyRunner
from avagent.sim.scene import synthesize_scene
from avagent.tools.executor import ToolExecutor
from avagent.tools.registry import ToolRegistry

MB = 1024 * 1024


def _rss_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_rss_peak() -> bool:
    """Start the resident set's high-water mark afresh (Linux: ``clear_refs`` 5)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def _agent_peak(resources: Resources, path: Path, answer: Any) -> dict[str, Any]:
    from tests.endless_server import flood_server

    async with flood_server(answer) as server:
        config = parse_config({"policy": {"model": "flood", "base_url": server.base_url}})
        rss_before = _rss_kb("VmRSS")
        rss_reset = _reset_rss_peak()
        tracemalloc.start()
        tracemalloc.reset_peak()
        started = time.monotonic()
        try:
            result = await run_on_file(path, config, resources=resources)
        finally:
            _, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        wall_s = time.monotonic() - started
        rss_peak = _rss_kb("VmHWM")
    said = [e["text"] for e in result.of_type("say")]
    rss_rise = rss_peak - rss_before if rss_reset and rss_peak is not None and rss_before else None
    return {
        "traced_peak_mb": round(traced_peak / MB, 1),
        "rss_rise_mb": round(rss_rise / 1024, 1) if rss_rise is not None else None,
        "server_chars_sent": server.chars_sent,
        # Every ``say``, the cut notice included.
        "words_said": sum(len(s.split()) for s in said),
        "voice_s": round(result.voice.shape[0] / result.voice_rate, 1),
        "cut": [e["message"] for e in result.of_type("error") if e["stage"] == "policy"],
        "wall_s": round(wall_s, 2),
    }


async def answer_memory(resources: Resources | None = None, answer_chars: int = 1_000_000) -> dict[str, Any]:
    """Peak memory of an agent whose model streams ``answer_chars`` of text, and of the same agent
    answered in one short sentence (the baseline), with the default limits. The models (started
    here when ``resources`` is None) load outside the measurement."""
    from tests.endless_server import Flood

    own = resources is None
    shared = resources if resources is not None else Resources(AgentConfig())
    await shared.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = synthesize_scene(["what time is it"], snr_db=25.0, seed=3).write(Path(tmp) / "ask.wav")
            # Once unmeasured first, so that neither run pays for what the first run of a process loads.
            await _agent_peak(shared, path, "It is ten past two.")
            baseline = await _agent_peak(shared, path, "It is ten past two.")
            flood = await _agent_peak(shared, path, Flood(total_chars=answer_chars))
    finally:
        if own:
            await shared.stop()
    traced_ratio = flood["traced_peak_mb"] / max(baseline["traced_peak_mb"], 0.1)
    return {
        "answer_chars": answer_chars,
        "baseline": baseline,
        "long_answer": flood,
        "traced_peak_ratio": round(traced_ratio, 2),
    }


async def _cut_once(limits: AnswerLimits, flood: Any, watch_word: int | None) -> dict[str, float]:
    from langchain_openai import ChatOpenAI

    from avagent.policy.llm import LLMPolicy
    from tests.endless_server import flood_server

    async with flood_server(flood, watch_word=watch_word) as server:
        bus = Bus()
        executor = ToolExecutor(ToolRegistry())
        key = SecretStr("x")
        model = ChatOpenAI(
            model="flood", base_url=server.base_url, api_key=key, max_retries=0, streaming=True
        )
        runner = PolicyRunner(bus, LLMPolicy(model, executor, limits=limits), executor)
        errors = bus.subscribe(Error, name="bench.errors")
        task = asyncio.create_task(runner.run())
        try:
            asked = time.monotonic()
            await bus.publish(Transcript(t=1.0, text="go on", turn=1))
            async with asyncio.timeout(limits.max_answer_s + 30.0):
                await errors.get()
                reported = time.monotonic()
                while server.closed_at is None:  # noqa: ASYNC110 (the server offers no event for this)
                    await asyncio.sleep(0.001)
        finally:
            bus.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(task, 5.0)
        closed = server.closed_at
        reached = server.word_sent_at if watch_word is not None else asked + limits.max_answer_s
        assert reached is not None
        return {"closed_ms": (closed - reached) * 1000.0, "error_ms": (reported - reached) * 1000.0}


def _summary(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {
        "median": round(float(np.median(a)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "max": round(float(a.max()), 2),
    }


async def cut_latency(
    trials: int = 5, max_answer_words: int = 300, max_answer_s: float = 2.0
) -> dict[str, Any]:
    """Milliseconds from a limit being reached to the answer being cut (the stream closed, as the
    server sees it; the ``error`` event published), with a server that streams for ever: as fast
    as the client reads for the word limit, a chunk of four words every 10 ms for the time limit."""
    from tests.endless_server import Flood

    words_limits = AnswerLimits(max_answer_words=max_answer_words, max_answer_s=3600.0)
    time_limits = AnswerLimits(max_answer_words=100_000, max_answer_s=max_answer_s)
    words = [await _cut_once(words_limits, Flood(), max_answer_words + 1) for _ in range(trials)]
    times = [await _cut_once(time_limits, Flood(delay_s=0.01), None) for _ in range(trials)]
    return {
        "trials": trials,
        "max_answer_words": {
            "limit": max_answer_words,
            "closed_ms": _summary([w["closed_ms"] for w in words]),
            "error_ms": _summary([w["error_ms"] for w in words]),
        },
        "max_answer_s": {
            "limit": max_answer_s,
            "closed_ms": _summary([t["closed_ms"] for t in times]),
            "error_ms": _summary([t["error_ms"] for t in times]),
            "note": "measured from the transcript's publication + max_answer_s: an upper bound",
        },
    }
