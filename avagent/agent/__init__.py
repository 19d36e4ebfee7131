"""The assembly: the configuration, the builder that wires it into an agent's parts, the models
agents share, the Agent that runs the parts, an agent on a recording, and the call server."""
