"""Screening of call offers, and the loopback-only candidate rules."""

from __future__ import annotations

import json

import pytest

from avagent.core.text import one_line
from avagent.io.webrtc.loopback import is_loopback_candidate, keep_loopback_candidates
from avagent.io.webrtc.offer import MAX_MEDIA_SECTIONS, OfferRejected, parse_offer_body, screen_sdp

BROWSER_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1 2",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0",
        "a=candidate:2 1 udp 2122194687 192.0.2.7 50001 typ host generation 0",
        "a=candidate:3 1 udp 2122129151 abcd.local 50002 typ host generation 0",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:0123456789abcdef0123456789",
        "a=fingerprint:sha-256 " + ":".join(["A7"] * 32),
        "a=rtpmap:111 opus/48000/2",
        "m=video 9 UDP/TLS/RTP/SAVPF 96",
        "a=rtpmap:96 VP8/90000",
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
        "a=sctp-port:5000",
        "",
    ]
)


def body(sdp: object, kind: object = "offer") -> bytes:
    return json.dumps({"sdp": sdp, "type": kind}).encode()


def test_a_browser_offer_passes_with_its_media_listed() -> None:
    offer = parse_offer_body(body(BROWSER_OFFER))
    assert offer.media == ("audio", "video", "application")
    assert offer.sdp.startswith("v=0\r\n")
    assert offer.sdp.endswith("\r\n")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (body(BROWSER_OFFER, "answer"), '"type" must be "offer"'),
        (body(None), '"sdp" must be a string'),
        (body(42), '"sdp" must be a string'),
    ],
)
def test_a_body_that_is_not_an_offer_is_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(OfferRejected) as refused:
        parse_offer_body(raw)
    assert refused.value.status == 400
    assert reason in refused.value.reason


AUDIO = "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=fingerprint:sha-256 AB:CD"


@pytest.mark.parametrize(
    ("sdp", "reason"),
    [
        ("", 'start with "v=0"'),
        ("hello\r\n" + AUDIO, 'start with "v=0"'),
        ("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=fingerprint:sha-1 AB:CD\r\n", "no audio"),
        ("v=0\r\n" + AUDIO + "\r\na=x\x00y\r\n", "line 4 is not a valid SDP line"),
        ("v=0\r\n" + AUDIO + "\r\n<script>alert(1)</script>\r\n", "line 4"),
        ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "no DTLS fingerprint"),
        ("v=0\r\n" + AUDIO + "\r\na=fingerprint:sha-256 ZZ:00\r\n", "not a valid DTLS fingerprint"),
        ("v=0\r\n" + AUDIO + "\r\na=fingerprint:md5 AB:CD\r\n", "not a valid DTLS fingerprint"),
        ("v=0\r\n" + AUDIO + "\r\na=" + "x" * 5000 + "\r\n", "longer than"),
        ("v=0\r\n" + (AUDIO + "\r\n") * 2, "more than one audio"),
        ("v=0\r\n" + "\r\n".join([AUDIO] + ["m=video 9 RTP/AVP 96"] * MAX_MEDIA_SECTIONS), "media sections"),
        ("v=0\r\n" + AUDIO + "\r\nm=text 9 RTP/AVP 98\r\n", "unsupported media: text"),
    ],
)
def test_a_hostile_or_broken_sdp_is_refused_with_a_reason(sdp: str, reason: str) -> None:
    with pytest.raises(OfferRejected) as refused:
        screen_sdp(sdp)
    assert refused.value.status == 400
    assert reason in refused.value.reason
    assert "\n" not in refused.value.reason


def test_reasons_are_one_printable_line_of_bounded_length() -> None:
    assert one_line("a\r\nb\tc\x00d") == "a b c d"
    assert len(one_line("x" * 1000)) == 200


def test_loopback_mode_keeps_only_loopback_candidates() -> None:
    kept = keep_loopback_candidates(BROWSER_OFFER)
    candidates = [line for line in kept.split("\r\n") if line.startswith("a=candidate:")]
    assert candidates == ["a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host generation 0"]
    # Everything else is left as it was.
    assert kept.replace("\r\n", "") == "".join(
        line for line in BROWSER_OFFER.split("\r\n") if "192.0.2.7" not in line and ".local" not in line
    )
    assert is_loopback_candidate("candidate:9 1 udp 1 ::1 5000 typ host")
    assert not is_loopback_candidate("candidate:9 1 udp")
