"""Frames and sound for a multimodal model: sampled camera frames as JPEGs, utterances and recent
sound as WAV clips, what the agent's own senses report in words, and a local transformers model."""
