"""What stands in for the world, for the demo, the tests and the benchmarks: synthesised scenes
with known truth, simulated rooms and microphone arrays, a scripted chat model, a WebRTC caller.
Nothing in the runtime imports it."""
