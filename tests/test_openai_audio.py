"""Speech in and out through an OpenAI-compatible server that the test runs on 127.0.0.1.

The server speaks the real protocol (multipart ``/v1/audio/transcriptions``, JSON
``/v1/audio/speech`` answering WAV) and does real work behind it: pocketsphinx transcribes, espeak-ng
speaks. It can be told to fail, to check that a failing backend never takes the agent down.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import numpy as np
import pytest
import soundfile as sf
from aiohttp import web

from avagent.agent.config import AgentConfig, with_overrides
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.io.tts.espeak import EspeakSynthesizer
from avagent.perception.asr.openai import OpenAIRecognizer
from avagent.perception.asr.pocketsphinx import PocketsphinxRecognizer
from tests.conftest import SceneFactory


@dataclass
class AudioServer:
    url: str
    recognizer: PocketsphinxRecognizer
    fail_next: list[int] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    authorization: list[str | None] = field(default_factory=list)


@pytest.fixture
async def audio_server(resources: Resources) -> AsyncIterator[AudioServer]:
    recognizer = PocketsphinxRecognizer(resources.phrases.jsgf(), processes=0)
    synth = EspeakSynthesizer()
    server = AudioServer("", recognizer)

    def failure() -> web.Response | None:
        if server.fail_next:
            body = {"error": {"message": "overloaded; your key sk-live-0123456789abcdef was logged"}}
            return web.json_response(body, status=server.fail_next.pop(0))
        return None

    async def transcriptions(request: web.Request) -> web.Response:
        server.requests.append("transcriptions")
        server.authorization.append(request.headers.get("Authorization"))
        if (bad := failure()) is not None:
            return bad
        form = await request.post()
        upload = form["file"]
        assert isinstance(upload, web.FileField)
        assert form["model"] == "whisper-1"
        audio, rate = sf.read(io.BytesIO(upload.file.read()), dtype="float32")
        return web.json_response({"text": recognizer.transcribe_sync(audio, rate).text})

    async def speech(request: web.Request) -> web.Response:
        server.requests.append("speech")
        if (bad := failure()) is not None:
            return bad
        body = await request.json()
        assert body["response_format"] == "wav"
        buffer = io.BytesIO()
        sf.write(
            buffer, synth.synthesize_sync(body["input"]), synth.sample_rate, format="WAV", subtype="PCM_16"
        )
        return web.Response(body=buffer.getvalue(), content_type="audio/wav")

    app = web.Application()
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/speech", speech)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}/v1"
    yield server
    await runner.cleanup()


def openai_config(url: str) -> AgentConfig:
    return with_overrides(
        AgentConfig(), **{"asr.backend": "openai", "tts.backend": "openai", "base_url": url}
    )


async def test_the_agent_hears_and_speaks_through_the_server(
    audio_server: AudioServer, make_scene: SceneFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    _, path = make_scene(["turn right", "stop"], gap_s=3.0, snr_db=20.0, seed=41)
    config = openai_config(audio_server.url)
    resources = Resources(config)
    result = await run_on_file(path, config, resources=resources)
    await resources.stop()
    assert [c["name"] for c in result.of_type("tool_call")] == ["turn", "stop"]
    assert audio_server.requests.count("transcriptions") == 2
    assert audio_server.requests.count("speech") == 2
    assert audio_server.authorization[0] == "Bearer sk-test"
    first = result.of_type("speaking_started")[0]
    assert first["text"] == "Turning right 90 degrees."
    assert np.abs(result.voice_between(first["t"], first["t"] + 0.5)).max() > 0.05
    assert not result.of_type("error")


async def test_server_errors_are_reported_and_the_agent_carries_on(
    audio_server: AudioServer, make_scene: SceneFactory
) -> None:
    _, path = make_scene(["turn left", "stop"], gap_s=3.0, snr_db=20.0, seed=42)
    # The first turn's transcription fails twice: when it starts early, at the pause, and when the
    # turn has ended (a failed early attempt is retried once).
    audio_server.fail_next = [500, 500]
    config = openai_config(audio_server.url)
    resources = Resources(config)
    result = await run_on_file(path, config, resources=resources)
    await resources.stop()
    errors = result.of_type("error")
    assert len(errors) == 1
    assert errors[0]["stage"] == "asr"
    assert "HTTP 500" in errors[0]["message"]
    assert "overloaded" not in errors[0]["message"], "the server's own text never reaches an event"
    assert [c["name"] for c in result.of_type("tool_call")] == ["stop"], "the second command still works"


async def test_an_unreachable_server_is_one_clear_error() -> None:
    recognizer = OpenAIRecognizer("http://127.0.0.1:9/v1", timeout_s=2.0)
    with pytest.raises(Exception, match=re.escape("cannot reach http://127.0.0.1:9/v1/audio/transcriptions")):
        await recognizer.transcribe(np.zeros(1600, dtype=np.float32), 16000)
    await recognizer.stop()
