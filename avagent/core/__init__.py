"""The foundation every part of avagent imports, and that imports no other part: media frames,
events, bounded streams and the bus, the media clock, workers and child processes, errors, the
stage protocol, tracing, and small shared helpers (sentences, angles)."""
