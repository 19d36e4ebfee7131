"""The ``serve:`` section of the configuration: the call server (see docs/webrtc.md)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from avagent.agent.settings import Section


class IceServerConfig(Section):
    """A STUN or TURN server for calls (``turn:`` / ``turns:`` with a username and credential)."""

    urls: list[str] = Field(min_length=1)
    username: str | None = None
    credential: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("urls"), str):
            return {**data, "urls": [data["urls"]]}
        return data

    @model_validator(mode="after")
    def _urls_known(self) -> IceServerConfig:
        for url in self.urls:
            scheme = url.split(":", 1)[0]
            if scheme not in ("stun", "stuns", "turn", "turns") or ":" not in url:
                raise ValueError(f"{url!r} is not a stun:, turn: or turns: URL")
            if scheme.startswith("turn") and (self.username is None or self.credential is None):
                raise ValueError(f"the TURN server {url} needs a username and a credential")
        return self


class ServeConfig(Section):
    """``avagent serve``: the call server (see docs/webrtc.md)."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    ice_servers: list[IceServerConfig] = Field(default_factory=list)
    """STUN/TURN servers for both ends of each call; none is right on one machine or a LAN."""
    loopback_only: bool = False
    """Every ICE candidate on 127.0.0.1: caller and server on this machine (tests, sandboxes)."""
    token: str | None = None
    """A bearer token every request but ``/healthz`` must carry (header, or ``?token=`` for the page)."""
    token_env: str | None = None
    """Or: the environment variable that holds the token (keeps it out of the file)."""
    max_calls: int = Field(default=16, ge=1, le=1000)
    max_offer_bytes: int = Field(default=65536, ge=1024, le=1 << 22)
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
