"""The STUN and TURN servers of a call, with the credentials each caller is given.

A TURN server relays media for anyone who holds its credential, so the credential is handed only
to a caller who has the server's token: a config with a TURN server and no token is refused at
start. A TURN server that shares a secret with this one (coturn's ``use-auth-secret``, the "TURN
REST API") gets a fresh credential per request instead of a fixed one: the username is
``EXPIRY:avagent`` (EXPIRY in Unix seconds) and the credential ``base64(HMAC-SHA1(secret,
username))``, so a leaked one expires by itself. The secret stays in its environment variable and
in this process; nothing here logs or reports a credential.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from typing import Any

from aiortc import RTCIceServer

from avagent.agent.serve.config import IceServerConfig, ServeConfig
from avagent.core.errors import ConfigError

TURN_USER = "avagent"


def rest_credential(secret: str, expires: int) -> tuple[str, str]:
    """The TURN REST API's (username, credential) for ``secret``, valid until ``expires`` (Unix s)."""
    username = f"{expires}:{TURN_USER}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


class IceServers:
    """The ICE servers of ``serve``, with their secrets read once: ``ConfigError`` at construction
    if a secret's environment variable is not set, or if a TURN server has no token to guard it."""

    def __init__(self, serve: ServeConfig, *, has_token: bool) -> None:
        self._servers = list(serve.ice_servers)
        self._ttl_s = serve.turn_credential_ttl_s
        self._secrets: dict[int, str] = {}
        for index, server in enumerate(self._servers):
            if server.is_turn and not has_token:
                raise ConfigError(
                    f"serve.ice_servers.{index}: a TURN credential is given only to callers with the "
                    "token; set serve.token or serve.token_env (or remove the TURN server)"
                )
            if server.secret_env is not None:
                secret = os.environ.get(server.secret_env)
                if not secret:
                    raise ConfigError(
                        f"serve.ice_servers.{index}.secret_env: the environment variable "
                        f"{server.secret_env} is not set"
                    )
                self._secrets[index] = secret

    def _credentials(self, index: int, server: IceServerConfig, now: float) -> tuple[str | None, str | None]:
        secret = self._secrets.get(index)
        if secret is None:
            return server.username, server.credential
        return rest_credential(secret, int(now + self._ttl_s))

    def for_caller(self, now: float | None = None) -> list[dict[str, Any]]:
        """The browser's ``iceServers`` (RTCIceServer dictionaries), with fresh credentials."""
        now = time.time() if now is None else now
        out: list[dict[str, Any]] = []
        for index, server in enumerate(self._servers):
            entry: dict[str, Any] = {"urls": list(server.urls)}
            username, credential = self._credentials(index, server, now)
            if username is not None and credential is not None:
                entry.update(username=username, credential=credential)
            out.append(entry)
        return out

    def for_server(self, now: float | None = None) -> list[RTCIceServer]:
        """The same servers for this end of the call (aiortc)."""
        return [
            RTCIceServer(entry["urls"], entry.get("username"), entry.get("credential"))
            for entry in self.for_caller(now)
        ]
