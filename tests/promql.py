"""The metric names a PromQL expression reads, and the sample names a scrape offers: what the
dashboard and alert tests compare (tests/integration/test_dashboard_metrics.py).

A small tokenizer, not a parser: it removes what cannot be a metric name (string literals, label
matchers, range and subquery brackets, numbers, Grafana variables, the label lists of
by/without/on/ignoring/group_left/group_right) and keeps every remaining identifier that is not a
keyword or a function call. Anything it cannot read stays in as a "name" and so fails the
comparison: it errs towards a false alarm, never towards a silent pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_BRACKETS = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_VARIABLE = re.compile(r"\$(\{[^}]*\}|\w+)")
_NUMBER = re.compile(
    r"(?<![\w:])(?:0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?|Inf|NaN)(?![\w:])"
)
_OFFSET = re.compile(r"\boffset\s+-?[0-9a-z.]+", re.IGNORECASE)
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*[a-zA-Z_]\w*\s*\)\s*$", re.DOTALL)
_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "atan2", "inf", "nan"}
)
# A name followed by "(" is a function or an aggregation; "offset"/"@" modifiers are keywords.


def metric_names(expression: str) -> set[str]:
    """Every metric name `expression` selects."""
    text = _STRING.sub(" ", expression)
    text = _VARIABLE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    while True:  # label matchers and brackets do not nest, but subqueries hold ranges
        stripped = _BRACKETS.sub(" ", _MATCHERS.sub(" ", text))
        if stripped == text:
            break
        text = stripped
    text = _NUMBER.sub(" ", _OFFSET.sub(" ", text))
    names = set()
    for found in _IDENTIFIER.finditer(text):
        word = found.group()
        rest = text[found.end() :].lstrip()
        if word.lower() in _KEYWORDS or rest.startswith("("):
            continue
        names.add(word)
    return names


def variable_expression(query: str) -> str:
    """The PromQL inside a Grafana variable query: `label_values(EXPR, label)` reads EXPR."""
    found = _LABEL_VALUES.match(query)
    return found.group(1) if found else query


#: The sample names each metric type adds to its family name (prometheus_client's families are
#: named without `_total`); a name outside these is not exported, whatever it ends with.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "unknown": ("",),
}


def exported_names(families: Iterable[tuple[str, str]]) -> set[str]:
    """The sample names that (family name, type) pairs of a scrape can have, samples or not:
    a labelled metric no event has touched yet is declared but has no sample."""
    return {name + suffix for name, kind in families for suffix in _SUFFIXES[kind]}
