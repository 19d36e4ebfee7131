"""The call server under hostile input: every attack meets a bound, and the server keeps serving.

Each test builds its attack itself, from raw sockets on 127.0.0.1 (slow heads, slow bodies, idle
connections, deep JSON, offers aimed at other hosts) or real aiortc callers, checks the bound, and
checks that ``/healthz`` (and, where it matters, a real call) still works meanwhile. Times are
asserted only as generous multiples of the configured timeouts; speed is bench/limits.py's."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pytest

from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.resources import Resources
from avagent.agent.serve.server import CallServer, running_server
from avagent.core.errors import ConfigError
from avagent.io.webrtc.offer import CandidateRules, OfferRejected, json_too_deep, parse_offer_body, screen_sdp
from avagent.sim.calls import CallPeer, CallRefused, SpokenAudioTrack

TOKEN = "limits-token-8f2c1d"
SILENCE = np.zeros(4800, np.float32)


def serve_config(**serve: object) -> AgentConfig:
    return parse_config({"serve": {"loopback_only": True, "port": 0, **serve}})


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A new connection per request: each one has to get past whatever holds the others.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


async def healthy(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with asyncio.timeout(10), http.get(url + "healthz") as response:
        assert response.status == 200
        data: dict[str, Any] = await response.json()
        return data


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of one HTTP response; (0, {}) if the connection ends without one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return 0, {}
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), json.loads(body) if body else {}


async def until_closed(reader: asyncio.StreamReader) -> None:
    """Read (and drop) until the server closes the connection."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


