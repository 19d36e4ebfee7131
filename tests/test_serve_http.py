"""The call server's HTTP side: the page, the token, the limits, and bad offers of every kind.

Each refusal is a 4xx (or 503) with a one-line JSON reason, and none of them disturbs a call in
progress or leaves a session behind."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator

import aiohttp
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.resources import Resources
from avagent.agent.serve.server import CallServer, running_server
from avagent.core.errors import ConfigError
from avagent.io.webrtc.loopback import loopback_candidates
from avagent.sim.calls import CallPeer, CallRefused, SpokenAudioTrack
from avagent.sim.scene import synthesize_scene

TOKEN = "s3cret-token"


def serve_config(**serve: object) -> AgentConfig:
    return parse_config({"serve": {"loopback_only": True, "port": 0, **serve}})


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def real_offer() -> str:
    """The SDP offer an aiortc caller makes (audio and a data channel)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(SpokenAudioTrack(np.zeros(960, np.float32)))
    pc.createDataChannel("events")
    with loopback_candidates():
        await pc.setLocalDescription(await pc.createOffer())
    sdp: str = pc.localDescription.sdp
    await pc.close()
    return sdp


async def refusal(response: aiohttp.ClientResponse) -> tuple[int, str]:
    """(status, reason) of an error response, checking that the reason is one line of JSON."""
    payload = await response.json()
    reason = payload["error"]
    assert isinstance(reason, str)
    assert reason
    assert "\n" not in reason
    return response.status, reason


