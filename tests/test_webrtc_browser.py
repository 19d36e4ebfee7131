"""A real browser call: headless Chromium opens the call page, its fake microphone plays a
synthesised spoken command, and the agent's tool call and voice come back to the page."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from avagent.agent.config import parse_config
from avagent.agent.resources import Resources
from avagent.agent.serve.server import running_server
from avagent.sim.scene import synthesize_scene

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

INBOUND_AUDIO = """async () => {
  let found = null;
  (await window.avagentCall.pc.getStats()).forEach((r) => {
    if (r.type === "inbound-rtp" && r.kind === "audio") found = r;
  });
  return found && { packets: found.packetsReceived, energy: found.totalAudioEnergy || 0 };
}"""


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh --dev installs it")
    scene = synthesize_scene(["turn left"], lead_s=1.5, tail_s=4.0, snr_db=30.0, sample_rate=48000, seed=8)
    microphone = scene.write(tmp_path / "microphone.wav")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*CHROMIUM_FLAGS, f"--use-file-for-fake-audio-capture={microphone}"],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def events_of(page: Page) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = await page.evaluate("window.avagentCall.events")
    return events


async def test_a_browser_call_hears_the_command_and_plays_the_answer(
    resources: Resources, browser: Browser
) -> None:
    config = parse_config({"serve": {"loopback_only": True, "port": 0, "token": "browser-test"}})
    async with running_server(config, resources) as (server, url):
        page = await browser.new_page()
        await page.goto(url + "?token=browser-test")
        await page.click("#call")
        await page.wait_for_function(
            "window.avagentCall.events.some((e) => e.type === 'speech_started')", timeout=30_000
        )
        before_answer = await page.evaluate(INBOUND_AUDIO)
        await page.wait_for_function(
            "window.avagentCall.events.some((e) => e.type === 'speaking_ended')", timeout=45_000
        )
        events = await events_of(page)
        after_answer = await page.evaluate(INBOUND_AUDIO)
        transcript = await page.inner_text("#transcript")
        [call_stats] = server.stats()["calls"]

        await page.click("#call")  # hang up
        await server.wait_for_calls(0)
        status = await page.inner_text("#status")

    calls = [(e["name"], e["args"]) for e in events if e["type"] == "tool_call"]
    assert calls[0] == ("turn", {"direction": "left", "degrees": 90})
    assert "turn left" in transcript
    assert "Turning left 90 degrees." in transcript
    # The agent's voice reached the browser: packets all along (silence until it answers), and
    # the sound of the answer in them.
    assert before_answer["packets"] > 0
    assert after_answer["packets"] > before_answer["packets"] + 50
    assert before_answer["energy"] < 1e-4
    assert after_answer["energy"] > 0.01
    # The browser's camera reached the agent too.
    assert call_stats["video_frames"] > 0
    assert call_stats["connection"] == "connected"
    assert status == "You hung up."
