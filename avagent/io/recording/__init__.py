"""Recordings of whole sessions as MCAP files: written as a session goes, read back to replay it.

``format`` names the channels and encodes what goes on them; ``writer`` writes a file on a thread
of its own; ``stage`` records what crosses an agent's bus (and its voice); ``reader`` reads a file
back within bounds, up to where a file cut short stops; ``source`` feeds a recording's inputs to
an agent in lockstep, as a WAV file is fed.
"""
