"""Audio-visual understanding figures, as JSON (bench/results/avllm.json and stdout).

1. What a request costs at the default sampling (``avllm.frames``, ``avllm.requests``): a camera
   at 15 frames a second, 640 x 480, showing two drawn faces that move and talk (with a camera's
   grain), and user turns of 3 s, 4 s apart, through the real frame sampler and sound log. Per
   request: the images it carries, their JPEG bytes, the bytes of the media and of the whole
   JSON body as sent, against the same turn asked with text only (the baseline). Per sampled
   frame: the JPEG encoding time (a worker thread's, off the loop). Per request: the time to
   prepare it (the turn's media from the senses, the content blocks within the limits, the
   history, the OpenAI JSON body), against text only.
2. The latency added before a request leaves: a real policy stage (LangChain's ChatOpenAI) with
   real senses, from the final transcript to the request's arrival at a local OpenAI-compatible
   server on 127.0.0.1, with the turn's frames and utterance, against text only, in the same run.
3. The tiny local model (``avagent/sim/tiny_omni.py``) on the CPU through the real loading,
   preprocessing and generation code: load time, time to the first token and time per token,
   with text only and with a frame and 3 s of sound; and, as the machine's baseline, a fixed
   float32 matrix product on one thread.

    .venv/bin/python bench/avllm.py [--turns 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avagent.core.bus import Bus
from avagent.core.events import SpeechEnded, SpeechStarted, Transcript, TurnEnded
from avagent.core.messages import VideoFrame
from avagent.perception.avllm.encoding import encode_jpeg
from avagent.perception.avllm.frames import FrameSampler, FrameSettings
from avagent.perception.avllm.senses import AgentSenses
from avagent.perception.avllm.sounds import SoundLog
from avagent.policy.inputs import ModelInputs, RequestLimits

RESULTS = Path(__file__).parent / "results" / "avllm.json"
FPS = 15
TURN_S = 3.0
GAP_S = 4.0


def stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "n": int(a.size),
        "median": round(float(np.median(a)), 3),
        "p95": round(float(np.percentile(a, 95)), 3),
        "max": round(float(a.max()), 3),
    }


def camera_frame(t: float) -> np.ndarray:
    """Two drawn faces that drift and talk, with a camera's grain: a scene never quite still, and
    about as hard to compress as a real one."""
    from avagent.sim.faces import scene

    sway = int(12 * np.sin(0.7 * t))
    mouth = float(int(t * 8) % 2)
    image = scene([(200 + sway, 240, 110, mouth), (440 - sway, 250, 100, 0.0)]).astype(np.int16)
    grain = np.random.default_rng(int(t * FPS)).normal(0.0, 4.0, image.shape)
    return np.clip(image + grain, 0, 255).astype(np.uint8)


def utterance(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)


class World:
    """A bus with the real senses, fed as a camera and a listener would feed them."""

    def __init__(self) -> None:
        self.bus = Bus()
        self.now = 0.0
        self.bus.media_time = lambda: self.now
        self.frames = FrameSampler(self.bus, FrameSettings())
        self.sounds = SoundLog(self.bus)
        self.senses = AgentSenses(self.frames, self.sounds, lambda: self.now)
        self.turn = 0

    @property
    def stages(self) -> list[Any]:
        return [self.frames, self.sounds]

    async def live(self, seconds: float, *, speaking: bool) -> None:
        """``seconds`` of camera frames (the user speaking or not)."""
        start = self.now
        if speaking:
            await self.bus.publish(SpeechStarted(t=start))
        for k in range(int(seconds * FPS)):
            self.now = start + k / FPS
            await self.bus.publish(VideoFrame(image=camera_frame(self.now), t=self.now, t_capture=self.now))
            await self.bus.activity.settled()
        self.now = start + seconds
        if speaking:
            self.turn += 1
            await self.bus.publish(SpeechEnded(t=self.now, start=start, end=self.now))
            audio = utterance(seconds)
            await self.bus.publish(
                TurnEnded(t=self.now, turn=self.turn, start=start, end=self.now, audio=audio)
            )
            await self.bus.activity.settled()


def openai_body(messages: list[Any]) -> bytes:
    from avagent.policy.omni import openai_messages

    return json.dumps({"model": "omni", "messages": openai_messages(messages), "stream": True}).encode()


async def request_cost(turns: int) -> dict[str, Any]:
    """Bytes and preparation time per request at the default sampling, against text only."""
    from langchain_core.messages import SystemMessage

    from avagent.policy.context import PerceptionContext
    from avagent.policy.llm import DEFAULT_SYSTEM_PROMPT
    from avagent.policy.memory import ConversationMemory

    world = World()
    tasks = [asyncio.create_task(s.run()) for s in world.stages]
    inputs = ModelInputs(("text", "image", "audio"), world.senses, RequestLimits())
    memory = ConversationMemory()
    context = PerceptionContext()
    images: list[int] = []
    jpeg_bytes: list[int] = []
    media_bytes: list[int] = []
    body_bytes: list[int] = []
    text_bytes: list[int] = []
    prep_ms, text_prep_ms = [], []
    for _ in range(turns):
        await world.live(GAP_S, speaking=False)
        await world.live(TURN_S, speaking=True)
        record = memory.begin(world.turn, "what do you see")
        started = time.perf_counter()
        media = await inputs.for_turn(world.turn)
        prepared = inputs.prepare(media)
        messages = [
            SystemMessage(DEFAULT_SYSTEM_PROMPT),
            *memory.history(record, context.render(world.now), prepared.blocks),
        ]
        body = openai_body(messages)
        prep_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        plain = openai_body(
            [SystemMessage(DEFAULT_SYSTEM_PROMPT), *memory.history(record, context.render(world.now))]
        )
        text_prep_ms.append((time.perf_counter() - started) * 1000)
        sent = [b for b in prepared.blocks if b["type"] == "image"]
        images.append(len(sent))
        jpeg_bytes.extend(len(b["base64"]) * 3 // 4 for b in sent)
        media_bytes.append(prepared.encoded_bytes)
        body_bytes.append(len(body))
        text_bytes.append(len(plain))
    for task in tasks:
        task.cancel()
    frame = camera_frame(1.0)
    encode_ms = []
    for _ in range(max(20, turns)):
        started = time.perf_counter()
        encode_jpeg(frame, 0.0, max_side=1024, quality=75)
        encode_ms.append((time.perf_counter() - started) * 1000)
    return {
        "sampling": {"camera_fps": FPS, "frame": "640x480", "turn_s": TURN_S, "idle_s_between": GAP_S},
        "images_per_request": stats([float(n) for n in images]),
        "jpeg_bytes_per_image": stats([float(b) for b in jpeg_bytes]),
        "media_bytes_per_request": stats([float(b) for b in media_bytes]),
        "body_bytes_per_request": stats([float(b) for b in body_bytes]),
        "body_bytes_text_only": stats([float(b) for b in text_bytes]),
        "frames_sampled_per_turn_cycle": round(world.frames.images_encoded / turns, 2),
        "jpeg_encode_ms_per_frame": stats(encode_ms),
        "prepare_ms_per_request": stats(prep_ms),
        "prepare_ms_text_only": stats(text_prep_ms),
    }


async def added_latency(turns: int) -> dict[str, Any]:
    """Final transcript to the request's arrival at the server, with media and text only."""
    from langchain_openai import ChatOpenAI
    from pydantic import SecretStr

    from avagent.policy.llm import LLMPolicy
    from avagent.policy.runner import PolicyRunner
    from avagent.tools.executor import ToolExecutor
    from avagent.tools.registry import ToolRegistry
    from tests.omni_server import Answer, Seen, omni_server

    arrived: list[float] = []
    came = asyncio.Event()

    def answer(seen: Seen) -> Answer:
        arrived.append(time.monotonic())
        came.set()
        return Answer(text="Okay.")

    out: dict[str, Any] = {}
    async with omni_server(*([answer] * (2 * turns))) as server:
        for label, kinds in (("text_only", ("text",)), ("text_image_audio", ("text", "image", "audio"))):
            world = World()
            model = ChatOpenAI(
                model="omni", base_url=server.base_url, api_key=SecretStr("x"), max_retries=0, streaming=True
            )
            executor = ToolExecutor(ToolRegistry([]))
            policy = LLMPolicy(model, executor, inputs=ModelInputs(kinds, world.senses, RequestLimits()))
            runner = PolicyRunner(world.bus, policy, executor)
            tasks = [asyncio.create_task(s.run()) for s in [*world.stages, runner]]
            delays = []
            for _ in range(turns):
                await world.live(1.0, speaking=False)
                await world.live(TURN_S, speaking=True)
                arrived.clear()
                came.clear()
                sent = time.monotonic()
                await world.bus.publish(Transcript(t=world.now, text="what do you see", turn=world.turn))
                await came.wait()
                delays.append((arrived[0] - sent) * 1000)
                while runner.busy:
                    await world.bus.activity.settled()
                    await asyncio.sleep(0.001)
            world.bus.close()
            await asyncio.wait(tasks, timeout=2.0)
            out[label] = stats(delays)
    out["added_ms_median"] = round(out["text_image_audio"]["median"] - out["text_only"]["median"], 3)
    return out


