"""Speech recognition: the stage, and the pocketsphinx, faster-whisper and OpenAI backends."""
