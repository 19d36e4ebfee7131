"""Sound cards: the microphone as a source, the speaker as a player of the agent's voice.

PortAudio (through sounddevice) calls back on its own thread. The microphone callback only
copies the block and hands it to the event loop; a full intake queue drops the oldest block and
counts it (a device cannot wait), and the drop is reported as an ``overflow`` event. The speaker
callback pulls the ``Playback`` directly, so cutting the voice takes effect at the next block.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.errors import InputError
from avagent.core.messages import AudioFrame
from avagent.core.streams import OverflowPolicy, Stream
from avagent.io.playback import Playback
from avagent.io.virtual_speaker import BlockSink


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as exc:  # the PortAudio library itself is missing
        raise InputError(
            f"audio devices need the PortAudio library (Debian: apt install libportaudio2): {exc}"
        ) from None
    return sounddevice


@dataclass(frozen=True, slots=True)
class AudioDevice:
    index: int
    name: str
    inputs: int
    outputs: int
    default_sample_rate: float


def list_devices() -> list[AudioDevice]:
    """Every audio device PortAudio can see (an empty list on a machine with no sound card)."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
    except Exception as exc:
        raise InputError(f"cannot list audio devices: {exc}") from None
    return [
        AudioDevice(i, str(d["name"]), int(d["max_input_channels"]), int(d["max_output_channels"]),
                    float(d["default_samplerate"]))
        for i, d in enumerate(devices)
    ]  # fmt: skip


def find_device(device: str | int | None, *, output: bool) -> AudioDevice:
    """The device given by index or by (part of) its name, or the system default."""
    kind = "output" if output else "input"
    devices = [d for d in list_devices() if (d.outputs if output else d.inputs) > 0]
    if not devices:
        raise InputError(f"no audio {kind} device found (run 'avagent devices' to see what there is)")
    if device is None:
        sd = _sounddevice()
        default = sd.default.device[1 if output else 0]
        for d in devices:
            if d.index == default:
                return d
        return devices[0]
    if isinstance(device, int) or str(device).isdigit():
        for d in devices:
            if d.index == int(device):
                return d
        raise InputError(f"no audio {kind} device with index {device}")
    matches = [d for d in devices if str(device).lower() in d.name.lower()]
    if not matches:
        raise InputError(f"no audio {kind} device named like {device!r}")
    return matches[0]


class MicrophoneSource:
    """Captures a sound card input onto the bus; runs until the agent stops."""

    name = "microphone"
    consumes: tuple[type, ...] = ()
    produces = (AudioFrame,)

    def __init__(
        self,
        bus: Bus,
        clock: MediaClock,
        *,
        device: str | int | None = None,
        sample_rate: int | None = None,
        channels: int = 1,
        block_ms: float = 32.0,
        max_backlog_s: float = 2.0,
    ) -> None:
        self.device = find_device(device, output=False)
        if channels > self.device.inputs:
            raise InputError(f"{self.device.name} has {self.device.inputs} input channels, not {channels}")
        self.sample_rate = int(sample_rate or self.device.default_sample_rate)
        self.channels = channels
        self._block = max(1, round(self.sample_rate * block_ms / 1000.0))
        self._bus = bus
        self._clock = clock
        # A device cannot wait: when the agent falls behind, the oldest block goes, counted.
        self._intake: Stream[AudioFrame] = Stream(
            "microphone.intake",
            maxsize=max(1, round(max_backlog_s * 1000.0 / block_ms)),
            policy=OverflowPolicy.DROP_OLDEST,
            on_drop=bus.report_dropped,
        )
        self._samples = 0

    def _callback(self, indata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        t = self._samples / self.sample_rate
        self._samples += frames
        # The block's first sample was captured one block before this call.
        capture = time.monotonic() - frames / self.sample_rate
        frame = AudioFrame(indata.copy(), self.sample_rate, t, capture)
        self._loop.call_soon_threadsafe(self._intake.put_nowait, frame)

    async def run(self) -> None:
        sd = _sounddevice()
        self._loop = asyncio.get_running_loop()
        try:
            stream = sd.InputStream(
                device=self.device.index,
                samplerate=self.sample_rate,
                channels=self.channels,
                blocksize=self._block,
                dtype="float32",
                callback=self._callback,
            )
        except Exception as exc:
            raise InputError(f"cannot open {self.device.name}: {exc}") from None
        with stream:
            async for frame in self._intake:
                self._clock.advance(frame.t_end)
                await self._bus.publish(frame)
                self._clock.render()


class DeviceSpeaker:
    """Plays the agent's voice on a sound card output, and copies it to optional sinks."""

    def __init__(
        self,
        playback: Playback,
        clock: MediaClock,
        *,
        device: str | int | None = None,
        block_ms: float = 20.0,
        sinks: list[BlockSink] | None = None,
    ) -> None:
        self.device = find_device(device, output=True)
        self._playback = playback
        self._clock = clock
        self._block = max(1, round(playback.sample_rate * block_ms / 1000.0))
        self._sinks = list(sinks or [])
        self._stream: Any = None

    def _callback(self, outdata: np.ndarray, frames: int, _time: Any, _status: Any) -> None:
        block = self._playback.pull(frames, self._clock.now())
        outdata[:, 0] = block
        for sink in self._sinks:
            sink(block)

    def start(self) -> None:
        """Open the device and start playing (the callback runs on PortAudio's thread)."""
        sd = _sounddevice()
        try:
            self._stream = sd.OutputStream(
                device=self.device.index,
                samplerate=self._playback.sample_rate,
                channels=1,
                blocksize=self._block,
                dtype="float32",
                callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:
            raise InputError(f"cannot open {self.device.name}: {exc}") from None

    def stop(self) -> None:
        """Stop playing; safe to call twice."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()
