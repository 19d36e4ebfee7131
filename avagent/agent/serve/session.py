"""One call: a peer connection and the agent that talks in it.

The session owns everything the call made: the ``RTCPeerConnection``, the agent (its own bus,
hearing, turn-taking, policy and voice, on models shared with the other calls), the incoming
video task and the outgoing voice track. ``answer`` sets the call up from an offer; from then on
one task runs the agent on the caller's audio until the call ends, for whichever reason comes
first: the caller hangs up (the track ends), the caller vanishes (no audio for
``stall_timeout_s``), the connection fails, nobody speaks for ``idle_timeout_s``, or the server
closes it. Then the caller is told why (a ``call_ended`` message), the connection is closed and
the server forgets the call. ``stop`` is idempotent and returns once all of that is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCDtlsTransport,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamTrack

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.agent.serve.ice import IceServers
from avagent.core.text import describe_error
from avagent.io.webrtc.audio_in import CallAudioSource
from avagent.io.webrtc.audio_out import AgentVoiceTrack
from avagent.io.webrtc.events_out import EventChannel
from avagent.io.webrtc.loopback import keep_loopback_candidates, loopback_candidates
from avagent.io.webrtc.offer import Offer, OfferRejected
from avagent.io.webrtc.video_in import CallVideoSource

log = logging.getLogger("avagent.webrtc")

CALL_SAMPLE_RATE = 48000
"""Opus runs at 48 kHz: the agent's voice is made at that rate, so nothing resamples it again."""


