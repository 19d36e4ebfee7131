"""The robot bus over TLS with a username and a password: the password comes from the environment
and never shows in a log line, an event or an error, whether it is right or wrong."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import logging
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from avagent.agent.agent import Agent
from avagent.agent.config import parse_config
from avagent.agent.resources import Resources
from avagent.core.errors import ConfigError
from avagent.core.recorder import EventRecorder
from avagent.io.wall_clock import WallClockSource
from tests.mosquitto import Broker

SECRET = "s3cret-Passw0rd-for-the-bus"


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def _write_pki(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1 signed by it: (ca, cert, key) files."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "avagent test CA")])
    ca = _certificate("avagent test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate("127.0.0.1", key, ca_name, ca_key, ca=False)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return paths


@pytest.fixture
def secure_broker(tmp_path: Path) -> Iterator[tuple[Broker, Path]]:
    ca, cert, key = _write_pki(tmp_path)
    passwords = tmp_path / "passwords"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwords), "ava", SECRET], check=True, capture_output=True
    )
    passwords.chmod(0o600)
    broker = Broker(tmp_path, f"certfile {cert}\nkeyfile {key}\npassword_file {passwords}\n", anonymous=False)
    broker.start()
    yield broker, ca
    broker.stop()


async def _run_briefly(config_data: dict[str, object], resources: Resources) -> tuple[Agent, EventRecorder]:
    agent = Agent(parse_config(config_data), resources=resources, realtime=True)
    recorder = EventRecorder(agent.bus)
    agent.add_stage(recorder)
    task = asyncio.create_task(agent.run(WallClockSource(agent.clock)))
    await asyncio.sleep(1.5)
    await agent.stop()
    await asyncio.wait_for(task, 10.0)
    return agent, recorder


async def test_tls_and_a_password_from_the_environment_never_logged(
    secure_broker: tuple[Broker, Path],
    resources: Resources,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker, ca = secure_broker
    mqtt = {
        "url": f"mqtts://ava@127.0.0.1:{broker.port}",
        "agent_id": "secure",
        "password_env": "AVA_TEST_MQTT_PASSWORD",
        "tls": {"ca_file": str(ca)},
    }
    monkeypatch.delenv("AVA_TEST_MQTT_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="AVA_TEST_MQTT_PASSWORD is not set"):
        Agent(parse_config({"mqtt": mqtt}), resources=resources)
    with pytest.raises(ConfigError, match="no password in the URL"):
        Agent(
            parse_config({"mqtt": {**mqtt, "url": f"mqtts://ava:{SECRET}@127.0.0.1:1"}}), resources=resources
        )

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("AVA_TEST_MQTT_PASSWORD", SECRET)
    tls = aiomqtt.TLSParameters(ca_certs=str(ca))
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, username="ava", password=SECRET, tls_params=tls
    ) as client:
        await client.subscribe("avagent/secure/status", qos=1)
        agent, recorder = await _run_briefly({"mqtt": mqtt}, resources)
        robot = agent.parts.robot
        assert robot is not None
        assert robot.bus_link is not None
        assert robot.bus_link.link.connections == 1, "connected over TLS with the password"
        async with asyncio.timeout(5.0):
            states = []
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                states.append(json.loads(message.payload)["state"])
                if states[-1] == "offline":
                    break
        assert states[0] == "online"
        assert SECRET not in repr(robot.bus_link.link.settings)

    monkeypatch.setenv("AVA_TEST_MQTT_PASSWORD", SECRET[::-1])
    agent, recorder = await _run_briefly({"mqtt": mqtt}, resources)
    robot = agent.parts.robot
    assert robot is not None
    assert robot.bus_link is not None
    assert robot.bus_link.link.connections == 0, "a wrong password is refused"
    assert robot.bus_link.link.failures >= 1
    seen = caplog.text + json.dumps([e.to_dict() for e in recorder.events])
    assert "mqtt" in caplog.text.lower()
    assert SECRET not in seen
    assert SECRET[::-1] not in seen
