"""The edges, over the foundation: files, sound cards, camera, speakers, speech synthesis, actuators,
and the media tracks of calls."""
