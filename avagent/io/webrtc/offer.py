"""Checks on a call offer before any of it reaches the WebRTC stack.

The body of ``POST /offer`` comes from anyone who can reach the server. It is read against a size
limit, checked for nesting before it is parsed as JSON (a deeply nested body would exhaust the
parser's recursion), and its SDP is screened for what a browser never sends and what would cost
the server: many media sections, each with its own sockets; control characters; absurd lines; and
ICE candidates the server should not send packets to. Each candidate is a transport address the
server probes with STUN requests, so an offer could otherwise aim the server at any host and port
(a port scanner, or an amplifier). What passes may still be refused by aiortc's own parser, which
the session reports the same way. Every refusal is an ``OfferRejected`` with an HTTP status and a
one-line reason.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from avagent.core.text import one_line

MAX_MEDIA_SECTIONS = 3
"""Audio, video and the data channel: what the call page offers."""
MAX_LINE_CHARS = 4096
MAX_JSON_DEPTH = 8
"""An offer is one JSON object of strings: depth 1. Anything far deeper is not an offer."""
MIN_CANDIDATE_PORT = 1024
"""Browsers, NATs and TURN servers use ports above this; below are the well-known services."""
_SDP_LINE = re.compile(r"^[a-z]=[\x20-\x7e\t]*$")
_FINGERPRINT = re.compile(r"^a=fingerprint:sha-(1|224|256|384|512) [0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+$")
_CANDIDATE_TYPES = frozenset({"host", "srflx", "relay"})
# "This network": Linux delivers packets sent to 0.0.0.0 to the machine itself.
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[{]}")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class OfferRejected(Exception):
    """The offer is refused; ``status`` is the HTTP status, the message a one-line reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(one_line(reason))
        self.status = status

    @property
    def reason(self) -> str:
        return str(self)


def _everywhere() -> tuple[Network, ...]:
    return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))


@dataclass(frozen=True, slots=True)
class CandidateRules:
    """Which of an offer's ICE candidates the server may send connectivity checks to.

    A candidate is kept when it is UDP, names an IP address (not an mDNS ``.local`` name) in one of
    ``networks`` and a port from ``MIN_CANDIDATE_PORT`` up, and that address is not multicast,
    unspecified, broadcast, reserved, link-local or (unless ``loopback_only``) loopback. With
    ``loopback_only`` only loopback addresses are kept. An offer naming more than
    ``max_candidates`` distinct kept candidates is refused.
    """

    networks: tuple[Network, ...] = field(default_factory=_everywhere)
    loopback_only: bool = False
    max_candidates: int = 16

    @classmethod
    def from_cidrs(cls, cidrs: Iterable[str], *, loopback_only: bool, max_candidates: int) -> CandidateRules:
        networks = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)
        return cls(networks, loopback_only, max_candidates)

    def why_dropped(self, transport: str, host: str, port: int) -> str | None:
        """Why a candidate at ``host``:``port`` over ``transport`` is dropped; None if it is kept."""
        if transport.lower() != "udp":
            return "not UDP"
        if host.lower().rstrip(".").endswith(".local"):
            return "an mDNS name"
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return "not an IP address"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if port < MIN_CANDIDATE_PORT:
            return f"a port below {MIN_CANDIDATE_PORT}"
        if address.is_loopback:
            return None if self.loopback_only else "loopback"
        if self.loopback_only:
            return "not loopback (loopback_only)"
        if (
            address.is_multicast
            or address.is_unspecified
            or address.is_reserved
            or address.is_link_local
            or address in _THIS_NETWORK
        ):
            return "a special-purpose address"
        if not any(address in network for network in self.networks):
            return "outside the allowed networks"
        return None


