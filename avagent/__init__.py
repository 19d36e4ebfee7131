"""avagent: a real-time audio-visual agent runtime."""

__version__ = "0.1.0"
