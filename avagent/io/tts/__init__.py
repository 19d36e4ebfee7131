"""Speech synthesis backends: espeak-ng, piper, and OpenAI-compatible servers."""
