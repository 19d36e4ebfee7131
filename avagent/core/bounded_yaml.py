"""YAML from the user, within bounds: aliases cannot multiply a small file into a huge value.

YAML's anchors and aliases share one value among many places, so a few hundred bytes of nested
aliases ("billion laughs") describe a value of billions of nodes: cheap to parse, ruinous to
validate, compare or print. Here the document is composed first, its size as if every alias were
written out is counted (each shared node once, so the count itself is cheap), and only a document
within ``max_nodes`` nodes and ``max_depth`` levels is turned into Python values.
"""

from __future__ import annotations

from typing import Any

import yaml

from avagent.core.errors import InputError
from avagent.core.text import one_line

MAX_YAML_NODES = 20_000
"""The most nodes (mappings, lists, scalars, keys included) a YAML document may hold, counted with
every alias expanded; a config is a few hundred."""

MAX_YAML_DEPTH = 32
"""The deepest nesting of mappings and lists a YAML document may have; a config has four or five."""


class _TooLarge(Exception):
    pass


class _TooDeep(Exception):
    pass


class _Recursive(Exception):
    pass


def load_yaml(
    text: str,
    where: str,
    *,
    max_nodes: int = MAX_YAML_NODES,
    max_depth: int = MAX_YAML_DEPTH,
    error: type[InputError] = InputError,
) -> Any:
    """The value of the YAML document ``text`` (safe types only); ``error`` (an ``InputError``)
    with a line that starts with ``where`` if it is not valid YAML or goes past the bounds."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, max_nodes, max_depth)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{where}: not valid YAML{at}: {one_line(str(problem), 120)}") from None
    except _TooLarge:
        raise error(
            f"{where}: more than {max_nodes} YAML values once its aliases are expanded; refused"
        ) from None
    except (_TooDeep, RecursionError):
        raise error(f"{where}: nested more than {max_depth} levels deep; refused") from None
    except _Recursive:
        raise error(f"{where}: an alias refers to a value that contains it; refused") from None
    except (ValueError, OverflowError) as exc:
        # The constructor's own limits, e.g. an integer of more than 4300 digits.
        raise error(f"{where}: a value cannot be read: {one_line(str(exc), 120)}") from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _measure(root: yaml.Node, max_nodes: int, max_depth: int) -> None:
    """Raise ``_TooLarge``, ``_TooDeep`` or ``_Recursive`` unless the document, with its aliases
    expanded, is within bounds. A shared node is measured once (its size and height are kept), so
    the cost is that of the document as written."""
    measured: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()

    def measure(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in measured:
            size, height = measured[key]
        else:
            if key in open_nodes:
                raise _Recursive
            if depth > max_depth:
                raise _TooDeep
            open_nodes.add(key)
            size, height = 1, 0
            for child in _children(node):
                child_size, child_height = measure(child, depth + 1)
                size += child_size
                height = max(height, child_height + 1)
                if size > max_nodes:
                    raise _TooLarge
            open_nodes.discard(key)
            measured[key] = (size, height)
        if depth + height > max_depth:
            raise _TooDeep
        return size, height

    measure(root, 0)
