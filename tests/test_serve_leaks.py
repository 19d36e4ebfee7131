"""Calls end and leave nothing behind: after many calls the server's tasks, threads, sockets and
memory are back where they were, and a call ends cleanly whichever way it ends (the caller hangs
up, vanishes, falls silent, or the server shuts down)."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
import weakref
from typing import Any

import numpy as np
import pytest

from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.resources import Resources
from avagent.agent.serve.server import CallServer, running_server
from avagent.sim.calls import CallPeer, SpokenAudioTrack
from avagent.sim.scene import Scene, synthesize_scene

pytestmark = pytest.mark.slow


def serve_config(**serve: object) -> AgentConfig:
    return parse_config({"serve": {"loopback_only": True, "port": 0, **serve}})


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def footprint() -> dict[str, Any]:
    """What a leaked call would leave: tasks, threads (the loop's worker pool aside), open files."""
    gc.collect()
    return {
        "tasks": len(asyncio.all_tasks()),
        "threads": sorted(t.name for t in threading.enumerate() if not t.name.startswith("asyncio_")),
        "open_files": len(os.listdir("/proc/self/fd")),
    }


async def gone(server: CallServer) -> None:
    async with asyncio.timeout(15):
        await server.wait_for_calls(0)


async def round_of_calls(
    server: CallServer, url: str, scene: Scene, n: int, refs: list[weakref.ref[Any]]
) -> None:
    """``n`` callers at once each say a command, get it done, and hang up."""
    peers = [CallPeer(url, keep_voice=False) for _ in range(n)]
    try:
        await asyncio.gather(*(p.call(SpokenAudioTrack(scene.audio)) for p in peers))
        for peer in peers:
            assert peer.call_id is not None
            session = server.sessions[peer.call_id]
            refs += [weakref.ref(session), weakref.ref(session.agent), weakref.ref(session.pc)]
        calls = await asyncio.gather(*(p.wait_for_event("tool_call") for p in peers))
        assert [c["name"] for c in calls] == ["stop"] * n
    finally:
        await asyncio.gather(*(p.hang_up() for p in peers))
    await gone(server)


async def test_many_calls_leave_tasks_threads_sockets_and_memory_as_they_were(resources: Resources) -> None:
    scene = synthesize_scene(["stop"], lead_s=0.5, tail_s=0.8, snr_db=30.0, sample_rate=48000, seed=2)
    refs: list[weakref.ref[Any]] = []
    async with running_server(serve_config(), resources) as (server, url):
        # The first calls warm up what stays for good: the loop's worker threads, allocator pools.
        for _ in range(2):
            await round_of_calls(server, url, scene, 6, refs)
        before, rss_before = footprint(), rss_mb()
        for _ in range(4):
            await round_of_calls(server, url, scene, 6, refs)
            # An agent's parts refer to each other: the cycle collector frees a call, as it
            # does in a server from time to time.
            gc.collect()
        after, rss_after = footprint(), rss_mb()

    assert after == before
    assert [r for r in refs if r() is not None] == []
    # 24 calls; one call's agent alone holds more than 1 MB, so a leak of calls would show.
    assert rss_after - rss_before < 12.0


async def test_a_caller_that_vanishes_is_gone_within_five_seconds(resources: Resources) -> None:
    async with running_server(serve_config(), resources) as (server, url):
        caller = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "avagent.sim.calls", url, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert caller.stdout is not None
            async with asyncio.timeout(60):
                line = (await caller.stdout.readline()).decode()
            assert line.startswith("connected ")
            call_id = line.split()[1]
            session = server.sessions[call_id]
            await asyncio.sleep(0.5)
            assert session.source is not None
            assert session.source.frames > 0
        finally:
            # No hang-up, no goodbye: the process is simply gone, as a crashed browser would be.
            caller.send_signal(signal.SIGKILL)
            await caller.wait()
        async with asyncio.timeout(5.0):
            await session.wait_closed()
        assert session.end_reason == "stalled"
        assert not server.sessions


async def test_a_silent_call_ends_after_the_idle_timeout_and_the_caller_is_told(resources: Resources) -> None:
    async with running_server(serve_config(idle_timeout_s=1.0), resources) as (server, url):
        peer = CallPeer(url)
        try:
            await peer.call(SpokenAudioTrack(np.zeros(48000, np.float32)))
            ended = await peer.wait_for_event("call_ended", within_s=15)
        finally:
            await peer.hang_up()
        await gone(server)
    assert ended["reason"] == "idle"


async def test_shutting_down_hangs_up_every_call_and_tells_each_caller(resources: Resources) -> None:
    peers = []
    async with running_server(serve_config(), resources) as (server, url):
        peers = [CallPeer(url) for _ in range(3)]
        for peer in peers:
            await peer.call(SpokenAudioTrack(np.zeros(48000, np.float32)))
        sessions = list(server.sessions.values())
        assert len(sessions) == 3
    try:
        for peer in peers:
            ended = await peer.wait_for_event("call_ended", within_s=5)
            assert ended["reason"] == "the server is shutting down"
    finally:
        for peer in peers:
            await peer.hang_up()
    assert not server.sessions
    assert all(s.closed for s in sessions)
