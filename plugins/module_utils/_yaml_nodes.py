# -*- coding: utf-8 -*-
# Copyright: (c) 2026, k8s_ai.conformance contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Read YAML the way CNCF's validator (Go, gopkg.in/yaml.v3) reads it. Internal to this collection.

PyYAML implements YAML 1.1, yaml.v3 mostly YAML 1.2, and the difference decides whether a PRODUCT.yaml
passes: `platformVersion: yes` is a bool for PyYAML but a string for yaml.v3, `date: 2026-01-02` is a
date for PyYAML but a string for yaml.v3 (into interface{}), and yaml.v3 rejects duplicate keys where
PyYAML keeps the last one. So we let PyYAML only *compose* the document (nodes with their raw text and
line numbers) and resolve plain scalars with yaml.v3's rules here. Callers then see, for every scalar,
the raw text (what yaml.v3 puts into a Go `string` field) and its type (what it puts into an
`interface{}`).
"""
from __future__ import annotations

import functools
import re

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML ships with ansible-core; guarded for the import sanity test
    HAS_YAML = False

STR = "tag:yaml.org,2002:str"
NULL = "tag:yaml.org,2002:null"
BOOL = "tag:yaml.org,2002:bool"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"

# yaml.v3's implicit types for plain scalars (resolve.go): YAML 1.2 core schema, Go number syntax.
# Timestamps are absent on purpose: decoded into interface{} they stay strings.
_IMPLICIT = (
    (NULL, re.compile(r"^(?:~|null|Null|NULL|)$"), list("~nN") + [""]),
    (BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")),
    (INT, re.compile(r"^[-+]?(?:0b[01_]+|0o[0-7_]+|0x[0-9a-fA-F_]+|[0-9][0-9_]*)$"), list("-+0123456789")),
    (FLOAT, re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?"
                       r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"), list("-+0123456789.")),
)

TYPE_NAMES = {STR: "string", NULL: "null", BOOL: "boolean", INT: "integer", FLOAT: "float"}


class YamlError(ValueError):
    """The text is not YAML, or not the shape yaml.v3 could decode."""


@functools.lru_cache(maxsize=None)
def _loader_class():
    """A PyYAML loader that composes nodes with yaml.v3's implicit types only (see _IMPLICIT).

    Nothing is constructed, so no Python object is ever created from tags. Built on first use so that
    importing this module does not need PyYAML.
    """
    class GoResolver(yaml.resolver.BaseResolver):
        yaml_implicit_resolvers = {}

    for tag, regexp, first in _IMPLICIT:
        GoResolver.add_implicit_resolver(tag, regexp, first)

    class NodeLoader(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, GoResolver):
        def __init__(self, stream):
            yaml.reader.Reader.__init__(self, stream)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            GoResolver.__init__(self)

    return NodeLoader


def compose(text):
    """The first document of `text` as a PyYAML node tree (None for an empty document).

    yaml.v3's Unmarshal decodes the first document only; so do we. Raises YamlError with the
    parser's message (which names line and column) for text that is not YAML.
    """
    if not HAS_YAML:
        raise YamlError("PyYAML is required to read YAML; install it with pip install pyyaml")
    loader = _loader_class()(text)
    try:
        if loader.check_node():
            return loader.get_node()
        return None
    except yaml.YAMLError as exc:
        raise YamlError(str(exc)) from None
    finally:
        loader.dispose()


def line(node):
    """1-based line number of a node, as yaml.v3 reports it."""
    return node.start_mark.line + 1


def is_scalar(node):
    return node is not None and node.id == "scalar"


def is_mapping(node):
    return node is not None and node.id == "mapping"


def is_sequence(node):
    return node is not None and node.id == "sequence"


def kind(node):
    """A human name for a node's type: "string", "float", "mapping", "list", ..."""
    if node is None:
        return "null"
    if node.id == "mapping":
        return "mapping"
    if node.id == "sequence":
        return "list"
    return TYPE_NAMES.get(node.tag, node.tag)


def mapping_items(node):
    """(key text, key node, value node) for a mapping node; raises YamlError on a duplicate key.

    yaml.v3 refuses documents with a key defined twice in one mapping ("mapping key ... already
    defined"); PyYAML would silently keep the last value.
    """
    seen = {}
    items = []
    for key_node, value_node in node.value:
        key = key_node.value if is_scalar(key_node) else str(key_node.value)
        if key in seen:
            raise YamlError('line %d: mapping key "%s" already defined at line %d' % (line(key_node), key, seen[key]))
        seen[key] = line(key_node)
        items.append((key, key_node, value_node))
    return items


def scalar_text(node):
    """What yaml.v3 stores in a Go string field: the raw text, "" for null."""
    if node is None or node.tag == NULL:
        return ""
    return node.value


def to_plain(node):
    """The node as plain Python data where every non-null scalar is its raw text.

    Used to read a file a person wrote without YAML 1.1 surprises: `platformVersion: 1.10` comes
    back as "1.10", not 1.1. Duplicate keys raise YamlError.
    """
    if node is None:
        return None
    if is_mapping(node):
        return dict((key, to_plain(value)) for key, dummy, value in mapping_items(node))
    if is_sequence(node):
        return [to_plain(item) for item in node.value]
    if node.tag == NULL:
        return None
    return node.value


def load_plain(text):
    """compose() + to_plain(): the first document as plain data with scalars as raw text."""
    return to_plain(compose(text))
