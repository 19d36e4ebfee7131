"""Browser and phone calls over WebRTC (aiortc): ``avagent serve`` puts an agent in each call.

One sound's path in a call: the caller's Opus -> ``CallAudioSource`` (audio_in) -> the agent ->
its ``Playback`` -> ``AgentVoiceTrack`` (audio_out) -> the caller; the agent's events go back
over the data channel (events_out). ``CallSession`` (session) owns one call, ``CallServer``
(server) the HTTP side and the shared models. See docs/webrtc.md.
"""