async def trickle(writer: asyncio.StreamWriter, data: bytes, every_s: float) -> None:
    """Send ``data`` a byte at a time, one every ``every_s``, until done or the connection breaks."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every_s)


def offer_head(port: int, length: int) -> bytes:
    return (
        f"POST /offer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


# --- offers count from their arrival --------------------------------------------------------


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


BASE_SDP = [
    "v=0",
    "o=- 1 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "a=fingerprint:sha-256 " + ":".join(["A7"] * 32),
]


def with_candidates(*hosts_ports: tuple[str, int], transport: str = "udp", kind: str = "host") -> str:
    lines = [
        f"a=candidate:{i} 1 {transport} 2122260223 {host} {port} typ {kind}"
        for i, (host, port) in enumerate(hosts_ports)
    ]
    return "\r\n".join(BASE_SDP + lines) + "\r\n"


@pytest.mark.parametrize(
    ("host", "port", "why"),
    [
        ("192.168.1.20", 50000, None),
        ("10.1.2.3", 50000, None),
        ("203.0.113.9", 50000, None),
        ("2001:db8::5", 50000, None),
        ("127.0.0.1", 50000, "loopback"),
        ("::ffff:127.0.0.1", 50000, "loopback"),
        ("::1", 50000, "loopback"),
        ("224.0.0.251", 5353, "a special-purpose address"),
        ("224.0.0.251", 50000, "a special-purpose address"),
        ("ff02::1", 50000, "a special-purpose address"),
        ("0.0.0.0", 50000, "a special-purpose address"),
        ("0.1.2.3", 50000, "a special-purpose address"),
        ("255.255.255.255", 50000, "a special-purpose address"),
        ("240.0.0.1", 50000, "a special-purpose address"),
        ("169.254.169.254", 50000, "a special-purpose address"),
        ("fe80::1", 50000, "a special-purpose address"),
        ("10.0.0.53", 53, "a port below 1024"),
        ("5f1c2a7e-1111-4d3a-9c1e-0123456789ab.local", 50000, "an mDNS name"),
        ("example.org", 50000, "not an IP address"),
    ],
)
def test_candidates_outside_the_allowed_networks_are_dropped(host: str, port: int, why: str | None) -> None:
    assert CandidateRules().why_dropped("udp", host, port) == why


def test_candidate_rules_follow_the_settings() -> None:
    lan = CandidateRules.from_cidrs(["192.168.0.0/16"], loopback_only=False, max_candidates=16)
    assert lan.why_dropped("udp", "192.168.3.4", 40000) is None
    assert lan.why_dropped("udp", "10.0.0.1", 40000) == "outside the allowed networks"
    loopback = CandidateRules(loopback_only=True)
    assert loopback.why_dropped("udp", "127.0.0.1", 40000) is None
    assert loopback.why_dropped("udp", "192.168.3.4", 40000) == "not loopback (loopback_only)"
    assert loopback.why_dropped("tcp", "127.0.0.1", 40000) == "not UDP"

    offer = screen_sdp(
        with_candidates(("192.168.1.2", 40000), ("169.254.1.1", 40000), ("x.local", 40000)) + "a=x\r\n"
    )
    assert offer.candidates == 1
    assert offer.dropped == {"a special-purpose address": 1, "an mDNS name": 1}
    assert "169.254.1.1" not in offer.sdp
    assert "a=candidate:0 1 udp 2122260223 192.168.1.2 40000 typ host" in offer.sdp
    # The same address repeated by bundled sections counts once; too many distinct ones: refused.
    assert screen_sdp(with_candidates(*[("10.0.0.1", 40000)] * 50)).candidates == 1
    with pytest.raises(OfferRejected, match="more than 16 usable ICE candidates"):
        screen_sdp(with_candidates(*[("10.0.0.1", 40000 + i) for i in range(17)]))
    with pytest.raises(OfferRejected, match="not a valid ICE candidate"):
        screen_sdp("\r\n".join([*BASE_SDP, "a=candidate:1 1 udp 1 10.0.0.1 port typ host"]))


class AddedCandidatesCaller(CallPeer):
    """A caller whose offer carries extra candidate lines (or only mDNS names)."""

    def __init__(self, url: str, extra: list[str], *, mdns_only: bool = False) -> None:
        super().__init__(url)
        self.extra = extra
        self.mdns_only = mdns_only

    async def post_offer(self, body: dict[str, Any]) -> dict[str, Any]:
        lines = body["sdp"].strip().split("\r\n")
        if self.mdns_only:
            lines = [
                " ".join(f"{i}-caller.local" if j == 4 else f for j, f in enumerate(line.split()))
                if line.startswith("a=candidate:")
                else line
                for i, line in enumerate(lines)
            ]
        at = next(i for i, line in enumerate(lines) if line.startswith("a=candidate:"))
        lines[at:at] = self.extra
        return await super().post_offer({**body, "sdp": "\r\n".join(lines) + "\r\n"})


class StunCounter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.packets += 1


async def test_an_offer_naming_300_targets_is_refused_and_nothing_is_sent_to_them(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    loop = asyncio.get_running_loop()
    sinks = [await loop.create_datagram_endpoint(StunCounter, local_addr=("127.0.0.1", 0)) for _ in range(10)]
    ports = [transport.get_extra_info("sockname")[1] for transport, _ in sinks]
    targets = [f"a=candidate:{900 + i} 1 udp 100 127.0.{i // 250}.{i % 250 + 1} {ports[i % 10]} typ host"
               for i in range(300)]  # fmt: skip
    try:
        async with running_server(serve_config(connect_timeout_s=2.0), resources) as (server, url):
            with pytest.raises(CallRefused) as refused:
                await AddedCandidatesCaller(url, targets).call(SpokenAudioTrack(SILENCE))
            # Within the cap the offer is taken, and the call works.
            peer = AddedCandidatesCaller(url, targets[:5])
            try:
                await peer.call(SpokenAudioTrack(SILENCE))
                assert (await healthy(http, url))["calls"] == 1
            finally:
                await peer.hang_up()
            async with asyncio.timeout(15):
                await server.wait_for_calls(0)
    finally:
        for transport, _ in sinks:
            transport.close()
    assert refused.value.status == 400
    assert "more than 16 usable ICE candidates" in refused.value.reason
    # Only the five accepted candidates were ever probed, and only a few times each.
    probed = sum(counter.packets for _, counter in sinks)
    assert probed <= 5 * 10


async def test_a_caller_with_only_mdns_candidates_connects_through_its_checks(
    resources: Resources, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "avagent.webrtc")
    async with running_server(serve_config(), resources) as (_server, url):
        peer = AddedCandidatesCaller(url, [], mdns_only=True)
        try:
            await peer.call(SpokenAudioTrack(SILENCE))
            assert peer.pc.connectionState == "connected"
        finally:
            await peer.hang_up()
    assert "ICE candidates dropped" in caplog.text
    assert "an mDNS name" in caplog.text


# --- TURN credentials and secrets ------------------------------------------------------------


TURN = {"urls": "turn:turn.example.org:3478", "username": "avagent", "credential": "static-TURN-pw"}


def test_a_turn_credential_without_a_token_is_refused_at_start(resources: Resources) -> None:
    with pytest.raises(ConfigError) as refused:
        CallServer(serve_config(ice_servers=[TURN]), resources=resources)
    message = str(refused.value)
    assert "\n" not in message
    assert "serve.ice_servers.0: a TURN credential is given only to callers with the token" in message
    assert "static-TURN-pw" not in message
    # STUN alone needs no token.
    CallServer(serve_config(ice_servers=[{"urls": "stun:stun.example.org:3478"}]), resources=resources)


async def test_turn_credentials_are_short_lived_and_only_for_the_token_holder(
    resources: Resources, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    turn = {"urls": ["turn:turn.example.org:3478"], "secret_env": "AVAGENT_TEST_TURN_SECRET"}
    config = serve_config(token=TOKEN, ice_servers=[turn], turn_credential_ttl_s=600)
    with pytest.raises(ConfigError, match="AVAGENT_TEST_TURN_SECRET is not set"):
        CallServer(config, resources=resources)
    secret = "shared-TURN-secret-42"
    monkeypatch.setenv("AVAGENT_TEST_TURN_SECRET", secret)
    async with running_server(config, resources) as (_server, url):
        async with http.get(url + "ice-servers") as response:
            assert response.status == 401
        async with http.get(url + "ice-servers", headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 403
        now = time.time()
        async with http.get(url + "ice-servers", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
            [server_entry] = (await response.json())["iceServers"]
            assert response.headers["Cache-Control"] == "no-store"
    expires, _, user = server_entry["username"].partition(":")
    assert user == "avagent"
    assert now + 590 <= int(expires) <= now + 610
    digest = hmac.new(secret.encode(), server_entry["username"].encode(), hashlib.sha1).digest()
    assert server_entry["credential"] == base64.b64encode(digest).decode()
    assert server_entry["urls"] == ["turn:turn.example.org:3478"]


@pytest.mark.parametrize(
    ("server", "complaint"),
    [
        ({"urls": "turn:x:3478", "secret_env": "S", "credential": "hunter2"}, "has secret_env and a"),
        ({"urls": "stun:x:3478", "secret_env": "S"}, "secret_env is for TURN servers"),
        ({"urls": "http://x", "username": "u", "credential": "hunter2"}, "is not a stun:"),
    ],
)
def test_ice_server_mistakes_are_named_without_the_credential(server: dict[str, str], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint) as refused:
        parse_config({"serve": {"ice_servers": [server]}})
    assert "hunter2" not in str(refused.value)


async def test_secrets_never_reach_responses_or_logs(
    resources: Resources,
    http: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AVAGENT_TEST_TURN_SECRET", "shared-TURN-secret-42")
    turn = {"urls": "turn:turn.example.org:3478", "secret_env": "AVAGENT_TEST_TURN_SECRET"}
    # A YAML token of digits is taken as text, not refused (and quoted in the error).
    assert parse_config({"serve": {"token": 20240517}}).serve.token == "20240517"
    config = serve_config(token=TOKEN, ice_servers=[turn])
    wrong = "almost-" + TOKEN
    texts = []
    async with running_server(config, resources) as (_server, url):
        for headers, params in [
            ({"Authorization": f"Bearer {wrong}"}, {}),
            ({"Authorization": f"Basic {wrong}"}, {}),
            ({}, {"token": wrong}),
        ]:
            for path in ("", "offer", "ice-servers", "calls"):
                async with http.get(url + path, headers=headers, params=params) as response:
                    assert response.status in (401, 403, 405)
                    texts.append(await response.text())
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get(url + "ice-servers", headers=auth) as response:
            credential = (await response.json())["iceServers"][0]["credential"]
        async with http.post(
            url + "offer", data=b"{bad", headers={**auth, "Content-Type": "application/json"}
        ) as r:
            texts.append(await r.text())
        async with http.get(url + "calls", headers=auth) as response:
            texts.append(await response.text())
        # A request aiohttp cannot parse, whose bad line carries the token: refused in one JSON line.
        for raw in (f"Authorization: Bearer {TOKEN}\x01", f"X-Token {wrong}"):
            reader, writer = await asyncio.open_connection("127.0.0.1", port_of(url))
            writer.write(f"GET / HTTP/1.1\r\nHost: x\r\n{raw}\r\n\r\n".encode())
            assert await read_response(reader) == (400, {"error": "the request is not valid HTTP"})
            writer.close()
        async with http.get(url + "nowhere", headers=auth) as response:
            assert await response.json() == {"error": "Not Found"}
            assert response.status == 404
    everything = "\n".join([*texts, caplog.text, *(r.getMessage() for r in caplog.records)])
    for secret in (TOKEN, wrong, "shared-TURN-secret-42", credential):
        assert secret not in everything