@dataclass(frozen=True, slots=True)
class Offer:
    """A screened SDP offer and what it asks for."""

    sdp: str
    media: tuple[str, ...]
    """Kinds of the media sections in order: ``audio``, ``video``, ``application``."""
    candidates: int = 0
    """Distinct ICE candidates kept."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Candidate lines dropped, by reason."""


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects more than ``limit`` deep.

    Done on the bytes, without recursion: brackets inside strings do not count. For text that is
    not valid JSON the answer may be wrong either way, and the parser then refuses it anyway."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    # An escaped backslash, then an escaped quote, can be taken out: what is left splits on quotes
    # into outside (even) and inside (odd) pieces of strings.
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(plain.split(b'"')[0::2])
    steps = np.frombuffer(outside.translate(_BRACKET_STEPS, _NOT_BRACKETS), dtype=np.int8)
    return bool(steps.size) and int(np.cumsum(steps, dtype=np.int64).max()) > limit


def parse_offer_body(body: bytes, rules: CandidateRules | None = None) -> Offer:
    """The offer in a request body ``{"sdp": ..., "type": "offer"}``, screened."""
    if json_too_deep(body):
        raise OfferRejected(400, f"the body is nested deeper than {MAX_JSON_DEPTH} levels: not an offer")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OfferRejected(400, f"the body is not valid JSON: {exc}") from None
    except RecursionError:
        raise OfferRejected(400, "the body is nested too deeply: not an offer") from None
    if not isinstance(data, dict):
        raise OfferRejected(400, 'the body must be a JSON object {"sdp": ..., "type": "offer"}')
    if data.get("type") != "offer":
        kind = data.get("type")
        shown = repr(kind) if isinstance(kind, str | None) else type(kind).__name__
        raise OfferRejected(400, f'"type" must be "offer", not {shown}')
    sdp = data.get("sdp")
    if not isinstance(sdp, str):
        raise OfferRejected(400, '"sdp" must be a string')
    return screen_sdp(sdp, rules)


def screen_sdp(sdp: str, rules: CandidateRules | None = None) -> Offer:
    """Refuse an SDP that no browser would send or that would cost the server more than a call,
    and drop the ICE candidates that ``rules`` (by default: any network) do not allow."""
    rules = rules or CandidateRules()
    lines = sdp.replace("\r\n", "\n").rstrip("\n").split("\n")
    if not lines or lines[0] != "v=0":
        raise OfferRejected(400, 'the SDP must start with "v=0"')
    media: list[str] = []
    fingerprints = 0
    kept_lines: list[str] = []
    kept: set[tuple[str, str, int]] = set()
    dropped: dict[str, int] = {}
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
        elif line.startswith("a=candidate:"):
            component, transport, host, port, kind = _candidate_fields(line, number)
            reason = rules.why_dropped(transport, host, port)
            if reason is None and kind not in _CANDIDATE_TYPES:
                reason = "not of type host, srflx or relay"
            if reason is not None:
                dropped[reason] = dropped.get(reason, 0) + 1
                continue
            # Bundled media sections repeat the same candidates: one transport address, one probe.
            kept.add((component, host.lower(), port))
            if len(kept) > rules.max_candidates:
                raise OfferRejected(
                    400, f"the SDP names more than {rules.max_candidates} usable ICE candidates"
                )
        kept_lines.append(line)
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
    if dropped:
        # With end-of-candidates aioice gives up at once when none of the candidates is left. Without
        # it, it waits for the caller's own checks, whose source becomes a peer-reflexive candidate:
        # how a caller that names only mDNS addresses connects.
        kept_lines = [line for line in kept_lines if line != "a=end-of-candidates"]
    return Offer("\r\n".join(kept_lines) + "\r\n", tuple(media), len(kept), dropped)


def _candidate_fields(line: str, number: int) -> tuple[str, str, str, int, str]:
    """(component, transport, address, port, type) of an ``a=candidate:`` line (RFC 8839 section 5.1)."""
    fields = line[len("a=candidate:") :].split()
    if len(fields) < 8 or fields[6] != "typ":
        raise OfferRejected(400, f"SDP line {number} is not a valid ICE candidate")
    component, transport, _priority, host, port_text = fields[1:6]
    if not (component.isdigit() and port_text.isdigit() and int(port_text) <= 65535):
        raise OfferRejected(400, f"SDP line {number} is not a valid ICE candidate")
    return component, transport, host, int(port_text), fields[7]
