"""Checks on a call offer before any of it reaches the WebRTC stack.

The body of ``POST /offer`` comes from anyone who can reach the server. It is read against a size
limit, parsed as JSON, and its SDP is screened for what a browser never sends and what would cost
the server (many media sections, each with its own sockets; control characters; absurd lines).
What passes may still be refused by aiortc's own parser, which the session reports the same way.
Every refusal is an ``OfferRejected`` with an HTTP status and a one-line reason.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from avagent.core.text import one_line

MAX_MEDIA_SECTIONS = 3
"""Audio, video and the data channel: what the call page offers."""
MAX_LINE_CHARS = 4096
_SDP_LINE = re.compile(r"^[a-z]=[\x20-\x7e\t]*$")
_FINGERPRINT = re.compile(r"^a=fingerprint:sha-(1|224|256|384|512) [0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$")


class OfferRejected(Exception):
    """The offer is refused; ``status`` is the HTTP status, the message a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(one_line(reason))
        self.status = status

    @property
    def reason(self) -> str:
        return str(self)


@dataclass(frozen=True, slots=True)
class Offer:
    """A screened SDP offer and what it asks for."""

    sdp: str
    media: tuple[str, ...]
    """Kinds of the media sections in order: ``audio``, ``video``, ``application``."""


def parse_offer_body(body: bytes) -> Offer:
    """The offer in a request body ``{"sdp": ..., "type": "offer"}``, screened."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OfferRejected(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OfferRejected(400, 'the body must be a JSON object {"sdp": ..., "type": "offer"}')
    if data.get("type") != "offer":
        raise OfferRejected(400, f'"type" must be "offer", not {data.get("type")!r}')
    sdp = data.get("sdp")
    if not isinstance(sdp, str):
        raise OfferRejected(400, '"sdp" must be a string')
    return screen_sdp(sdp)


def screen_sdp(sdp: str) -> Offer:
    """Refuse an SDP that no browser would send or that would cost the server more than a call."""
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    if not lines or lines[0] != "v=0":
        raise OfferRejected(400, 'the SDP must start with "v=0"')
    media: list[str] = []
    fingerprints = 0
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_CHARS:
            raise OfferRejected(400, f"SDP line {number} is longer than {MAX_LINE_CHARS} characters")
        if not _SDP_LINE.match(line):
            raise OfferRejected(400, f"SDP line {number} is not a valid SDP line")
        if line.startswith("m="):
            media.append(line[2:].split(" ", 1)[0])
        elif line.startswith("a=fingerprint:"):
            if not _FINGERPRINT.match(line):
                raise OfferRejected(400, f"SDP line {number} is not a valid DTLS fingerprint")
            fingerprints += 1
    if len(media) > MAX_MEDIA_SECTIONS:
        raise OfferRejected(400, f"the SDP has {len(media)} media sections; at most {MAX_MEDIA_SECTIONS}")
    unknown = sorted(set(media) - {"audio", "video", "application"})
    if unknown:
        raise OfferRejected(400, f"the SDP has unsupported media: {', '.join(unknown)}")
    for kind in ("audio", "video", "application"):
        if media.count(kind) > 1:
            raise OfferRejected(400, f"the SDP has more than one {kind} section")
    if "audio" not in media:
        raise OfferRejected(400, "the SDP offers no audio: the call needs the microphone")
    if fingerprints == 0:
        raise OfferRejected(400, "the SDP has no DTLS fingerprint: WebRTC media must be encrypted")
    return Offer("\r\n".join(lines) + "\r\n", tuple(media))
