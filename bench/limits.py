"""How the call server holds up under hostile input, and what that costs: JSON figures.

    .venv/bin/python bench/limits.py [--sections baseline,slow_offers,...] [--out bench/results/limits.json]

Each section starts the real ``avagent serve`` (``python -m avagent serve``, loopback only) in its
own process with the settings it needs, attacks it from this process with raw sockets (and, for
the ICE candidates, a real aiortc offer), and returns a dict of figures. The sections live in
``SECTIONS``, one function each: to add one, write ``async def my_section() -> dict`` and name it
there. Only the sections asked for are run; the others' figures already in the output file are
kept, so a section can be rerun (or added) alone.

- ``baseline``: what the rest compares to on this machine: one ``/healthz`` request (a new
  connection each time) and the idle server's memory.
- ``slow_offers``: 60 offers whose bodies never finish, against ``max_calls: 4``: how many are
  admitted (held as calls until ``body_timeout_s``) and how fast the rest are turned away.
- ``slowloris``: 300 connections sending a request head a byte every half second: how many the
  server holds at once, for how long, and ``/healthz`` meanwhile.
- ``idle_connections``: memory per open connection, idle between requests and halfway through a
  head.
- ``shutdown``: how long SIGTERM takes with 100 half-sent heads and a half-sent offer connected
  (timeouts 60 s: shutdown closes them rather than waiting).
- ``ice_candidates``: an offer naming 300 targets (refused), and the STUN requests an answered
  offer at the candidate cap sends to 16 addresses that never answer.
- ``answer_memory`` and ``answer_cut`` (bench/answer_limits.py): peak memory of an agent while a
  local model server streams a 1 MB answer, against a short answer; how soon an answer that would
  never end is cut at the word and time limits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from answer_limits import answer_memory, cut_latency

Section = Callable[[], Awaitable[dict[str, Any]]]


# --- the server --------------------------------------------------------------------------------


class ServerProcess:
    """``python -m avagent serve`` on loopback with the given ``serve:`` settings."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url
        # Whatever the server logs is read, so that a full pipe never holds the server up.
        assert process.stderr is not None
        self._drain = asyncio.create_task(self._read_all(process.stderr))
        found = re.search(r":(\d+)/$", url)
        assert found is not None
        self.port = int(found.group(1))

    @classmethod
    async def start(cls, **serve: object) -> ServerProcess:
        settings = {"loopback_only": True, "port": 0, "video_fps": 0, **serve}
        config = Path(tempfile.mkdtemp()) / "serve.yaml"
        config.write_text("serve:\n" + "".join(f"  {k}: {json.dumps(v)}\n" for k, v in settings.items()))
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "avagent", "serve", "--config", str(config), stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        async with asyncio.timeout(120):
            while True:
                line = (await process.stderr.readline()).decode()
                if not line:
                    raise RuntimeError("the server exited before it listened")
                found = re.search(r"answering calls at (\S+?)[;\s]", line)
                if found:
                    return cls(process, found.group(1))

    @staticmethod
    async def _read_all(stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        raise RuntimeError("no VmRSS")

    async def get(self, path: str) -> dict[str, Any]:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http, http.get(self.url + path) as response:
            data: dict[str, Any] = await response.json()
            return data

    async def healthz_s(self) -> float:
        """Seconds for one ``/healthz`` on a new connection (it must succeed)."""
        began = time.perf_counter()
        health = await self.get("healthz")
        assert health["status"] == "ok", health
        return time.perf_counter() - began

    async def stop(self) -> float:
        """Stop with SIGTERM; the seconds it took."""
        began = time.monotonic()
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(60):
                await self.process.wait()
        await self._drain
        return time.monotonic() - began


@contextlib.asynccontextmanager
async def server(**serve: object) -> Any:
    process = await ServerProcess.start(**serve)
    try:
        yield process
    finally:
        await process.stop()


# --- raw clients -------------------------------------------------------------------------------


async def read_status(reader: asyncio.StreamReader) -> int:
    """The status of the response on ``reader``; 0 if the connection ended without one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return 0
    return int(head.split(b" ", 2)[1])


async def until_closed(reader: asyncio.StreamReader) -> None:
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


async def trickle(writer: asyncio.StreamWriter, data: bytes, every_s: float) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every_s)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))], 4)


async def healthz_during(srv: ServerProcess, samples: int, every_s: float) -> dict[str, Any]:
    times, failures = [], 0
    for _ in range(samples):
        try:
            times.append(await srv.healthz_s())
        except Exception:
            failures += 1
        await asyncio.sleep(every_s)
    return {"healthz_s_p50": pct(times, 50), "healthz_s_max": pct(times, 100), "healthz_failures": failures}


# --- sections ----------------------------------------------------------------------------------


async def baseline() -> dict[str, Any]:
    async with server() as srv:
        await asyncio.sleep(1.0)
        for _ in range(5):
            await srv.healthz_s()
        times = [await srv.healthz_s() for _ in range(50)]
        return {
            "healthz_s_p50": pct(times, 50),
            "healthz_s_p95": pct(times, 95),
            "idle_server_rss_mb": round(srv.rss_mb(), 1),
        }


async def slow_offers() -> dict[str, Any]:
    offers, max_calls, body_timeout = 60, 4, 10.0
    async with server(max_calls=max_calls, body_timeout_s=body_timeout) as srv:
        head = (
            f"POST /offer HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nContent-Type: application/json\r\n"
            "Content-Length: 5000\r\n\r\n"
        ).encode()
        began = time.monotonic()

        async def slow_offer() -> tuple[int, float]:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            writer.write(head + b'{"sdp": "v=0')
            status = await read_status(reader)
            answered = time.monotonic() - began
            writer.close()
            return status, answered

        tasks = [asyncio.create_task(slow_offer()) for _ in range(offers)]
        await asyncio.sleep(1.0)
        arriving = (await srv.get("calls"))["offers_arriving"]
        during = await healthz_during(srv, 5, 0.2)
        results = await asyncio.gather(*tasks)
    statuses = Counter(status for status, _ in results)
    return {
        "offers": offers,
        "max_calls": max_calls,
        "body_timeout_s": body_timeout,
        "admitted": statuses[408],
        "offers_arriving_seen": arriving,
        "refused_503": statuses[503],
        "other_statuses": {str(k): v for k, v in statuses.items() if k not in (408, 503)},
        "refused_within_s_max": pct([t for s, t in results if s == 503], 100),
        "admitted_closed_after_s_max": pct([t for s, t in results if s == 408], 100),
        **during,
    }


async def slowloris() -> dict[str, Any]:
    connections, every_s = 300, 0.5
    async with server() as srv:
        settings = {"max_connections": 256, "header_timeout_s": 10.0}
        rss_before = srv.rss_mb()
        head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}\r\nX-Slow: ".encode() + b"a" * 1000

        async def slow_client() -> tuple[int, float]:
            reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
            began = time.monotonic()
            sender = asyncio.create_task(trickle(writer, head, every_s))
            try:
                status = await read_status(reader)
                await until_closed(reader)
                return status, time.monotonic() - began
            finally:
                sender.cancel()
                writer.close()

        tasks = [asyncio.create_task(slow_client()) for _ in range(connections)]
        await asyncio.sleep(2.0)
        peak_seen = (await srv.get("calls"))["connections"]["open"]
        rss_attack = srv.rss_mb()
        during = await healthz_during(srv, 10, 0.3)
        results = await asyncio.gather(*tasks)
        counts = (await srv.get("calls"))["connections"]
    held = [t for _, t in results]
    return {
        "connections": connections,
        "byte_every_s": every_s,
        **settings,
        "open_at_once_max": counts["peak"],
        "open_seen_during_attack": peak_seen,
        "displaced": counts["displaced"],
        "closed_with_408": sum(1 for s, _ in results if s == 408),
        "held_s_p50": pct(held, 50),
        "held_s_max": pct(held, 100),
        "server_rss_growth_mb": round(rss_attack - rss_before, 1),
        **during,
    }


async def idle_connections() -> dict[str, Any]:
    n = 250
    figures: dict[str, Any] = {"connections": n}
    for kind, ends in [("keepalive", "\r\n\r\n"), ("half_head", "\r\n")]:
        # A fresh server for each: memory freed by the first would be reused by the second.
        async with server(max_connections=1000, keepalive_timeout_s=120.0, header_timeout_s=120.0) as srv:
            request = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{srv.port}{ends}".encode()
            await asyncio.sleep(1.0)
            before = srv.rss_mb()
            streams = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(n)]
            for reader, writer in streams:
                writer.write(request)
                if kind == "keepalive":
                    assert await read_status(reader) == 200
            await asyncio.sleep(1.0)
            after = srv.rss_mb()
            # Less the connection that asks.
            figures[f"{kind}_open"] = (await srv.get("calls"))["connections"]["open"] - 1
            figures[f"{kind}_kb_per_connection"] = round((after - before) * 1024 / n, 1)
            for _reader, writer in streams:
                writer.close()
    return figures


async def shutdown() -> dict[str, Any]:
    slow, timeouts = 100, 60.0
    async with server(header_timeout_s=timeouts, body_timeout_s=timeouts) as srv:
        streams = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(slow + 1)]
        for _reader, writer in streams[:slow]:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        streams[slow][1].write(
            b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b'Content-Length: 5000\r\n\r\n{"sdp": '
        )
        await asyncio.sleep(1.0)
        held = (await srv.get("calls"))["connections"]["open"] - 1
        stop_s = await srv.stop()
        for _reader, writer in streams:
            writer.close()
    return {
        "slow_heads": slow,
        "half_sent_offers": 1,
        "header_and_body_timeout_s": timeouts,
        "connections_open_at_sigterm": held,
        "shutdown_s": round(stop_s, 3),
    }


class _Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.packets += 1


async def _offer_sdp() -> str:
    import numpy as np
    from aiortc import RTCConfiguration, RTCPeerConnection

    from avagent.io.webrtc.loopback import loopback_candidates
    from avagent.sim.calls import SpokenAudioTrack

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(SpokenAudioTrack(np.zeros(960, np.float32)))
    with loopback_candidates():
        await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


def _aimed_at(sdp: str, targets: list[tuple[str, int]]) -> str:
    """``sdp`` with its candidates replaced by ``targets``."""
    lines = [line for line in sdp.strip().split("\r\n") if not line.startswith("a=candidate:")]
    at = next(i for i, line in enumerate(lines) if line.startswith("a=ice-ufrag"))
    lines[at:at] = [f"a=candidate:{i} 1 udp 100 {h} {p} typ host" for i, (h, p) in enumerate(targets)]
    return "\r\n".join(lines) + "\r\n"


async def ice_candidates() -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    sinks = [await loop.create_datagram_endpoint(_Counter, local_addr=("127.0.0.1", 0)) for _ in range(16)]
    ports = [transport.get_extra_info("sockname")[1] for transport, _ in sinks]
    sdp = await _offer_sdp()
    window_s = 10.0
    try:
        async with server(connect_timeout_s=30.0) as srv, aiohttp.ClientSession() as http:

            async def post(offer: str) -> int:
                body = {"sdp": offer, "type": "offer"}
                async with http.post(srv.url + "offer", json=body) as response:
                    return response.status

            many = await post(_aimed_at(sdp, [("127.0.0.1", ports[i % 16] + i // 16) for i in range(300)]))
            await asyncio.sleep(2.0)
            after_refused = sum(c.packets for _, c in sinks)
            at_cap = await post(_aimed_at(sdp, [("127.0.0.1", p) for p in ports]))
            await asyncio.sleep(window_s)
            probes = sum(c.packets for _, c in sinks) - after_refused
    finally:
        for transport, _ in sinks:
            transport.close()
    return {
        "offer_with_300_candidates_status": many,
        "stun_requests_after_refusal": after_refused,
        "offer_at_cap_status": at_cap,
        "max_ice_candidates": 16,
        "window_s": window_s,
        "stun_requests_at_cap": probes,
        "stun_requests_per_candidate": round(probes / 16, 1),
    }


SECTIONS: dict[str, Section] = {
    "baseline": baseline,
    "slow_offers": slow_offers,
    "slowloris": slowloris,
    "idle_connections": idle_connections,
    "shutdown": shutdown,
    "ice_candidates": ice_candidates,
    "answer_memory": answer_memory,
    "answer_cut": cut_latency,
}


async def run(names: list[str], report: dict[str, Any]) -> dict[str, Any]:
    """Run the sections ``names`` into ``report`` (the figures of earlier runs, which others keep)."""
    report = {"benchmark": "limits", "sections": {}, **report}
    report["machine"] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    for name in names:
        began = time.monotonic()
        figures = await SECTIONS[name]()
        figures["section_s"] = round(time.monotonic() - began, 1)
        report["sections"][name] = figures
        print(json.dumps({name: figures}), file=sys.stderr, flush=True)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"of {', '.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=Path("bench/results/limits.json"))
    args = parser.parse_args()
    names = [n for n in args.sections.split(",") if n]
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown sections: {', '.join(unknown)}")
    earlier: dict[str, Any] = {}
    if args.out.exists():
        with contextlib.suppress(ValueError):
            earlier = json.loads(args.out.read_text(encoding="utf-8"))
    report = asyncio.run(run(names, earlier))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
