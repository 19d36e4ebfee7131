"""The call server's ICE and TURN limits and its secrets: candidates outside the allowed networks
are dropped, an offer naming hundreds of targets sends nothing, TURN credentials go only to a token
holder, and no secret reaches a response or a log."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import time
from typing import Any

import aiohttp
import pytest

from avagent.agent.config import parse_config
from avagent.agent.resources import Resources
from avagent.agent.serve.server import CallServer, running_server
from avagent.core.errors import ConfigError
from avagent.io.webrtc.offer import CandidateRules, OfferRejected, screen_sdp
from avagent.sim.calls import CallPeer, CallRefused, SpokenAudioTrack
from tests.serve_support import (
    SILENCE,
    TOKEN,
    healthy,
    http,
    port_of,
    read_response,
    serve_config,
)

__all__ = ["http"]


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