async def test_the_token_guards_everything_but_the_health_check(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    async with running_server(serve_config(token=TOKEN), resources) as (_server, url):
        async with http.get(url) as response:
            assert await refusal(response) == (401, "this server needs a token: Authorization: Bearer TOKEN")
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        async with http.get(url, params={"token": "wrong"}) as response:
            assert await refusal(response) == (403, "the token is not valid")
        async with http.get(url, params={"token": TOKEN}) as response:
            assert response.status == 200
            assert "<title>avagent call</title>" in await response.text()
        async with http.post(url + "offer", json={}) as response:
            assert (await refusal(response))[0] == 401
        async with http.post(url + "offer", json={}, headers={"Authorization": "Basic abc"}) as response:
            assert await refusal(response) == (401, "the Authorization header must be 'Bearer TOKEN'")
        async with http.post(url + "offer", json={}, headers={"Authorization": "Bearer nope"}) as response:
            assert (await refusal(response))[0] == 403
        async with http.get(url + "healthz") as response:
            assert await response.json() == {"status": "ok", "calls": 0, "max_calls": 16}

        peer = CallPeer(url, token=TOKEN)
        try:
            await peer.call(SpokenAudioTrack(np.zeros(4800, np.float32)))
        finally:
            await peer.hang_up()


async def test_the_token_can_come_from_the_environment(
    resources: Resources, monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(ConfigError, match="AVAGENT_TEST_TOKEN is not set"):
        CallServer(serve_config(token_env="AVAGENT_TEST_TOKEN"), resources=resources)
    monkeypatch.setenv("AVAGENT_TEST_TOKEN", TOKEN)
    async with (
        running_server(serve_config(token_env="AVAGENT_TEST_TOKEN"), resources) as (_server, url),
        http.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as response,
    ):
        assert response.status == 200


async def test_the_ice_servers_come_with_the_token_and_the_page_holds_none(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    config = serve_config(
        token=TOKEN,
        ice_servers=[
            {"urls": "stun:stun.example.org:3478"},
            {"urls": ["turn:turn.example.org:3478"], "username": "</script><b>", "credential": "pw-TURN"},
        ],
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with running_server(config, resources) as (_server, url):
        async with http.get(url, params={"token": TOKEN}) as response:
            page = await response.text()
            assert response.headers["Referrer-Policy"] == "no-referrer"
        async with http.get(url + "ice-servers") as response:
            assert (await refusal(response))[0] == 401
        async with http.get(url + "ice-servers", headers=auth) as response:
            assert response.headers["Cache-Control"] == "no-store"
            ice = await response.json()
    assert response.headers["Content-Type"].startswith("application/json")
    assert ice == {
        "iceServers": [
            {"urls": ["stun:stun.example.org:3478"]},
            {"urls": ["turn:turn.example.org:3478"], "username": "</script><b>", "credential": "pw-TURN"},
        ]
    }
    assert "pw-TURN" not in page
    assert "turn.example.org" not in page


async def test_bad_offers_are_refused_while_a_call_goes_on_undisturbed(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    scene = synthesize_scene(["turn left"], lead_s=2.5, tail_s=1.0, snr_db=30.0, sample_rate=48000, seed=5)
    offer = await real_offer()
    async with running_server(serve_config(max_offer_bytes=8192), resources) as (server, url):
        peer = CallPeer(url)
        try:
            await peer.call(SpokenAudioTrack(scene.audio))
            refusals = []

            async def post(
                data: bytes, content_type: str = "application/json", chunked: bool = False
            ) -> None:
                body: bytes | AsyncIterator[bytes] = data
                if chunked:

                    async def chunks() -> AsyncIterator[bytes]:
                        for i in range(0, len(data), 1000):
                            yield data[i : i + 1000]

                    body = chunks()
                headers = {"Content-Type": content_type}
                async with http.post(url + "offer", data=body, headers=headers) as response:
                    refusals.append(await refusal(response))

            await post(b"v=0", "text/plain")
            await post(
                json.dumps({"sdp": offer, "type": "offer"}).encode(), "application/x-www-form-urlencoded"
            )
            await post(b"{" + b" " * 9000 + b"}")
            await post(b"{" + b" " * 9000 + b"}", chunked=True)
            await post(b"{not json")
            await post(json.dumps({"sdp": offer, "type": "answer"}).encode())
            await post(json.dumps({"sdp": offer.replace("m=audio", "m=text"), "type": "offer"}).encode())
            await post(
                json.dumps({"sdp": offer.replace("a=ice-ufrag", "a=x-ufrag"), "type": "offer"}).encode()
            )
            broken_fingerprint = offer.replace("a=fingerprint:sha-256 ", "a=fingerprint:sha-256 ZZ")
            await post(json.dumps({"sdp": broken_fingerprint, "type": "offer"}).encode())

            call = await peer.wait_for_event("tool_call")
        finally:
            await peer.hang_up()

    statuses = [status for status, _reason in refusals]
    assert statuses == [415, 415, 413, 413, 400, 400, 400, 400, 400]
    assert "ICE username fragment or password is missing" in refusals[7][1]
    assert call["name"] == "turn"
    assert not server.sessions


async def test_mangled_offers_get_400_or_an_answer_never_a_crash(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    offer = await real_offer()
    lines = offer.strip().split("\r\n")
    rng = random.Random(11)
    config = serve_config(connect_timeout_s=0.5, max_calls=64)
    statuses: list[int] = []
    async with running_server(config, resources) as (server, url):
        for _ in range(60):
            mangled = list(lines)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(1, len(mangled))
                roll = rng.random()
                if roll < 0.35:
                    del mangled[i]
                elif roll < 0.7:
                    head, _, _tail = mangled[i].partition(":")
                    mangled[i] = (
                        head + ":" + rng.choice(["", "-1", "99999999999999999999", "x y z", "0 0 0 0 0"])
                    )
                else:
                    mangled.insert(i, mangled[rng.randrange(1, len(mangled))])
            body = {"sdp": "\r\n".join(mangled) + "\r\n", "type": "offer"}
            async with http.post(url + "offer", json=body) as response:
                statuses.append(response.status)
                if response.status != 200:
                    await refusal(response)
        # Answered offers that never connect end by themselves.
        async with asyncio.timeout(20):
            await server.wait_for_calls(0)
        # And the server still takes a real call.
        peer = CallPeer(url)
        try:
            await peer.call(SpokenAudioTrack(np.zeros(4800, np.float32)))
        finally:
            await peer.hang_up()
    assert set(statuses) <= {200, 400}
    assert statuses.count(400) >= 10


async def test_a_full_server_answers_503_until_a_call_ends(
    resources: Resources, http: aiohttp.ClientSession
) -> None:
    silence = np.zeros(4800, np.float32)
    async with running_server(serve_config(max_calls=1), resources) as (server, url):
        first = CallPeer(url)
        second = CallPeer(url)
        third = CallPeer(url)
        try:
            await first.call(SpokenAudioTrack(silence))
            async with http.get(url + "healthz") as response:
                assert (await response.json())["calls"] == 1
            with pytest.raises(CallRefused) as refused:
                await second.call(SpokenAudioTrack(silence))
            assert refused.value.status == 503
            assert "the server is full (1 calls)" in refused.value.reason
            await first.hang_up()
            async with asyncio.timeout(10):
                await server.wait_for_calls(0)
            await third.call(SpokenAudioTrack(silence))
            assert list(server.sessions) == [third.call_id]
        finally:
            for peer in (first, second, third):
                await peer.hang_up()
