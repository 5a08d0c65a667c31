"""Static analysis of constraint FHIRPath expressions, to know when evaluating one is pointless.

A constraint's outcome depends only on the element names it reads from its context node. These
helpers find them from the tokens (no full parse): the root names, the names whose absence (or
presence) alone decides the outcome, and the names only tested for presence. The walker uses them
to skip or remember evaluations; every helper errs towards "evaluate".
"""

from __future__ import annotations

import re

STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'")
TOKEN = re.compile(r"'(?:[^'\\]|\\.)*'|`[^`]*`|[%$]?[A-Za-z_]\w*|\S")
KEYWORDS = frozenset({"and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod", "true", "false"})
CONTEXT_SENSITIVE = frozenset({"%resource", "%rootResource", "%context", "$this"})
# Methods whose arguments are not evaluated per item of the receiver.
_WHOLE_INPUT_METHODS = frozenset(
    {"union", "combine", "iif", "intersect", "exclude", "subsetOf", "supersetOf", "coalesce"}
)


def root_identifiers(expression: str) -> frozenset[str] | None:
    """The element names an expression reads from its context node, or ``None`` when it may
    also read the node as a whole (``$this``, ``children()``, ``%resource``...).

    Names after a ``.`` or inside the arguments of a method such as ``where(...)`` are read
    from the receiver's items, so when every root name is absent the result is the same as on
    an empty node: that lets the walker skip the evaluation (see ``Constraint.triggers``)."""
    tokens = TOKEN.findall(expression)
    scopes: list[bool] = []  # per open parenthesis: True when inside a per-item method argument
    names: set[str] = set()
    for i, token in enumerate(tokens):
        before = tokens[i - 1] if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        per_item = any(scopes)
        if token == "(":
            is_method = i >= 2 and tokens[i - 2] == "." and before[:1].isalpha()
            scopes.append(is_method and before not in _WHOLE_INPUT_METHODS)
        elif token == ")":
            if scopes:
                scopes.pop()
        elif token in CONTEXT_SENSITIVE:
            if not per_item:
                return None
        elif (token[:1].isalpha() or token[:1] in "_`") and token not in KEYWORDS:
            if after == "(":
                if before != "." and not per_item:
                    return None  # a function applied to the context node itself
            elif before != "." and not per_item:
                names.add(token.strip("`"))
    return frozenset(names)


# Methods that return an empty collection for an empty input.
_EMPTY_PRESERVING = frozenset(
    {
        "where",
        "select",
        "ofType",
        "as",
        "first",
        "last",
        "tail",
        "skip",
        "take",
        "distinct",
        "trace",
        "children",
        "descendants",
        "repeat",
        "resolve",
        "extension",
        "substring",
        "lower",
        "upper",
    }
)


def _chain_root(tokens: list[str]) -> tuple[str | None, int]:
    """For ``name(.member | .method(...))*``, the root name and the index after the chain."""
    if not tokens or not (tokens[0][:1].isalpha() or tokens[0][:1] == "`") or tokens[0] in KEYWORDS:
        return None, 0
    if len(tokens) > 1 and tokens[1] == "(":
        return None, 0
    i = 1
    while i + 1 < len(tokens) and tokens[i] == ".":
        name = tokens[i + 1]
        if i + 2 < len(tokens) and tokens[i + 2] == "(":
            if name not in _EMPTY_PRESERVING:
                return tokens[0].strip("`"), i  # stop before a non-preserving call
            depth, j = 0, i + 2
            while j < len(tokens):
                depth += {"(": 1, ")": -1}.get(tokens[j], 0)
                j += 1
                if depth == 0:
                    break
            i = j
        else:
            i += 2
    return tokens[0].strip("`"), i


def _split_top(tokens: list[str], word: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    depth = 0
    for token in tokens:
        depth += {"(": 1, ")": -1}.get(token, 0)
        if depth == 0 and token == word:
            parts.append([])
        else:
            parts[-1].append(token)
    return parts


def _unwrap(tokens: list[str]) -> list[str]:
    while len(tokens) >= 2 and tokens[0] == "(" and tokens[-1] == ")":
        depth = 0
        for i, token in enumerate(tokens):
            depth += {"(": 1, ")": -1}.get(token, 0)
            if depth == 0 and i < len(tokens) - 1:
                return tokens
        tokens = tokens[1:-1]
    return tokens


def absence_guards(expression: str) -> frozenset[str]:
    """Names whose absence alone makes the expression hold: ``name....empty() or ...`` (the
    chain is empty, so ``empty()`` is true) and ``name....exists() implies ...`` (false or
    empty antecedent). Sound for the empty-preserving methods above only."""
    tokens = TOKEN.findall(expression)
    if any(t in CONTEXT_SENSITIVE for t in tokens[:1]):
        return frozenset()
    guards: set[str] = set()
    implication = _split_top(tokens, "implies")
    if len(implication) == 2:
        left = _unwrap(implication[0])
        root, end = _chain_root(left)
        rest = left[end:]
        if root and (
            rest == [".", "exists", "(", ")"] or (len(rest) == 2 and rest[0] in ("=", "!=", "~") and rest[1][:1] == "'")
        ):
            guards.add(root)
        return frozenset(guards)
    for part in _split_top(tokens, "or"):
        part = _unwrap(part)
        root, end = _chain_root(part)
        if root and part[end:] == [".", "empty", "(", ")"]:
            guards.add(root)
    return frozenset(guards)


def presence_guards(expression: str) -> frozenset[str]:
    """Names whose presence alone makes the expression hold: top-level ``... or name.exists()``."""
    tokens = TOKEN.findall(expression)
    parts = _split_top(tokens, "or")
    if len(parts) < 2 or len(_split_top(tokens, "implies")) > 1:
        return frozenset()
    guards: set[str] = set()
    for part in parts:
        part = _unwrap(part)
        if len(part) == 5 and part[1:] == [".", "exists", "(", ")"] and part[0][:1].isalpha():
            if part[0] not in KEYWORDS:
                guards.add(part[0])
    return frozenset(guards)


def presence_only(expression: str, names: frozenset[str]) -> frozenset[str]:
    """The root names the expression only tests for presence (``name.empty()``/``exists()``)."""
    tokens = TOKEN.findall(expression)
    scopes: list[bool] = []
    only = set(names)
    for i, token in enumerate(tokens):
        if token == "(":
            before = tokens[i - 1] if i else ""
            scopes.append(i >= 2 and tokens[i - 2] == "." and before not in _WHOLE_INPUT_METHODS)
        elif token == ")":
            if scopes:
                scopes.pop()
        elif token in only and not any(scopes) and (i == 0 or tokens[i - 1] != "."):
            j = i + 1
            while tokens[j : j + 2] == [".", "trace"] and j + 3 < len(tokens) and tokens[j + 2] == "(":
                depth, j = 0, j + 2
                while j < len(tokens):
                    depth += {"(": 1, ")": -1}.get(tokens[j], 0)
                    j += 1
                    if depth == 0:
                        break
            if tokens[j : j + 4] not in ([".", "empty", "(", ")"], [".", "exists", "(", ")"]):
                only.discard(token)
    return frozenset(only)
