"""YAML and JSON bombs the hostile-input suite sends (shared by the refusal tests and the memory test).

Each entry is (name, text). A bomb is small as text and huge, or deep, once built: anchors and aliases
("billion laughs"), merge keys, deep nesting, many documents, big scalars, tags that ask for Python objects.
"""

from __future__ import annotations


def laughs(levels: int, width: int = 10) -> str:
    """The classic alias chain: each level repeats the previous one ``width`` times (width ** levels values)."""
    lines = ["a0: &a0 [" + ",".join(['"lol"'] * width) + "]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [" + ",".join([f"*a{level - 1}"] * width) + "]")
    return "\n".join(lines) + "\n"


def merge_laughs(levels: int) -> str:
    """The same growth through merge keys (<<) of mappings."""
    lines = ["m0: &m0 {k0: lol, k1: lol, k2: lol, k3: lol, k4: lol, k5: lol, k6: lol, k7: lol, k8: lol, k9: lol}"]
    for level in range(1, levels):
        keys = ", ".join(f"c{n}: *m{level - 1}" for n in range(10))
        lines.append(f"m{level}: &m{level} {{<<: *m{level - 1}, {keys}}}")
    return "\n".join(lines) + "\n"


def nested_flow(depth: int) -> str:
    return "a: " + "[" * depth + "]" * depth + "\n"


def nested_block(depth: int) -> str:
    return "".join(f"{'  ' * n}k{n}:\n" for n in range(depth)) + "  " * depth + "v\n"


def nested_json(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


YAML_BOMBS = [
    *[(f"laughs-{levels}x10", laughs(levels)) for levels in range(5, 11)],
    *[(f"laughs-{levels}x{width}", laughs(levels, width)) for levels, width in ((18, 2), (12, 3), (9, 5), (7, 20))],
    *[(f"merge-laughs-{levels}", merge_laughs(levels)) for levels in (5, 6, 8)],
    *[(f"flow-depth-{depth}", nested_flow(depth)) for depth in (100, 1_000, 10_000, 100_000)],
    *[(f"block-depth-{depth}", nested_block(depth)) for depth in (100, 500)],
    ("aliases-many", "a: &a x\nb: [" + ",".join(["*a"] * 5_000) + "]\n"),
    ("documents-many", "---\na: 1\n" * 2_000),
    ("scalar-huge", "a: " + "x" * 3_000_000 + "\n"),
    ("values-many", "a: [" + ",".join(["1"] * 200_000) + "]\n"),
    ("python-object", "a: !!python/object/apply:os.system ['touch /tmp/kubemate-pwned']\n"),
    ("python-name", "a: !!python/name:os.system\n"),
    ("python-module", "a: !!python/module:os\n"),
    ("recursive-alias", "a: &a [*a]\n"),
    ("binary-junk", "\x00\x01\x02\x03 not yaml \x7f"),
    ("tabs-and-colons", ":\t:\t:\n\t- [\n"),
    ("unclosed-flow", "a: [1, 2, {b: 3\n"),
    ("json-in-yaml-deep", nested_json(5_000)),
]
JSON_BOMBS = [
    *[(f"json-depth-{depth}", nested_json(depth)) for depth in (100, 1_000, 100_000)],
    ("json-array-depth", "[" * 200_000 + "]" * 200_000),
    ("json-items-many", "[" + ",".join(["0"] * 300_000) + "]"),
    ("json-string-huge", '"' + "x" * 3_000_000 + '"'),
]
