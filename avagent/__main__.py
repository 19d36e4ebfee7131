"""``python -m avagent``: the same as the ``avagent`` command."""

from avagent.cli.main import main

raise SystemExit(main())
