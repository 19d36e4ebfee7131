"""Free speech offline: the packaged faster-whisper tiny.en, decoded in a worker process."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from avagent.agent.config import AgentConfig, with_overrides
from avagent.agent.resources import asr_backend
from avagent.core.bus import Bus
from avagent.core.child_process import ChildProcess
from avagent.core.events import Transcript, TurnEnded
from avagent.perception.asr import whisper_decoding
from avagent.perception.asr.base import RecognizerError
from avagent.perception.asr.stage import Transcriber
from avagent.perception.asr.whisper import MAX_UTTERANCE_S, WhisperRecognizer
from avagent.perception.asr.whisper_model import (
    PACKAGED_MODEL_SHA256,
    WhisperModel,
    WhisperModelError,
    locate,
    verify,
)
from avagent.perception.listening import SpeechSoFar
from avagent.sim.scene import synthesize_scene
from avagent.sim.sentences import SENTENCES, word_error_rate
from tests.conftest import SceneFactory
from tests.openai_server import Reply, scripted_server

WORKER = "avagent.perception.asr.whisper_decoding"
# Any attempt to reach a server (the Hugging Face hub included) fails at once.
NO_NETWORK = {
    "HF_HUB_OFFLINE": "0",
    "HF_ENDPOINT": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
}


@pytest.fixture(scope="module")
def recognizer() -> Iterator[WhisperRecognizer]:
    saved = {k: os.environ.get(k) for k in NO_NETWORK}
    os.environ.update(NO_NETWORK)  # the worker inherits it
    shared = WhisperRecognizer()
    try:
        asyncio.run(shared.start())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    yield shared
    asyncio.run(shared.stop())


def worker_pids() -> list[int]:
    """The whisper worker processes that are children of this process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            status = (entry / "status").read_text()
        except OSError:
            continue
        parent = next((line.split()[1] for line in status.splitlines() if line.startswith("PPid:")), "")
        if WORKER.encode() in cmdline and parent == str(os.getpid()):
            found.append(int(entry.name))
    return found


def clips(sentences: list[str], snr_db: float | None = None) -> list[tuple[str, np.ndarray]]:
    scene = synthesize_scene(sentences, snr_db=snr_db, gap_s=0.8, lead_s=0.5, seed=5)
    return [
        (p.text, scene.audio[round((p.start - 0.25) * 16000) : round((p.end + 0.2) * 16000)])
        for p in scene.phrases
    ]


async def test_the_packaged_model_transcribes_sentences_in_a_worker_process(
    recognizer: WhisperRecognizer,
) -> None:
    assert recognizer.model.sha256 == PACKAGED_MODEL_SHA256
    pids = worker_pids()
    assert len(pids) == 1
    chosen = clips(SENTENCES[:6])
    texts = [(await recognizer.transcribe(audio, 16000)).text for _, audio in chosen]
    assert word_error_rate([s for s, _ in chosen], texts) < 0.35, texts
    assert worker_pids() == pids


