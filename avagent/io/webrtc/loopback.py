"""Loopback-only calls: every ICE candidate on 127.0.0.1, nothing leaves the machine.

aioice gathers host candidates on every interface except loopback, so two peers on one machine
with no network (a test, a sandbox) cannot find each other. Inside ``loopback_candidates()`` a
peer connection gathers 127.0.0.1 alone. The choice travels in a context variable, which the
gathering tasks that ``setLocalDescription`` starts inherit, so connections made outside the
block (other calls of the same server, in the same process) keep their normal candidates.

``keep_loopback_candidates`` does the other half on the answering side: it drops the offer's
candidates that are not on a loopback address, so a loopback-only server never sends a packet
to another host. (The server screens every offer's candidates first, loopback-only or not, with
``offer.CandidateRules``; this stays as the session's own guarantee.)
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Iterator

import aioice.ice

_LOOPBACK_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("avagent_loopback_only", default=False)
_original_host_addresses = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _LOOPBACK_ONLY.get():
        return ["127.0.0.1"] if use_ipv4 else ["::1"]
    return _original_host_addresses(use_ipv4=use_ipv4, use_ipv6=use_ipv6)


def _install() -> None:
    # aioice looks the function up in its module at each gathering, so replacing it there is
    # enough; the replacement defers to the original outside a loopback block.
    if aioice.ice.get_host_addresses is not _host_addresses:
        aioice.ice.get_host_addresses = _host_addresses


@contextlib.contextmanager
def loopback_candidates(enabled: bool = True) -> Iterator[None]:
    """Within the block, peer connections gather only loopback host candidates (when ``enabled``)."""
    if not enabled:
        yield
        return
    _install()
    token = _LOOPBACK_ONLY.set(True)
    try:
        yield
    finally:
        _LOOPBACK_ONLY.reset(token)


def is_loopback_candidate(line: str) -> bool:
    """Whether an SDP ``a=candidate:`` line names a loopback address (mDNS names are not)."""
    fields = line.split()
    if len(fields) < 6:
        return False
    try:
        return ipaddress.ip_address(fields[4]).is_loopback
    except ValueError:
        return False


def keep_loopback_candidates(sdp: str) -> str:
    """``sdp`` without the ICE candidates that are not on a loopback address."""
    lines = sdp.splitlines()
    kept = [line for line in lines if not line.startswith("a=candidate:") or is_loopback_candidate(line[2:])]
    return "\r\n".join(kept) + "\r\n"
