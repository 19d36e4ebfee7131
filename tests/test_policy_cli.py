"""``avagent run`` says which policy is active: the model's, or the offline one and why."""

from __future__ import annotations

import asyncio
import json
import sys

from tests.conftest import SceneFactory
from tests.openai_server import Reply, scripted_server


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "avagent", "run", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return int(process.returncode or 0), out.decode(), err.decode()


async def test_run_prints_the_active_policy_and_falls_back_when_the_model_is_gone(
    make_scene: SceneFactory,
) -> None:
    _, path = make_scene(["what time is it"], snr_db=25.0, seed=4)
    async with scripted_server(Reply(text="It is tea time.")) as server:
        code, out, err = await run_cli(
            "--input", str(path), "--json", "--model", "local-model", "--base-url", server.base_url
        )
        assert code == 0, err
        assert f"policy llm (local-model at {server.base_url})" in err
        said = [e["text"] for e in map(json.loads, out.splitlines()) if e["type"] == "say"]
        assert said == ["It is tea time."]
        dead = server.base_url
    code, out, err = await run_cli(
        "--input", str(path), "--json", "--model", "local-model", "--base-url", dead
    )
    assert code == 0, err
    assert "unreachable" in err
    assert "using the offline command policy" in err
    assert "policy commands with 5 tools" in err
    events = [json.loads(line) for line in out.splitlines()]
    said = [e["text"] for e in events if e["type"] == "say"]
    assert said[0].startswith("I cannot reach my language model")
    assert len(said) == 2
    assert [e["name"] for e in events if e["type"] == "tool_call"] == ["what_time"]
