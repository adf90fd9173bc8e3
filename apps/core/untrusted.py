"""The one door for YAML and JSON from outside: bounded before anything is built.

Users paste YAML into the object editor, upload kubeconfigs, and (soon) write pipeline and alert-rule
files. YAML's anchors and aliases let a few hundred bytes stand for billions of nodes ("billion laughs"),
and deep nesting exhausts the parser's recursion. Every such input is read here, in four steps, each
bounded before the next costs anything:

1. size: the text's length in bytes, before parsing;
2. shape: the parser's event stream (an iterative scan, no objects built) bounds nesting depth, node
   count, alias count and document count;
3. expansion: the composed node graph (aliases are still shared references there) is weighed with each
   alias counted at the full size of what it points to, so an alias bomb is refused before it expands;
4. only then are Python objects constructed, with the safe constructor (no Python tags).

JSON is bounded the same way (size, then a scan of nesting depth and item count outside strings).
A refusal raises ``UntrustedInput`` with a sentence in the reader's language.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from django.utils.translation import gettext as _

try:  # LibYAML's parser is ten times faster; the pure-Python one gives the same events.
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover - LibYAML is in the wheels we install
    from yaml import SafeLoader


class UntrustedInput(ValueError):
    """YAML or JSON refused before it was built, with the sentence a person reads; ``line`` (1-based) when the
    refusal is a syntax error at a known line."""

    line: int | None = None


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_depth: int = 64
    max_nodes: int = 50_000
    max_aliases: int = 100
    max_documents: int = 1
    # Nodes after every alias is counted at the size of what it points to.
    max_expanded: int = 100_000


# One Kubernetes object in the editor (the apiserver's own limit on a request is about 3 MiB; a ConfigMap
# holds at most 1 MiB of data).
OBJECT = Limits(max_bytes=1_572_864, max_depth=64, max_nodes=50_000)
# A kubeconfig: a handful of clusters, users and contexts with embedded certificates.
KUBECONFIG = Limits(max_bytes=262_144, max_depth=16, max_nodes=5_000, max_aliases=20, max_expanded=10_000)
# Files Kubemate ships (deploy/), read with the same door for one way of reading YAML.
MANIFESTS = Limits(max_bytes=4_194_304, max_depth=64, max_nodes=200_000, max_documents=1_000, max_expanded=400_000)


def _size(text: str | bytes, limits: Limits) -> None:
    size = len(text) if isinstance(text, bytes) else len(text.encode("utf-8", "surrogatepass"))
    if size > limits.max_bytes:
        raise UntrustedInput(
            _("The text is %(size)s bytes; at most %(limit)s are accepted here.")
            % {"size": f"{size:,}", "limit": f"{limits.max_bytes:,}"}
        )


def _yaml_error(exc: yaml.YAMLError) -> UntrustedInput:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0][:200]
    if mark is not None:
        error = UntrustedInput(
            _("The YAML is not valid at line %(line)d, column %(column)d: %(problem)s.")
            % {"line": mark.line + 1, "column": mark.column + 1, "problem": problem}
        )
        error.line = mark.line + 1
        return error
    return UntrustedInput(_("The YAML is not valid: %(problem)s.") % {"problem": problem})


def _scan_events(text: str | bytes, limits: Limits) -> None:
    depth = nodes = aliases = documents = 0
    for event in yaml.parse(text, Loader=SafeLoader):
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > limits.max_documents == 1:
                raise UntrustedInput(_("The text holds more than one YAML document; give one."))
            if documents > limits.max_documents:
                raise UntrustedInput(
                    _("The text holds more than %(limit)s YAML documents.") % {"limit": limits.max_documents}
                )
        elif isinstance(event, yaml.AliasEvent):
            aliases += 1
            if aliases > limits.max_aliases:
                raise UntrustedInput(
                    _("The YAML uses more than %(limit)s aliases (*name); write the values out instead.")
                    % {"limit": limits.max_aliases}
                )
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            nodes += 1
            if depth > limits.max_depth:
                raise UntrustedInput(
                    _("The YAML is nested more than %(limit)s levels deep.") % {"limit": limits.max_depth}
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
        if nodes > limits.max_nodes:
            raise UntrustedInput(
                _("The YAML has more than %(limit)s values; split it into smaller pieces.")
                % {"limit": f"{limits.max_nodes:,}"}
            )


def _weigh(root: yaml.Node, limits: Limits) -> None:
    """Refuse a node graph whose aliases would expand beyond ``max_expanded`` nodes (linear in the graph)."""
    weights: dict[int, int] = {}
    open_nodes: set[int] = set()  # entered, children not yet weighed: meeting one again is a cycle
    # Post-order without recursion: depth is already bounded, but the loop keeps the cost linear and flat.
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in weights:
            continue
        if isinstance(node, yaml.ScalarNode):
            weights[id(node)] = 1
            continue
        children = (
            [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else list(node.value)
        )
        if not children_done:
            if id(node) in open_nodes:
                raise UntrustedInput(_("The YAML contains itself through an alias; such a value has no end."))
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in weights)
            continue
        open_nodes.discard(id(node))
        total = 1 + sum(weights[id(child)] for child in children)
        if total > limits.max_expanded:
            raise UntrustedInput(
                _(
                    "The YAML's anchors and aliases would expand to more than %(limit)s values; "
                    "write the repeated parts out instead."
                )
                % {"limit": f"{limits.max_expanded:,}"}
            )
        weights[id(node)] = total


def load_yaml_all(text: str | bytes, limits: Limits = OBJECT) -> list[Any]:
    """Every document of ``text``, each bounded as the module docstring says."""
    _size(text, limits)
    try:
        _scan_events(text, limits)
        loader = SafeLoader(text)
        try:
            documents = []
            while loader.check_node():
                node = loader.get_node()
                _weigh(node, limits)
                documents.append(loader.construct_document(node))
            return documents
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc) from None
    except RecursionError:  # cannot happen within max_depth; kept so that no input is ever a 500
        raise UntrustedInput(_("The YAML is nested too deeply.")) from None


def load_yaml(text: str | bytes, limits: Limits = OBJECT) -> Any:
    """One YAML document (None for an empty text), bounded as the module docstring says."""
    documents = load_yaml_all(text, limits)
    if len(documents) > 1:
        raise UntrustedInput(_("The text holds more than one YAML document; give one."))
    return documents[0] if documents else None


def _scan_json(text: str, limits: Limits) -> None:
    depth = items = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
            continue
        if char == '"':
            in_string = True
            items += 1
        elif char in "[{":
            depth += 1
            items += 1
            if depth > limits.max_depth:
                raise UntrustedInput(
                    _("The JSON is nested more than %(limit)s levels deep.") % {"limit": limits.max_depth}
                )
        elif char in "]}":
            depth -= 1
        elif char == ",":
            items += 1
        if items > limits.max_nodes:
            raise UntrustedInput(
                _("The JSON has more than %(limit)s values; split it into smaller pieces.")
                % {"limit": f"{limits.max_nodes:,}"}
            )


def load_json(text: str | bytes, limits: Limits = OBJECT) -> Any:
    """A JSON value, bounded in size, nesting and item count before it is parsed."""
    _size(text, limits)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise UntrustedInput(_("The JSON is not UTF-8 text.")) from None
    _scan_json(text, limits)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UntrustedInput(
            _("The JSON is not valid at line %(line)d, column %(column)d: %(problem)s.")
            % {"line": exc.lineno, "column": exc.colno, "problem": exc.msg}
        ) from None
    except RecursionError:  # cannot happen within max_depth; kept so that no input is ever a 500
        raise UntrustedInput(_("The JSON is nested too deeply.")) from None
