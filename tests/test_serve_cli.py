"""``avagent serve`` as a user runs it: the command, its settings, HTTPS, and clean stops."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import re
import signal
import socket
import ssl
import sys
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from avagent.agent.config import load_config, parse_config
from avagent.agent.resources import Resources
from avagent.agent.serve.server import CallServer, running_server
from avagent.core.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


async def avagent(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "avagent", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def fails_with(*args: str) -> str:
    """Run ``avagent`` and return its one line of error, checking exit status 2 and no traceback."""
    process = await avagent(*args)
    _out, err = await process.communicate()
    text = err.decode()
    assert process.returncode == 2, text
    assert "Traceback" not in text
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert lines[0].startswith("avagent: error: ")
    return lines[0]


def test_the_example_config_is_valid() -> None:
    serve = load_config(REPO / "configs" / "webrtc.yaml").serve
    assert serve.token_env == "AVAGENT_TOKEN"
    assert [s.urls for s in serve.ice_servers] == [
        ["stun:stun.example.org:3478"],
        ["turn:turn.example.org:3478?transport=udp"],
    ]


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ({"max_calls": 0}, "serve.max_calls: Input should be greater than or equal to 1"),
        ({"colour": "blue"}, "serve.colour: unknown setting"),
        ({"ice_servers": [{"urls": "http://x"}]}, "is not a stun:, turn: or turns: URL"),
        ({"ice_servers": [{"urls": "turn:x:3478"}]}, "needs a username and a credential"),
    ],
)
def test_bad_serve_settings_are_named(setting: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        parse_config({"serve": setting})


async def test_bad_command_lines_end_with_one_line_and_status_2(tmp_path: Path) -> None:
    assert "no such config file" in await fails_with("serve", "--config", str(tmp_path / "missing.yaml"))
    assert "serve.port" in await fails_with("serve", "--port", "70000")
    bad = tmp_path / "bad.yaml"
    bad.write_text("serve:\n  max_offer_bytes: 10\n", encoding="utf-8")
    assert "serve.max_offer_bytes" in await fails_with("serve", "--config", str(bad))


@pytest.mark.slow
async def test_a_taken_port_is_reported_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = await fails_with("serve", "--port", str(port))
    assert f"cannot listen on 127.0.0.1:{port}" in line


@pytest.mark.slow
async def test_the_server_answers_until_sigterm_then_stops_cleanly(tmp_path: Path) -> None:
    config = tmp_path / "serve.yaml"
    config.write_text("serve:\n  loopback_only: true\n  port: 0\n", encoding="utf-8")
    process = await avagent("serve", "--config", str(config))
    assert process.stderr is not None
    try:
        async with asyncio.timeout(60):
            line = (await process.stderr.readline()).decode()
        found = re.search(r"answering calls at (http://127\.0\.0\.1:\d+/); Ctrl-C stops", line)
        assert found, line
        url = found.group(1)
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "healthz") as response:
                assert await response.json() == {"status": "ok", "calls": 0, "max_calls": 16}
            async with http.get(url) as response:
                assert "avagent call" in await response.text()
    finally:
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            _out, rest = await process.communicate()
    assert process.returncode == 0
    assert "Traceback" not in rest.decode()


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


async def test_the_server_speaks_https_with_a_given_certificate(resources: Resources, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    config = parse_config({"serve": {"port": 0, "tls_cert": str(cert), "tls_key": str(key)}})
    trust = ssl.create_default_context(cafile=str(cert))
    async with (
        running_server(config, resources) as (_server, url),
        aiohttp.ClientSession() as http,
        http.get(url + "healthz", ssl=trust) as response,
    ):
        assert url.startswith("https://127.0.0.1:")
        assert (await response.json())["status"] == "ok"

    broken = parse_config({"serve": {"port": 0, "tls_cert": str(tmp_path / "none.pem")}})
    server = CallServer(broken, resources=resources)
    with pytest.raises(ConfigError, match=r"serve\.tls_cert: cannot load the certificate"):
        await server.start()
    await server.stop()
