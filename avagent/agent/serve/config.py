"""The ``serve:`` section of the configuration: the call server (see docs/webrtc.md).

Validation errors name the setting and may quote the value given (the config's error messages do),
so nothing here validates a whole section at once: a check that needs several fields is attached
to a field that holds no secret, and a token or credential given as a number is taken as text
rather than refused (and so quoted).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from avagent.agent.settings import Section


def _number_as_text(value: Any) -> Any:
    # YAML reads `token: 123456` as a number: take it as the text it was meant to be.
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class IceServerConfig(Section):
    """A STUN or TURN server for calls. A TURN server needs a ``username`` and ``credential``, or
    ``secret_env``: then every caller gets a short-lived credential computed from the secret (the
    "TURN REST API" of coturn's ``use-auth-secret``)."""

    username: str | None = None
    credential: str | None = None
    secret_env: str | None = None
    """The environment variable that holds the TURN server's shared secret (coturn's
    ``static-auth-secret``). Credentials made from it expire after ``serve.turn_credential_ttl_s``."""
    urls: list[str] = Field(min_length=1)
    # Checked last, against the fields above: its errors quote the URLs, never a credential.

    @field_validator("credential", mode="before")
    @classmethod
    def _credential_text(cls, value: Any) -> Any:
        return _number_as_text(value)

    @field_validator("urls", mode="before")
    @classmethod
    def _one_url(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("urls")
    @classmethod
    def _urls_known(cls, urls: list[str], info: ValidationInfo) -> list[str]:
        username, credential = info.data.get("username"), info.data.get("credential")
        secret_env = info.data.get("secret_env")
        for url in urls:
            scheme = url.split(":", 1)[0]
            if scheme not in ("stun", "stuns", "turn", "turns") or ":" not in url:
                raise ValueError(f"{url!r} is not a stun:, turn: or turns: URL")
            if not scheme.startswith("turn"):
                if secret_env is not None:
                    raise ValueError(f"secret_env is for TURN servers, and {url} is a STUN server")
                continue
            if secret_env is not None and (username is not None or credential is not None):
                raise ValueError(f"the TURN server {url} has secret_env and a username or credential")
            if secret_env is None and (username is None or credential is None):
                raise ValueError(f"the TURN server {url} needs a username and a credential, or secret_env")
        return urls

    @property
    def is_turn(self) -> bool:
        return any(url.startswith("turn") for url in self.urls)


class ServeConfig(Section):
    """``avagent serve``: the call server (see docs/webrtc.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    ice_servers: list[IceServerConfig] = Field(default_factory=list)
    """STUN/TURN servers for both ends of each call; none is right on one machine or a LAN. A TURN
    server needs ``token`` (or ``token_env``): its credential is given only to callers with it."""
    turn_credential_ttl_s: float = Field(default=3600.0, ge=60.0, le=7 * 86400.0)
    """How long a TURN credential made from ``secret_env`` is valid: longer than the longest call."""
    loopback_only: bool = False
    """Every ICE candidate on 127.0.0.1: caller and server on this machine (tests, sandboxes)."""
    ice_allowed_networks: list[str] = Field(default_factory=lambda: ["0.0.0.0/0", "::/0"])
    """The networks (CIDRs) whose addresses the server may send connectivity checks to; an offer's
    candidates elsewhere are dropped. Multicast, unspecified, broadcast, reserved and link-local
    addresses, ports below 1024, and loopback (unless ``loopback_only``) are dropped whatever this says."""
    max_ice_candidates: int = Field(default=16, ge=1, le=256)
    """Distinct usable ICE candidates an offer may name (each is probed): more, and it is refused."""
    token: str | None = None
    """A bearer token every request but ``/healthz`` must carry (header, or ``?token=`` for the page)."""
    token_env: str | None = None
    """Or: the environment variable that holds the token (keeps it out of the file)."""
    max_calls: int = Field(default=16, ge=1, le=1000)
    """Calls in progress, counting offers still arriving or being answered; more get 503."""
    max_offer_bytes: int = Field(default=65536, ge=1024, le=1 << 22)
    max_connections: int = Field(default=256, ge=4, le=65536)
    """Open HTTP connections. At the cap a new one displaces the oldest that has no request in
    progress (sending its headers, or idle); if every one is busy, the new one gets 503."""
    max_header_bytes: int = Field(default=16384, ge=1024, le=1 << 20)
    """The most a request's head (request line and headers) may take; more gets 431."""
    header_timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)
    """A request's head must have arrived this long after its first byte (or after the connection
    opened); otherwise 408 and the connection is closed. Also the TLS handshake's limit."""
    body_timeout_s: float = Field(default=10.0, gt=0.0, le=300.0)
    """An offer's body must have arrived this long after its head; otherwise 408, connection closed."""
    keepalive_timeout_s: float = Field(default=15.0, gt=0.0, le=3600.0)
    """A connection with no request for this long is closed."""
    idle_timeout_s: float = Field(default=600.0, gt=0.0)
    """Hang up after this long with nobody speaking."""
    stall_timeout_s: float = Field(default=2.0, gt=0.0, le=60.0)
    """Hang up when the caller's audio stops arriving for this long (the browser vanished)."""
    connect_timeout_s: float = Field(default=15.0, gt=0.0)
    """Give up on a call whose media has not started this long after the answer."""
    video_fps: float = Field(default=5.0, ge=0.0, le=60.0)
    """Camera frames per second handed to sight (0: none)."""
    tls_cert: str | None = None
    """A PEM certificate (chain) to serve HTTPS: browsers on other machines, phones above all,
    give the page the microphone and camera only over HTTPS."""
    tls_key: str | None = None
    """Its private key, if not in the certificate file."""

    @field_validator("token", mode="before")
    @classmethod
    def _token_text(cls, value: Any) -> Any:
        return _number_as_text(value)

    @field_validator("ice_allowed_networks")
    @classmethod
    def _networks_valid(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"{network!r} is not a network (CIDR such as 192.168.0.0/16)") from None
        return networks
