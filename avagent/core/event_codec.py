"""Events back from their JSON: the event contract as a wire format between machines.

``Event.to_dict`` writes an event as the contract has it; ``event_from_dict`` reads one back into
its class, validating every field against the class's types (an event that comes over a network is
input from outside). Events whose meaning lives in fields that never leave the process (a turn's
audio) cannot be carried and are refused, as are unknown types.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from avagent.core.events import Event


class EventDecodeError(ValueError):
    """The data is not an event this process can take in; the message says why, on one line."""


def event_classes() -> dict[str, type[Event]]:
    """Every event class of the contract by its JSON type (subclasses of subclasses included)."""
    found: dict[str, type[Event]] = {}
    pending = list(Event.__subclasses__())
    while pending:
        kind = pending.pop()
        found.setdefault(kind.type, kind)
        pending.extend(kind.__subclasses__())
    return found


def carried(kind: type[Event]) -> bool:
    """Whether ``kind`` can travel as JSON: every field it needs is part of the contract."""
    for f in dataclasses.fields(kind):
        needed = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if needed and not f.metadata.get("json", True):
            return False
    return True


_MODELS: dict[type[Event], type[BaseModel]] = {}


def _wire_model(kind: type[Event]) -> type[BaseModel]:
    """A model of ``kind``'s contract fields (the ones that travel), with their types and defaults."""
    known = _MODELS.get(kind)
    if known is not None:
        return known
    hints = get_type_hints(kind)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(kind):
        if not f.metadata.get("json", True):
            continue
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], f.default)
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], Field(default_factory=f.default_factory))
        else:
            fields[f.name] = (hints[f.name], ...)
    model: type[BaseModel] = create_model(
        f"{kind.__name__}OnTheWire", __config__=ConfigDict(arbitrary_types_allowed=True), **fields
    )
    _MODELS[kind] = model
    return model


def event_from_dict(data: Any) -> Event:
    """The event ``data`` (a decoded JSON object of the contract) stands for, with ``t_capture``
    set to now (the capture instant of another machine means nothing here)."""
    if not isinstance(data, dict):
        raise EventDecodeError(f"an event is a JSON object, not {type(data).__name__}")
    name = data.get("type")
    kind = event_classes().get(name) if isinstance(name, str) else None
    if kind is None or kind is Event:
        raise EventDecodeError(f"unknown event type {str(name)[:40]!r}")
    if not carried(kind):
        raise EventDecodeError(f"{name} events cannot be carried between machines")
    model = _wire_model(kind)
    try:
        checked = model.model_validate({k: v for k, v in data.items() if k in model.model_fields})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}" for err in exc.errors()[:3]
        )
        raise EventDecodeError(f"bad {name} event: {problems}") from None
    values = {name: getattr(checked, name) for name in model.model_fields}
    return kind(**values, t_capture=time.monotonic())