class CallSession:
    """A call between one caller and one agent."""

    def __init__(
        self,
        config: AgentConfig,
        resources: Resources,
        *,
        on_closed: Callable[[CallSession], None] = lambda _session: None,
        ice_servers: list[RTCIceServer] | None = None,
    ) -> None:
        """``ice_servers``: this end's STUN/TURN servers, credentials included (see ``IceServers``);
        by default those of the config, read now."""
        self.id = secrets.token_hex(6)
        self._serve = config.serve
        self._on_closed = on_closed
        self.agent = Agent(
            config, resources=resources, realtime=True, playback_rate=CALL_SAMPLE_RATE, video_from_source=True
        )
        self.events = EventChannel(self.agent.bus)
        self.agent.add_stage(self.events)
        self.voice = AgentVoiceTrack(self.agent.playback, self.agent.clock)
        if ice_servers is None:
            ice_servers = IceServers(self._serve, has_token=True).for_server()
        # An empty list, not None: aiortc would otherwise query a public STUN server.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice_servers))
        self.source: CallAudioSource | None = None
        self._video: list[CallVideoSource] = []
        self._video_tasks: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self.end_reason: str | None = None
        self.created = time.monotonic()
        self.connected_s: float | None = None
        """Seconds from the offer to the connection being established."""

    # --- setting up ------------------------------------------------------------------------

    async def answer(self, offer: Offer) -> RTCSessionDescription:
        """Accept ``offer`` and start the call; raises ``OfferRejected`` if aiortc refuses it."""
        pc = self.pc
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_connection_state)
        sdp = keep_loopback_candidates(offer.sdp) if self._serve.loopback_only else offer.sdp
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc's parser raises many kinds of errors on bad SDP
            raise OfferRejected(400, f"the offer cannot be used: {describe_error(exc)}") from None
        if self.source is None:
            raise OfferRejected(400, "the offer sends no audio: the call needs the microphone")
        pc.addTrack(self.voice)
        # The voice track sends Opus packets it encodes itself: Opus is the only codec to answer.
        opus = [c for c in RTCRtpSender.getCapabilities("audio").codecs if c.mimeType.lower() == "audio/opus"]
        for transceiver in pc.getTransceivers():
            if transceiver.kind == "audio":
                transceiver.setCodecPreferences(opus)
        try:
            with loopback_candidates(self._serve.loopback_only):
                await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise OfferRejected(400, f"no answer to this offer: {describe_error(exc)}") from None
        self._task = asyncio.create_task(self._run(), name=f"call {self.id}")
        local = pc.localDescription
        return RTCSessionDescription(sdp=local.sdp, type=local.type)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self.source is None:
            self.source = CallAudioSource(
                track,
                self.agent.bus,
                self.agent.clock,
                stall_timeout_s=self._serve.stall_timeout_s,
                first_frame_timeout_s=self._serve.connect_timeout_s,
            )
        elif track.kind == "video":
            video = CallVideoSource(track, self.agent.bus, self.agent.clock, max_fps=self._serve.video_fps)
            self._video.append(video)
            task = asyncio.create_task(video.run(), name=f"call {self.id} video")
            self._video_tasks.add(task)
            task.add_done_callback(self._video_tasks.discard)

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        self.events.attach(channel)

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.connected_s is None:
            self.connected_s = time.monotonic() - self.created
        elif state in ("failed", "closed"):
            self._end(f"connection {state}")

    # --- running ---------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self.source is not None
        watchdog = asyncio.create_task(self._watch_idle(), name=f"call {self.id} idle")
        try:
            await self.agent.run(self.source)
        except Exception as exc:
            # One redacted line: a traceback's messages could carry what a backend was sent.
            log.error("call %s: the agent failed: %s", self.id, describe_error(exc))
            # The whole story for whoever debugs it (--log-level DEBUG), through the same redaction.
            log.debug("call %s: the agent's failure", self.id, exc_info=True)
            self._end("error")
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
            self._end(self.source.end_reason or "hangup")
            await self._shut_down()

    async def _watch_idle(self) -> None:
        """End the call once nobody has spoken, and the agent has had nothing to do, for a while."""
        limit = self._serve.idle_timeout_s
        activity = self.agent.bus.activity
        last_active = time.monotonic()
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            now = time.monotonic()
            if activity.held():
                last_active = now
            elif now - last_active >= limit:
                self._end("idle")
                return

    def _end(self, reason: str) -> None:
        """Ask the call to end (the first reason given is kept); returns at once."""
        if self.end_reason is None:
            self.end_reason = reason
            log.info("call %s ends: %s", self.id, reason)
        self.agent.request_stop()

    async def _shut_down(self) -> None:
        if self._closing:
            return
        self._closing = True
        try:
            for task in list(self._video_tasks):
                task.cancel()
            await asyncio.gather(*self._video_tasks, return_exceptions=True)
            self.voice.stop()
            self.events.send({"type": "call_ended", "t": self.agent.clock.now(), "reason": self.end_reason})
            await self.events.drained()
            await close_peer_connection(self.pc)
        finally:
            self._closed.set()
            self._on_closed(self)

    async def stop(self, reason: str = "closed by the server") -> None:
        """End the call and wait until it is gone. Safe to call twice, or before ``answer``."""
        self._end(reason)
        task = self._task
        if task is not None:
            # Waiting must not cancel the call's own shutdown if the caller is cancelled.
            await asyncio.shield(asyncio.wait({task}))
        else:
            await self._shut_down()
        await self._closed.wait()

    async def wait_closed(self) -> None:
        """Wait until the call has ended, for whatever reason, and is cleaned up."""
        await self._closed.wait()

    # --- looking in ------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def stats(self) -> dict[str, Any]:
        """Figures for operators and benchmarks: age, connection, backlog, counters."""
        source = self.source
        streams = self.agent.bus.stats()
        return {
            "id": self.id,
            "age_s": round(time.monotonic() - self.created, 3),
            "connection": self.pc.connectionState,
            "connected_s": None if self.connected_s is None else round(self.connected_s, 4),
            "audio_frames": source.frames if source else 0,
            "lag_ms": round(source.lag_s * 1000.0, 1) if source else None,
            "max_lag_ms": round(source.max_lag_s * 1000.0, 1) if source else None,
            "audio_queued_max": max((s["high_water"] for n, s in streams.items() if "audio" in n), default=0),
            "audio_dropped": sum(s["dropped"] for n, s in streams.items() if "audio" in n),
            "video_frames": sum(v.published for v in self._video),
            "events_sent": self.events.sent,
            "events_dropped": self.events.dropped,
            "voice_resyncs": self.voice.resyncs,
            "end_reason": self.end_reason,
        }


async def close_peer_connection(pc: RTCPeerConnection) -> None:
    """Close ``pc``, sockets and all. aiortc can trip over a connection that a broken offer left
    half built; then its transports are stopped one by one, so no socket outlives the call."""
    try:
        await pc.close()
        return
    except Exception as exc:
        log.warning("a peer connection did not close cleanly (%s)", describe_error(exc))
    # Typed as always present, but None in a connection that was never completed.
    dtls_transports: list[RTCDtlsTransport | None] = [t.receiver.transport for t in pc.getTransceivers()]
    if pc.sctp is not None:
        dtls_transports.append(pc.sctp.transport)
    for dtls in dtls_transports:
        if dtls is None:
            continue
        for transport in (dtls, dtls.transport):
            with contextlib.suppress(Exception):
                await transport.stop()
