"""A parser for the subset of FHIRPath (https://hl7.org/fhirpath/N1/) the R4 search parameters use:
paths, ``|`` unions, function calls, indexers, ``is``/``as``, ``=``/``!=``/``and``/``or``/``xor``/
``implies``, literals, ``%variables`` and ``$this``. Anything else raises :class:`Unsupported`, and
the caller falls back to fhirpathpy.

The tree is made of tuples: ``("ident", name)``, ``("var", name)``, ``("lit", value)``,
``("member", target, name)``, ``("call", target | None, name, args)``, ``("index", target, expr)``,
``("op", op, left, right)`` and ``("type", name)`` for the right side of ``is``/``as``.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

Node = tuple


class Unsupported(Exception):
    """The expression uses FHIRPath this compiler does not handle."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*')
      | (?P<num>\d+(?:\.\d+)?)
      | (?P<var>%[A-Za-z_][A-Za-z0-9_]*|%`[^`]*`|\$this|\$index|\$total)
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)
      | (?P<op>!=|!~|<=|>=|[.()\[\],|=<>~+\-*/&{}])
    )""",
    re.VERBOSE,
)

# Binary operators by precedence, loosest first (FHIRPath spec section 6.x).
_LEVELS: list[tuple[str, ...]] = [
    ("implies",),
    ("or", "xor"),
    ("and",),
    ("=", "!=", "~", "!~"),
    ("<", ">", "<=", ">="),
    ("|",),
    ("is", "as"),
]
_UNSUPPORTED_OPS = {"~", "!~", "<", ">", "<=", ">=", "+", "-", "*", "/", "&", "{", "}"}
_ESCAPES = {"'": "'", '"': '"', "`": "`", "\\": "\\", "/": "/", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise Unsupported(f"cannot tokenize {text[pos:]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        tokens.append((kind, m.group(kind)))
    return tokens


def _unquote(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise Unsupported(f"expected {value or 'a token'}, got {tok}")
        self.pos += 1
        return tok

    def parse(self) -> Node:
        node = self.expr(0)
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()}")
        return node

    def expr(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self.postfix()
        left = self.expr(level + 1)
        while True:
            tok = self.peek()
            if tok is None or tok[1] not in _LEVELS[level] or tok[0] == "str":
                return left
            op = self.take()[1]
            if op in _UNSUPPORTED_OPS or op == "implies":
                raise Unsupported(f"operator {op}")
            if op in ("is", "as"):
                left = ("op", op, left, ("type", self.type_name()))
            else:
                left = ("op", op, left, self.expr(level + 1))

    def type_name(self) -> str:
        name = self.take()[1].strip("`")
        while self.peek() == ("op", "."):
            self.take(".")
            name += "." + self.take()[1].strip("`")
        return name

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            tok = self.peek()
            if tok == ("op", "."):
                self.take(".")
                kind, name = self.take()
                if kind != "ident":
                    raise Unsupported(f"expected a name after '.', got {name!r}")
                node = self.invocation(node, name.strip("`"))
            elif tok == ("op", "["):
                self.take("[")
                index = self.expr(0)
                self.take("]")
                node = ("index", node, index)
            else:
                return node

    def invocation(self, target: Node | None, name: str) -> Node:
        if self.peek() != ("op", "("):
            return ("ident", name) if target is None else ("member", target, name)
        self.take("(")
        args: list[Node] = []
        if name in ("is", "as", "ofType"):
            args.append(("type", self.type_name()))
        elif self.peek() != ("op", ")"):
            args.append(self.expr(0))
            while self.peek() == ("op", ","):
                self.take(",")
                args.append(self.expr(0))
        self.take(")")
        return ("call", target, name, tuple(args))

    def primary(self) -> Node:
        kind, text = self.take()
        if kind == "str":
            return ("lit", _unquote(text))
        if kind == "num":
            return ("lit", Decimal(text) if "." in text else int(text))
        if kind == "var":
            return ("var", text.strip("%`"))
        if kind == "ident":
            if text in ("true", "false"):
                return ("lit", text == "true")
            return self.invocation(None, text.strip("`"))
        if text == "(":
            node = self.expr(0)
            self.take(")")
            return node
        raise Unsupported(f"unexpected {text!r}")


@lru_cache(maxsize=4096)
def parse(text: str) -> Node:
    """Parse one FHIRPath expression; raises :class:`Unsupported` outside the handled subset."""
    return _Parser(text).parse()
