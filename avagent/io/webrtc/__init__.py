"""The media edges of a WebRTC call (aiortc), knowing nothing of agents.

One sound's path in a call: the caller's Opus -> ``CallAudioSource`` (audio_in) -> the agent ->
its ``Playback`` -> ``AgentVoiceTrack`` (audio_out) -> the caller; the agent's events go back over
the data channel (events_out), the caller's camera comes in as ``VideoFrame``s (video_in). Offers
are screened (offer) and calls can be kept on loopback (loopback). The call server that puts an
agent in each call is the assembly's: ``avagent.agent.serve``. See docs/webrtc.md.
"""
