"""``python -m avagent``: the same as the ``avagent`` command."""

from avagent.agent.cli import main

raise SystemExit(main())
