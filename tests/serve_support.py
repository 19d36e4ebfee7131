"""Helpers of the call-server limit tests: a server config, raw HTTP over sockets, a fresh
connection per request."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pytest

from avagent.agent.config import AgentConfig, parse_config

TOKEN = "limits-token-8f2c1d"
SILENCE = np.zeros(4800, np.float32)


def serve_config(**serve: object) -> AgentConfig:
    return parse_config({"serve": {"loopback_only": True, "port": 0, **serve}})


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None
    return port


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A new connection per request: each one has to get past whatever holds the others.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        yield session


async def healthy(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with asyncio.timeout(10), http.get(url + "healthz") as response:
        assert response.status == 200
        data: dict[str, Any] = await response.json()
        return data


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) of one HTTP response; (0, {}) if the connection ends without one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return 0, {}
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)
    }
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), json.loads(body) if body else {}


async def until_closed(reader: asyncio.StreamReader) -> None:
    """Read (and drop) until the server closes the connection."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


async def trickle(writer: asyncio.StreamWriter, data: bytes, every_s: float) -> None:
    """Send ``data`` a byte at a time, one every ``every_s``, until done or the connection breaks."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every_s)


def offer_head(port: int, length: int) -> bytes:
    return (
        f"POST /offer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


# --- offers count from their arrival --------------------------------------------------------
