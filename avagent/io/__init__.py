"""avagent."""
