"""The call server under hostile input: every attack meets a bound, and the server keeps serving.

Each test builds its attack itself, from raw sockets on 127.0.0.1 (slow heads, slow bodies, idle
connections, deep JSON, offers aimed at other hosts) or real aiortc callers, checks the bound, and
checks that ``/healthz`` (and, where it matters, a real call) still works meanwhile. Times are
asserted only as generous multiples of the configured timeouts; speed is bench/limits.py's."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter

import aiohttp
import pytest

from avagent.agent.resources import Resources
from avagent.agent.serve.server import CallServer, running_server
from avagent.io.webrtc.offer import OfferRejected, json_too_deep, parse_offer_body
from avagent.sim.calls import CallPeer, CallRefused, SpokenAudioTrack
from tests.serve_support import (
    SILENCE,
    healthy,
    http,
    offer_head,
    port_of,
    read_response,
    serve_config,
    trickle,
    until_closed,
)

__all__ = ["http"]


async def test_slow_offers_count_as_calls_from_their_arrival(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    body_timeout = 5.0  # long enough that the four places are surely still held when checked
    config = serve_config(max_calls=4, body_timeout_s=body_timeout)
    async with running_server(config, resources) as (server, url):
        port = port_of(url)
        streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(60)]
        for _reader, writer in streams:
            writer.write(offer_head(port, 5000) + b'{"sdp": "v=0')  # and the rest never comes
        began = time.monotonic()
        answers = [asyncio.create_task(read_response(r)) for r, _w in streams]
        # The first four hold the four places; the others are turned away at once.
        async with asyncio.timeout(20):
            for first in itertools.islice(asyncio.as_completed(answers), 56):
                await first
        assert server.stats()["offers_arriving"] == 4
        assert (await healthy(http, url))["calls"] == 0
        with pytest.raises(CallRefused) as refused:
            await CallPeer(url).call(SpokenAudioTrack(SILENCE))
        assert refused.value.status == 503

        statuses = [status for status, _body in await asyncio.gather(*answers)]
        waited = time.monotonic() - began
        for _reader, writer in streams:
            writer.close()
        # Places free up when the slow bodies time out; a real call then gets through.
        peer = CallPeer(url)
        try:
            await peer.call(SpokenAudioTrack(SILENCE))
        finally:
            await peer.hang_up()
    assert Counter(statuses) == {503: 56, 408: 4}
    assert waited < 3 * body_timeout


async def test_a_body_that_never_ends_gets_408_and_its_connection_closed(resources: Resources) -> None:
    async with running_server(serve_config(body_timeout_s=1.0), resources) as (_server, url):
        port = port_of(url)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            b"POST /offer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        writer.write(head)
        sender = asyncio.create_task(trickle(writer, b"1\r\n{\r\n" * 1000, every_s=0.05))
        began = time.monotonic()
        async with asyncio.timeout(3 * 1.0 + 5.0):
            status, body = await read_response(reader)
            await until_closed(reader)
        sender.cancel()
        writer.close()
    assert status == 408
    assert body == {"error": "the offer did not arrive within 1 s"}
    assert time.monotonic() - began < 3 * 1.0 + 5.0


# --- connections -----------------------------------------------------------------------------


async def test_slowloris_is_capped_and_timed_out_while_others_are_served(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    header_timeout = 2.0
    config = serve_config(max_connections=64, header_timeout_s=header_timeout)
    async with running_server(config, resources) as (server, url):
        port = port_of(url)
        head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ".encode() + b"a" * 5000

        async def slow_client() -> tuple[float, int]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            began = time.monotonic()
            sender = asyncio.create_task(trickle(writer, head, every_s=0.25))
            try:
                status, _body = await read_response(reader)
                await until_closed(reader)
                return time.monotonic() - began, status
            finally:
                sender.cancel()
                writer.close()

        attack = [asyncio.create_task(slow_client()) for _ in range(300)]
        peaks = []
        peer = CallPeer(url)
        try:
            await asyncio.sleep(0.5)
            for _ in range(5):
                peaks.append(server.stats()["connections"]["open"])
                assert (await healthy(http, url))["status"] == "ok"
                await asyncio.sleep(0.2)
            await peer.call(SpokenAudioTrack(SILENCE))
            assert peer.pc.connectionState == "connected"
            async with asyncio.timeout(60):
                held = await asyncio.gather(*attack)
        finally:
            await peer.hang_up()
        counts = server.stats()["connections"]
    assert max(peaks) <= 64
    assert counts["peak"] <= 64
    # Each slow connection was closed within its deadline: displaced at once, or 408 in time.
    assert max(seconds for seconds, _status in held) < 3 * header_timeout
    assert {status for _seconds, status in held} <= {0, 408}
    assert counts["head_timeouts"] + counts["displaced"] >= 300 - 64


async def test_idle_connections_close_and_big_heads_get_431(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    config = serve_config(keepalive_timeout_s=1.0, max_header_bytes=4096)
    async with running_server(config, resources) as (server, url):
        port = port_of(url)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(reader))[0] == 200
        began = time.monotonic()
        async with asyncio.timeout(3 * 1.0 + 5.0):
            await until_closed(reader)
        idle_s = time.monotonic() - began
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 6000 + b"\r\n\r\n")
        status, body = await read_response(reader)
        writer.close()
        assert (await healthy(http, url))["status"] == "ok"
        counts = server.stats()["connections"]
    assert 0.5 < idle_s < 3 * 1.0 + 1.0
    assert status == 431
    assert body == {"error": "the request's headers are larger than 4096 bytes"}
    assert counts["idle_closed"] >= 1
    assert counts["heads_too_large"] == 1


async def test_a_refused_offers_body_is_dropped_not_taken_for_a_head(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    config = serve_config(max_header_bytes=4096)
    async with running_server(config, resources) as (server, url):
        port = port_of(url)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(offer_head(port, 200_000))
        writer.write(b"{" + b" " * 199_998 + b"}")
        status, body = await read_response(reader)
        # The rest of the body is read and dropped, and the connection serves the next request.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(10):
            next_status, health = await read_response(reader)
        writer.close()
        assert (await healthy(http, url))["status"] == "ok"
        counts = server.stats()["connections"]
    assert (status, body) == (413, {"error": "the offer is larger than 65536 bytes"})
    assert (next_status, health["status"]) == (200, "ok")
    assert counts["heads_too_large"] == 0


async def test_when_every_connection_is_busy_a_new_one_gets_503(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    config = serve_config(max_connections=4, body_timeout_s=30.0)
    async with running_server(config, resources) as (_server, url):
        port = port_of(url)
        busy = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        for _reader, writer in busy:
            writer.write(offer_head(port, 5000) + b"{")
        await asyncio.sleep(0.5)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        status, body = await read_response(reader)
        writer.close()
        for _reader, busy_writer in busy:
            busy_writer.close()
        # Once those are gone, others get in again.
        async with asyncio.timeout(10):
            while True:
                with contextlib.suppress(aiohttp.ClientError, AssertionError):
                    assert (await healthy(http, url))["status"] == "ok"
                    break
                await asyncio.sleep(0.1)
    assert status == 503
    assert body == {"error": "the server has too many connections; try again later"}


async def test_shutdown_closes_slow_clients_instead_of_waiting_for_them(resources: Resources) -> None:
    config = serve_config(header_timeout_s=120.0, body_timeout_s=120.0, keepalive_timeout_s=120.0)
    server = CallServer(config, resources=resources)
    url = await server.start()
    port = port_of(url)
    try:
        slow = [await asyncio.open_connection("127.0.0.1", port) for _ in range(20)]
        for _reader, writer in slow:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        half_offer = await asyncio.open_connection("127.0.0.1", port)
        half_offer[1].write(offer_head(port, 5000) + b'{"sdp": ')
        idle = await asyncio.open_connection("127.0.0.1", port)
        idle[1].write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(idle[0]))[0] == 200
        await asyncio.sleep(0.3)
        assert server.stats()["connections"]["open"] == 22
    finally:
        began = time.monotonic()
        await server.stop()
        stopped_s = time.monotonic() - began
    async with asyncio.timeout(5):
        for reader, writer in [*slow, half_offer, idle]:
            await until_closed(reader)
            writer.close()
    assert stopped_s < 10.0


# --- offers ----------------------------------------------------------------------------------


async def test_deeply_nested_json_gets_400_not_a_crash(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    async with running_server(serve_config(), resources) as (_server, url):
        bodies = [
            b"[" * 30000 + b"]" * 30000,
            b'{"a":' * 10000 + b"1" + b"}" * 10000,
            b"[" * 60000,
        ]
        results = []
        for body in bodies:
            async with http.post(
                url + "offer", data=body, headers={"Content-Type": "application/json"}
            ) as response:
                results.append((response.status, (await response.json())["error"]))
        assert (await healthy(http, url))["status"] == "ok"
    assert [status for status, _ in results] == [400, 400, 400]
    assert all("nested deeper than 8 levels" in reason for _, reason in results)


def test_json_depth_is_measured_outside_strings() -> None:
    assert not json_too_deep(json.dumps({"sdp": "[" * 500 + '"{' * 100, "type": "offer"}).encode())
    assert not json_too_deep(json.dumps({"a": ['\\"[[[[[[[[[[[[[' * 10]}).encode())
    assert json_too_deep(b'{"x": "]]]]", "y": ' + b"[" * 9 + b"]" * 9 + b"}")
    assert not json_too_deep(b"[" * 8 + b"]" * 8)
    with pytest.raises(OfferRejected, match="nested deeper"):
        parse_offer_body(b"[" * 9 + b"]" * 9)
