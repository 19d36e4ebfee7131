"""The senses, one module each: voice activity and turns, speech recognition, sound direction,
faces and the active speaker. They see frames and publish events; they never decide."""