def local_model(tokens: int) -> dict[str, Any]:
    """The tiny local model on the CPU: load, first token, per token; and the machine's baseline."""
    import torch
    from langchain_core.messages import HumanMessage

    from avagent.perception.avllm.encoding import encode_wav
    from avagent.perception.avllm.local_chat import request_for
    from avagent.perception.avllm.local_model import LocalModelSettings, LocalOmniModel
    from avagent.policy.inputs import audio_block, image_block
    from avagent.sim.tiny_omni import build_tiny_omni

    torch.set_num_threads(1)
    a = torch.randn(256, 256)
    started = time.perf_counter()
    for _ in range(200):
        a @ a
    matmul_ms = (time.perf_counter() - started) * 1000 / 200
    with tempfile.TemporaryDirectory() as folder:
        path = build_tiny_omni(Path(folder) / "omni")
        runner = LocalOmniModel(LocalModelSettings(path=str(path), max_new_tokens=tokens))
        started = time.perf_counter()
        runner.load()
        load_s = time.perf_counter() - started
        image = encode_jpeg(camera_frame(1.0), 0.0, max_side=1024, quality=75)
        sound = encode_wav(utterance(TURN_S), 16000, 0.0)
        results: dict[str, Any] = {"load_s": round(load_s, 3)}
        prompts = {
            "text_only": [HumanMessage("what do you see")],
            "text_image_audio": [
                HumanMessage(
                    content=[
                        {"type": "text", "text": "what do you see"},
                        image_block(image),
                        audio_block(sound),
                    ]
                )
            ],
        }
        for label, messages in prompts.items():
            firsts, per_token = [], []
            for _ in range(3):
                stamps: list[float] = []

                def note(_text: str, stamps: list[float] = stamps) -> None:
                    stamps.append(time.perf_counter())

                started = time.perf_counter()
                generated = runner.generate(request_for(messages), note, threading.Event())
                total = time.perf_counter() - started
                first = (stamps[0] - started) if stamps else total
                firsts.append(first * 1000)
                per_token.append((total - first) * 1000 / max(1, generated - 1))
            results[label] = {
                "tokens": generated,
                "first_token_ms": stats(firsts),
                "ms_per_token": stats(per_token),
            }
    results["baseline_matmul_256_ms"] = round(matmul_ms, 4)
    results["threads"] = 1
    return results


async def main_async(turns: int, tokens: int) -> dict[str, Any]:
    return {
        "request_cost": await request_cost(turns),
        "added_latency": await added_latency(turns),
    } | {"local_model": await asyncio.to_thread(local_model, tokens)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--quick", action="store_true", help="a few turns and tokens: checks that it works")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    turns, tokens = (3, 16) if args.quick else (args.turns, args.tokens)
    results = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "quick": bool(args.quick),
        **asyncio.run(main_async(turns, tokens)),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
