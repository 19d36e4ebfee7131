"""How to reach an MQTT broker: the ``mqtt://`` URL, credentials and TLS.

A password never appears in a URL, a config file, a log line or an error: it comes from an
environment variable named in the config, and ``MqttSettings`` keeps it out of its ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from avagent.core.errors import ConfigError

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None = None

    def describe(self) -> str:
        """The broker for people: its URL without credentials."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """``mqtt://[user@]host[:port]`` or ``mqtts://...`` (TLS); ``ConfigError`` otherwise. A
    password in the URL is refused: it belongs in the environment."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"mqtt.url: not a broker URL ({exc})") from None
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ConfigError("mqtt.url: give the broker as mqtt://HOST:PORT (or mqtts:// for TLS)")
    if not parts.hostname:
        raise ConfigError("mqtt.url: the broker's host is missing (mqtt://HOST:PORT)")
    if parts.password is not None:
        raise ConfigError("mqtt.url: put no password in the URL; name its variable in mqtt.password_env")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError("mqtt.url: only mqtt://[USER@]HOST[:PORT] is understood")
    tls = parts.scheme in ("mqtts", "ssl")
    return BrokerAddress(
        host=parts.hostname,
        port=port if port is not None else (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
        tls=tls,
        username=parts.username or None,
    )


@dataclass(frozen=True, slots=True)
class Tls:
    """TLS to the broker: the CA that signed its certificate (None: the system's), and a client
    certificate and key when the broker asks for one."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False
    """Do not check the broker's host name against its certificate (tests, private networks)."""


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """One connection to the broker."""

    broker: BrokerAddress
    client_id: str
    password: str | None = field(default=None, repr=False)
    tls: Tls | None = None
    keepalive_s: int = 5
    """The broker publishes the Last Will after 1.5 times this without a sign of life."""
    reconnect_min_s: float = 0.2
    reconnect_max_s: float = 5.0
    max_outbox: int = 1000
    """Messages waiting to be sent; events beyond are dropped and counted, acks keep the newest."""
