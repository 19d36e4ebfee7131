"""Tools of MCP servers (stdio or streamable HTTP), in the project's registry.

``McpToolbox`` opens one session per configured server and keeps it for the agent's life (a stdio
server is started once, not at every call), turns each server tool into a ``Tool`` with the
server's permission and timeout, and closes everything in ``stop``. The sessions run anyio task
groups: ``start`` and ``stop`` must be awaited in the same task.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from avagent.core.text import describe_error
from avagent.tools.langchain_tools import from_langchain
from avagent.tools.registry import Permission, Tool

log = logging.getLogger("avagent.mcp")


@dataclass(frozen=True, slots=True)
class McpServer:
    """An MCP server whose tools the agent may use (``tools.mcp_servers.NAME`` in the config)."""

    transport: Literal["stdio", "http", "streamable_http", "sse"] = "stdio"
    command: str | None = None
    """stdio: the program that runs the server."""
    args: Sequence[str] = ()
    env: Mapping[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    """http / sse: the server's endpoint (e.g. http://127.0.0.1:8000/mcp)."""
    headers: Mapping[str, str] = field(default_factory=dict)
    permission: Permission = "confirm"
    """Permission of this server's tools unless the tool rules name them."""
    timeout_s: float = 10.0
    prefix: bool = False
    """Name the tools ``SERVER_TOOL`` (avoids clashes between servers)."""


def connection(server: McpServer) -> dict[str, Any]:
    """The langchain-mcp-adapters connection for ``server``."""
    if server.transport == "stdio":
        conn: dict[str, Any] = {"transport": "stdio", "command": server.command, "args": list(server.args)}
        if server.env is not None:
            conn["env"] = dict(server.env)
        if server.cwd is not None:
            conn["cwd"] = server.cwd
        return conn
    transport = "sse" if server.transport == "sse" else "streamable_http"
    conn = {"transport": transport, "url": server.url, "timeout": server.timeout_s}
    if server.headers:
        conn["headers"] = dict(server.headers)
    return conn


class McpToolbox:
    """Sessions with the configured MCP servers and their tools."""

    def __init__(self, servers: Mapping[str, McpServer]) -> None:
        self.servers = dict(servers)
        self._stack: contextlib.AsyncExitStack | None = None
        self.tools: list[Tool] = []
        self.failures: dict[str, str] = {}
        """Server name -> why it could not be used (the others still are)."""

    async def start(self) -> list[Tool]:
        """Connect to every server and list its tools; a server that fails is left out and noted."""
        from langchain_mcp_adapters.client import MultiServerMCPClient
        from langchain_mcp_adapters.tools import load_mcp_tools

        if self._stack is not None:
            return self.tools
        client = MultiServerMCPClient({name: connection(s) for name, s in self.servers.items()})  # type: ignore[misc]
        self._stack = contextlib.AsyncExitStack()
        for name, server in self.servers.items():
            try:
                session = await self._stack.enter_async_context(client.session(name))
                lc_tools = await load_mcp_tools(
                    session, server_name=name, tool_name_prefix=server.prefix, handle_tool_errors=False
                )
            except Exception as exc:  # one bad server must not keep the agent from starting
                self.failures[name] = describe_error(exc)
                log.warning("MCP server %s cannot be used: %s", name, self.failures[name])
                continue
            for lc_tool in lc_tools:
                self.tools.append(
                    from_langchain(lc_tool, permission=server.permission, timeout_s=server.timeout_s)
                )
        return self.tools

    async def stop(self) -> None:
        """Close every session (ends stdio servers); safe to call twice."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
