"""``avagent serve``: the call server (``server``) and one call with its agent (``session``)."""
