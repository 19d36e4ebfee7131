"""Tools of real MCP servers (a stdio subprocess, and streamable HTTP on 127.0.0.1) in the same
registry and under the same rules as every other tool."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from avagent.sim.scripted_model import scripted
from avagent.tools.executor import ToolExecutor
from avagent.tools.mcp import McpServer, McpToolbox
from avagent.tools.registry import ToolRegistry
from tests.policy_support import llm_policy, policy_stage

SERVER = '''
from mcp.server.fastmcp import FastMCP

mcp = FastMCP("home")


@mcp.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@mcp.tool()
def fail() -> str:
    """Always fails."""
    raise ValueError("the lights are broken")


if __name__ == "__main__":
    mcp.run()
'''


@pytest.fixture
def stdio_server(tmp_path: Path) -> McpServer:
    script = tmp_path / "home_server.py"
    script.write_text(SERVER, encoding="utf-8")
    return McpServer(transport="stdio", command=sys.executable, args=[str(script)], permission="allow")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def http_server() -> AsyncIterator[str]:
    import uvicorn
    from mcp.server.fastmcp import FastMCP

    mcp = FastMCP("lights", host="127.0.0.1")

    @mcp.tool()
    def lights(room: str, on: bool) -> str:
        """Switch the lights of a room."""
        return f"The {room} lights are {'on' if on else 'off'}."

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(mcp.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(10):
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for this)
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def test_stdio_server_tools_are_checked_and_called(stdio_server: McpServer) -> None:
    box = McpToolbox({"home": stdio_server})
    try:
        tools = await box.start()
        assert sorted(t.name for t in tools) == ["add", "fail"]
        add = next(t for t in tools if t.name == "add")
        assert add.parameters["required"] == ["a", "b"]
        executor = ToolExecutor(ToolRegistry(tools))
        assert (await executor.execute("add", {"a": 2, "b": 3})).result == "5"
        invalid = await executor.execute("add", {"a": "two", "b": 3})
        assert not invalid.ok
        assert not invalid.ran
        assert "not of type 'integer'" in invalid.result
        failed = await executor.execute("fail", {})
        assert not failed.ok
        assert failed.ran
        assert "the lights are broken" in failed.result
    finally:
        await box.stop()
        await box.stop()


async def test_http_server_tools_serve_the_policy(http_server: str) -> None:
    box = McpToolbox({"lights": McpServer(transport="http", url=http_server, permission="allow")})
    try:
        tools = await box.start()
        assert [t.name for t in tools] == ["lights"]
        model = scripted(
            AIMessage(
                content="",
                tool_calls=[{"name": "lights", "args": {"room": "kitchen", "on": True}, "id": "l"}],
            ),
            "The kitchen lights are on.",
        )
        async with policy_stage(lambda ex: llm_policy(model, ex), tools=tools) as h:
            await h.hear("switch on the kitchen lights")
            [result] = [m for m in model.requests[1][0] if isinstance(m, ToolMessage)]
            assert result.content == "The kitchen lights are on."
            assert h.said() == ["The kitchen lights are on."]
    finally:
        await box.stop()


async def test_mcp_tools_default_to_confirm_and_can_be_denied(stdio_server: McpServer) -> None:
    confirm = McpServer(transport="stdio", command=stdio_server.command, args=stdio_server.args)
    box = McpToolbox({"home": confirm})
    try:
        tools = await box.start()
        executor = ToolExecutor(ToolRegistry(tools), permissions={"fail": "deny"})
        asked: list[str] = []

        async def say_no(question: str) -> bool:
            asked.append(question)
            return False

        refused = await executor.execute("add", {"a": 1, "b": 1}, say_no)
        assert asked == ["Shall I add with a 1, b 1? Please say yes or no."]
        assert not refused.ok
        assert not refused.ran
        denied = await executor.execute("fail", {}, say_no)
        assert denied.result == "fail is not allowed"
        assert len(asked) == 1
        assert [t.name for t in executor.visible_tools()] == ["add"]
    finally:
        await box.stop()


async def test_a_server_that_cannot_start_is_reported_not_fatal(tmp_path: Path) -> None:
    broken = McpServer(transport="stdio", command=str(tmp_path / "no-such-program"))
    box = McpToolbox({"broken": broken})
    try:
        assert await box.start() == []
        assert "broken" in box.failures
    finally:
        await box.stop()
