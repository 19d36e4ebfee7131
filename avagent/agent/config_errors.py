"""A configuration's validation errors as one short line: which fields, why, and a glimpse of what
was given, never a secret and never more than a few dozen characters of it.

The value that failed is quoted only when it is a short scalar of an ordinary setting: the value
of a secret (a token, a credential, a password, an API key, headers, an environment) is never
quoted, only its type, and a mapping or list is named by its type, since quoting it could repeat
a whole file or the secrets inside it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError

from avagent.core.text import one_line, redact

MAX_ERRORS_SHOWN = 5
"""At most this many bad fields are described; the rest are counted ("and 12 more")."""

MAX_QUOTED_CHARS = 40
"""The longest glimpse of a bad value quoted in an error; longer values are cut with "..."."""

_SECRET = re.compile(r"(?i)token|credential|passw|secret|api_?key|key|header|env|auth|cookie")
"""A field whose name says it holds a secret (or holds secret things: headers, an environment)."""


def is_secret_field(loc: tuple[int | str, ...]) -> bool:
    """Whether any part of a field's location names a secret (``serve.token``,
    ``tools.mcp_servers.NAME.headers.Authorization``, ``serve.ice_servers.0.credential``)."""
    return any(isinstance(part, str) and _SECRET.search(part) for part in loc)


def glimpse(value: Any, *, secret: bool = False) -> str:
    """How an error shows a bad value: a short quote of a scalar, the type of anything else."""
    if secret:
        return f"{_kind(value)}, not shown"
    if isinstance(value, str):
        # Cut before redacting (bounded work), redacted before quoting (a URL's password).
        return repr(one_line(redact(value[: MAX_QUOTED_CHARS * 4]), MAX_QUOTED_CHARS))
    if isinstance(value, bool | int | float) or value is None:
        return one_line(repr(value), MAX_QUOTED_CHARS)
    return _kind(value)


def _kind(value: Any) -> str:
    name = {dict: "mapping", list: "list", tuple: "list", type(None): "null"}.get(
        type(value), type(value).__name__
    )
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field and why (the first ``MAX_ERRORS_SHOWN`` of them)."""
    errors = exc.errors(include_url=False, include_context=False)
    parts = []
    for err in errors[:MAX_ERRORS_SHOWN]:
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc) or "(top level)"
        message = one_line(redact(err["msg"]), 160)
        if err["type"] == "extra_forbidden":
            message = "unknown setting"
        elif "input" in err and err["type"] != "missing":
            message += f" (got {glimpse(err['input'], secret=is_secret_field(loc))})"
        parts.append(f"{one_line(field, 80)}: {message}")
    if len(errors) > MAX_ERRORS_SHOWN:
        parts.append(f"and {len(errors) - MAX_ERRORS_SHOWN} more")
    return "; ".join(parts)