def dead(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie until its parent reaps it)."""
    try:
        return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


def test_a_worker_that_dies_is_replaced(recognizer: WhisperRecognizer) -> None:
    (pid,) = worker_pids()
    os.kill(pid, signal.SIGKILL)
    for _ in range(500):
        if dead(pid):
            break
        time.sleep(0.01)
    [(_, audio)] = clips(["the children are playing in the garden"])
    result = asyncio.run(recognizer.transcribe(audio, 16000))
    assert "garden" in result.text.lower()
    assert len(worker_pids()) == 1
    assert worker_pids() != [pid]


async def test_early_recognition_abandoned_then_the_whole_turn(recognizer: WhisperRecognizer) -> None:
    """A guess at a pause that the user talks on from is dropped; the whole turn is transcribed."""
    [(_, first), (_, second)] = clips(["please close the door", "when you leave"])
    whole = np.concatenate([first, second])
    bus = Bus()
    stage = Transcriber(bus, recognizer)
    out = bus.subscribe(Transcript, name="test.transcripts")
    task = asyncio.create_task(stage.run())
    end = whole.shape[0] / 16000
    await bus.publish(SpeechSoFar(start=0.0, end=first.shape[0] / 16000, t=1.0, audio=first))
    await bus.publish(TurnEnded(t=end + 0.3, turn=1, start=0.0, end=end, audio=whole))
    transcript = await out.get()
    bus.close()
    await task
    assert "leave" in transcript.text.lower()
    assert "door" in transcript.text.lower()


def test_a_missing_model_folder_is_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(WhisperModelError) as caught:
        WhisperRecognizer(str(missing))
    assert str(missing) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_folder_that_is_no_ctranslate2_model_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"not a model")
    with pytest.raises(WhisperModelError, match="not a CTranslate2 model") as caught:
        locate(str(tmp_path))
    assert str(tmp_path) in str(caught.value)


def test_weights_other_than_the_released_ones_are_refused(tmp_path: Path) -> None:
    verify(locate(None))  # the installed model is the released one
    (tmp_path / "model.bin").write_bytes(b"tampered")
    with pytest.raises(WhisperModelError, match="sha256"):
        verify(WhisperModel(str(tmp_path), PACKAGED_MODEL_SHA256, "tiny.en"))


def test_an_utterance_is_cut_to_the_workers_limit() -> None:
    long = np.zeros(int((MAX_UTTERANCE_S + 10) * 8000), dtype=np.float32)
    pcm = WhisperRecognizer._pcm(long, 8000)
    assert len(pcm) == 2 * int(MAX_UTTERANCE_S * 16000)


def test_a_language_model_hears_with_whisper_unless_told_otherwise() -> None:
    assert asr_backend(AgentConfig()) == "pocketsphinx"
    with_model = with_overrides(AgentConfig(), **{"policy.model": "openai:gpt-4o-mini"})
    assert asr_backend(with_model) == "whisper"
    chosen = with_overrides(with_model, **{"asr.backend": "pocketsphinx"})
    assert asr_backend(chosen) == "pocketsphinx"


def avagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avagent", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **NO_NETWORK},
    )


@pytest.mark.slow
def test_run_with_whisper_on_a_file_offline(make_scene: SceneFactory) -> None:
    _, path = make_scene(["what is the weather like today"], snr_db=20.0, seed=41)
    result = avagent("run", "--asr", "whisper", "--input", str(path), "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    transcripts = [e for e in events if e["type"] == "transcript"]
    assert len(transcripts) == 1, events
    assert "weather" in transcripts[0]["text"].lower()
    assert not [e for e in events if e["type"] == "error"]


def test_run_with_a_missing_model_folder_says_so_in_one_line(
    make_scene: SceneFactory, tmp_path: Path
) -> None:
    _, path = make_scene(["turn left"], snr_db=20.0, seed=42)
    config = tmp_path / "whisper.yaml"
    config.write_text(f"asr:\n  backend: whisper\n  whisper:\n    model: {tmp_path / 'gone'}\n")
    result = avagent("run", "--input", str(path), "--json", "--config", str(config))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("avagent: error: asr.whisper.model:")
    assert str(tmp_path / "gone") in lines[0]


def test_a_worker_answer_over_the_limit_is_refused(tmp_path: Path) -> None:
    worker = ChildProcess(whisper_decoding, {"folder": str(tmp_path)}, RecognizerError, max_reply_bytes=8)
    worker.start()
    try:
        with pytest.raises(RecognizerError, match="answered more than 8 bytes"):
            worker.ready()
    finally:
        worker.stop()
    assert not worker.alive


@pytest.mark.slow
async def test_a_language_model_hears_free_speech_offline_by_default(make_scene: SceneFactory) -> None:
    _, path = make_scene(["could you tell me the way to the station"], snr_db=20.0, seed=43)
    async with scripted_server(Reply(text="Go straight on.")) as server:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "avagent", "run", "--input", str(path), "--json"),
            *("--model", "local-model", "--base-url", server.base_url),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **{k: v for k, v in NO_NETWORK.items() if k.startswith("HF_")}},
        )
        out, err = await asyncio.wait_for(process.communicate(), 300)
        assert process.returncode == 0, err.decode()
        events = [json.loads(line) for line in out.decode().splitlines()]
        [transcript] = [e for e in events if e["type"] == "transcript"]
        assert "station" in transcript["text"].lower()
        assert server.requests, (err.decode(), events)
        asked = json.dumps(server.requests[-1]["messages"]).lower()
        assert "station" in asked
        assert [e["text"] for e in events if e["type"] == "say"] == ["Go straight on."]
