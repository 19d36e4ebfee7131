"""The application on top of everything: the ``avagent`` command line and its offline demo."""
