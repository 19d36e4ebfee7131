"""A caller in Python: a real aiortc peer that calls an ``avagent serve`` server.

For tests, benchmarks and scripts: it sends a recording as its microphone, in real time, and
collects what comes back (the events of the data channel, the agent's voice).

    peer = CallPeer("http://127.0.0.1:8080/")
    await peer.call(SpokenAudioTrack(samples_48k))
    call = await peer.wait_for_event("tool_call")
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack, VideoStreamTrack

from avagent.core.messages import to_int16
from avagent.io.webrtc.loopback import loopback_candidates

RATE = 48000
BLOCK = 960


class CallRefused(Exception):
    """The server answered the offer with an error status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class SpokenAudioTrack(MediaStreamTrack):
    """Plays mono float32 samples at 48 kHz in real time, 20 ms a frame, then silence.

    With ``loop`` the recording starts again once it has ended, for as long as the call lasts.
    """

    kind = "audio"

    def __init__(self, samples: np.ndarray, *, loop: bool = False) -> None:
        super().__init__()
        pcm = to_int16(np.asarray(samples, dtype=np.float32))
        n_blocks = -(-pcm.shape[0] // BLOCK)
        padded = np.zeros(n_blocks * BLOCK, dtype=np.int16)
        padded[: pcm.shape[0]] = pcm
        self._blocks = padded.reshape(n_blocks, BLOCK)
        self._silence = np.zeros(BLOCK, dtype=np.int16)
        self._repeat = loop
        self._sent = 0
        self._start: float | None = None
        self._time_base = fractions.Fraction(1, RATE)
        self.started = asyncio.Event()
        """Set when the first frame is sent: media time 0 of the call is then."""

    @property
    def position(self) -> float:
        """Seconds of audio sent so far."""
        return self._sent * BLOCK / RATE

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
            self.started.set()
        else:
            delay = self._start + self._sent * BLOCK / RATE - now
            if delay > 0:
                await asyncio.sleep(delay)
        index = self._sent % len(self._blocks) if self._repeat else self._sent
        block = self._blocks[index] if index < len(self._blocks) else self._silence
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._sent * BLOCK
        frame.time_base = self._time_base
        self._sent += 1
        return frame


class PictureVideoTrack(VideoStreamTrack):
    """A camera that films one still picture (BGR ``uint8``), at 30 fps."""

    def __init__(self, image: np.ndarray) -> None:
        super().__init__()
        self._image = image

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame.from_ndarray(self._image, format="bgr24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


def colour_video_track(bgr: tuple[int, int, int], width: int = 320, height: int = 240) -> PictureVideoTrack:
    """A camera that films one plain colour (BGR), at 30 fps."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = bgr
    return PictureVideoTrack(image)


class CallPeer:
    """One call to a server: the caller's side of it."""

    def __init__(
        self, url: str, *, token: str | None = None, loopback: bool = True, keep_voice: bool = True
    ) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.token = token
        self.loopback = loopback
        self.keep_voice = keep_voice
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.events: list[dict[str, Any]] = []
        self.call_id: str | None = None
        self.voice_blocks: list[np.ndarray] = []
        self.voice_frames = 0
        self.voice_loud_frames = 0
        self.connect_s: float | None = None
        """Seconds from sending the offer to the connection being established."""
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        """Called with each event as it arrives."""
        self._new_event = asyncio.Event()
        self._connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._channel_open = asyncio.Event()

    async def call(self, audio: MediaStreamTrack, *, video: MediaStreamTrack | None = None) -> None:
        """Offer a call sending ``audio`` (and ``video``) and wait until it is connected."""
        pc = self.pc
        pc.addTrack(audio)
        if video is not None:
            pc.addTrack(video)
        channel = pc.createDataChannel("events")
        channel.on("message", self._on_message)
        channel.on("open", self._channel_open.set)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._on_state)
        with loopback_candidates(self.loopback):
            await pc.setLocalDescription(await pc.createOffer())
        started = time.monotonic()
        answer = await self.post_offer({"sdp": pc.localDescription.sdp, "type": "offer"})
        self.call_id = answer.get("call_id")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        await self._connected.wait()
        if self.pc.connectionState != "connected":
            raise ConnectionError(f"the call did not connect ({self.pc.connectionState})")
        self.connect_s = time.monotonic() - started
        await self._channel_open.wait()

    async def post_offer(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + "offer", json=body, headers=headers) as response,
        ):
            reply: dict[str, Any] = await response.json()
            if response.status != 200:
                raise CallRefused(response.status, str(reply.get("error")))
            return reply

    def _on_message(self, message: str | bytes) -> None:
        if isinstance(message, str):
            event = json.loads(message)
            self.events.append(event)
            self._new_event.set()
            if self.on_event is not None:
                self.on_event(event)

    def _on_state(self) -> None:
        # Connected, or never will be: either way ``call`` stops waiting.
        if self.pc.connectionState in ("connected", "failed", "closed"):
            self._connected.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            task = asyncio.create_task(self._listen(track))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                assert isinstance(frame, av.AudioFrame)
                samples = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
                self.voice_frames += 1
                if np.abs(samples).max() > 300:
                    self.voice_loud_frames += 1
                if self.keep_voice:
                    self.voice_blocks.append(samples.astype(np.float32) / 32768.0)

    @property
    def voice(self) -> np.ndarray:
        """The agent's voice as heard so far (mono float32, 48 kHz)."""
        return np.concatenate(self.voice_blocks) if self.voice_blocks else np.zeros(0, np.float32)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == kind]

    async def wait_for_event(self, kind: str, within_s: float = 30.0, count: int = 1) -> dict[str, Any]:
        """The ``count``-th event of type ``kind``, waiting for it up to ``within_s`` seconds."""
        try:
            async with asyncio.timeout(within_s):
                while len(self.of_type(kind)) < count:
                    self._new_event.clear()
                    await self._new_event.wait()
        except TimeoutError:
            seen = [(e.get("type"), e.get("text", e.get("name"))) for e in self.events]
            raise TimeoutError(
                f"no {kind} event #{count} within {within_s} s; the call sent {seen}"
            ) from None
        return self.of_type(kind)[count - 1]

    async def hang_up(self) -> None:
        """Close the call; safe to call twice."""
        await self.pc.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _call_until_killed(url: str, token: str | None) -> None:
    tone = (np.sin(np.arange(48000) * 2 * np.pi * 220 / 48000) * 0.1).astype(np.float32)
    peer = CallPeer(url, token=token, keep_voice=False)
    await peer.call(SpokenAudioTrack(tone, loop=True))
    print(f"connected {peer.call_id}", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> None:
    """``python -m avagent.sim.calls URL [TOKEN]``: call and keep sending a tone until killed
    (a caller that can vanish without hanging up)."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    asyncio.run(_call_until_killed(args[0], args[1] if len(args) > 1 else None))


if __name__ == "__main__":
    main()
