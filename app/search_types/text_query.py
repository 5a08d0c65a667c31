"""The query language of full-text search (https://hl7.org/fhir/R4/search.html#content: words,
phrases and logical operators, as in OData ``$search``; HAPI FHIR's simple query syntax for
``:text``), parsed into a tree and turned into a PostgreSQL ``tsquery`` expression.

- ``word`` matches the word in any grammatical form the configured language stems alike
  (``running`` finds ``runs`` under ``english``); ``word*`` matches words starting with it;
- ``"a phrase"`` matches the words in that order (stemmed; a phrase of stop words only matches
  its words in any order);
- terms side by side (or joined by ``AND`` / ``+``) must all match; ``OR`` / ``|`` between them
  lets either match; ``-term`` / ``NOT term`` excludes; ``( )`` group;
- under ``:text`` a query of bare words only (no operator, quote, ``*``) matches each word as a
  prefix (``blood pres`` finds "Blood pressure"), as a string search matches its start.

Odd input never errors: an unclosed quote runs to the end, an unmatched parenthesis or an operator
without operands is left out, punctuation inside words is split as in the indexed text. A query
with no word at all, or with more than :data:`MAX_TERMS` terms, is a 400. Every word and phrase is
a bound parameter; the SQL text holds only functions and operators."""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import invalid
from app.search_types.sql import Args
from app.search_types.text_config import SIMPLE, regconfig

MAX_TERMS = 32
MAX_TOKENS = 200
_PUNCTUATION = frozenset('"()|+')
_KEYWORDS = {"OR": "|", "AND": "+", "NOT": "-"}


@dataclass(frozen=True)
class Term:
    text: str
    prefix: bool = False
    phrase: bool = False


@dataclass(frozen=True)
class Op:
    kind: str  # "and", "or", "not"
    items: tuple[Node, ...]


Node = Term | Op


def _tokens(query: str) -> list[str | Term]:
    """Operators as one-character strings (``( ) | + -``), words and phrases as :class:`Term`."""
    out: list[str | Term] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif ch == '"':
            end = query.find('"', i + 1)
            end = n if end < 0 else end
            out.append(Term(query[i + 1 : end], phrase=True))
            i = end + 1
        elif ch in _PUNCTUATION:
            out.append(ch)
            i += 1
        elif ch == "-" and i + 1 < n and not query[i + 1].isspace():
            out.append("-")
            i += 1
        else:
            word, i = _word(query, i)
            out.append(_KEYWORDS.get(word, Term(word.rstrip("*"), prefix=word.endswith("*"))))
        if len(out) > MAX_TOKENS:
            raise invalid(f"A text search may have at most {MAX_TOKENS} words and operators")
    return out


def _word(query: str, i: int) -> tuple[str, int]:
    """The word starting at ``i`` (``\\`` takes the next character literally) and where it ends."""
    buf = []
    while i < len(query):
        ch = query[i]
        if ch == "\\" and i + 1 < len(query):
            buf.append(query[i + 1])
            i += 2
            continue
        if ch.isspace() or ch in _PUNCTUATION:
            break
        buf.append(ch)
        i += 1
    return "".join(buf), i


class _Parser:
    def __init__(self, tokens: list[str | Term]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek(self) -> str | Term | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def parse(self) -> Node | None:
        items = []
        while self.peek() is not None:
            node = self.any_of()
            if node is not None:
                items.append(node)
            if self.peek() == ")":  # unmatched: left out
                self.at += 1
        return _join("and", items)

    def any_of(self) -> Node | None:
        items = [self.all_of()]
        while self.peek() == "|":
            self.at += 1
            items.append(self.all_of())
        return _join("or", [i for i in items if i is not None])

    def all_of(self) -> Node | None:
        items = []
        while (tok := self.peek()) is not None and tok not in ("|", ")"):
            if tok == "+":
                self.at += 1
                continue
            node = self.unary()
            if node is not None:
                items.append(node)
        return _join("and", items)

    def unary(self) -> Node | None:
        tok = self.peek()
        self.at += 1
        if tok == "-":
            inner = self.unary() if self.peek() not in (None, "|", ")", "+") else None
            return Op("not", (inner,)) if inner is not None else None
        if tok == "(":
            inner = self.any_of()
            if self.peek() == ")":
                self.at += 1
            return inner
        return tok if isinstance(tok, Term) and _has_word(tok.text) else None


def _has_word(text: str) -> bool:
    return any(c.isalnum() for c in text)


def _join(kind: str, items: list[Node]) -> Node | None:
    if not items:
        return None
    return items[0] if len(items) == 1 else Op(kind, tuple(items))


def _count(node: Node) -> int:
    return 1 if isinstance(node, Term) else sum(_count(i) for i in node.items)


def parse_text_query(code: str, query: str, bare_prefix: bool) -> Node:
    """The tree of ``query``; with ``bare_prefix``, a query of bare words matches each as a prefix."""
    tokens = _tokens(query)
    tree = _Parser(tokens).parse()
    if tree is None:
        raise invalid(f"Search parameter '{code}' value '{query[:80]}' has no word to search for")
    if (terms := _count(tree)) > MAX_TERMS:
        raise invalid(f"Search parameter '{code}' has {terms} words; a text search takes at most {MAX_TERMS} words")
    if bare_prefix and all(isinstance(t, Term) and not t.phrase and not t.prefix for t in tokens):
        tree = _prefixed(tree)
    return tree


def _prefixed(node: Node) -> Node:
    if isinstance(node, Term):
        return Term(node.text, prefix=True)
    return Op(node.kind, tuple(_prefixed(i) for i in node.items))


def tsquery_sql(node: Node, config: str, args: Args, fold) -> str:  # noqa: ANN001 (fold: str -> str)
    """The tsquery expression of ``node``: each word in the configured language (stemmed) or as
    written (the ``simple`` lexemes every document also holds: stop words and prefixes of the
    unstemmed word), ORed, so neither stemming nor stop words lose a match. A phrase is matched in
    the configured language only (the as-written lexemes have no positions; PostgreSQL's phrase
    operator never matches those), unless it has no word but stop words there: then its words as
    written must all occur, in any order. (A prefix of several parts, ``o'ha*``, is a phrase too:
    it matches the configured language's forms.)"""
    if isinstance(node, Op):
        if node.kind == "not":
            return f"(!! {tsquery_sql(node.items[0], config, args, fold)})"
        op = " && " if node.kind == "and" else " || "
        return "(" + op.join(tsquery_sql(i, config, args, fold) for i in node.items) + ")"
    text = fold(node.text)
    if node.prefix:
        ref = args.add("'" + text.replace("\\", "\\\\").replace("'", "''") + "':*")
        fn = "to_tsquery"
    else:
        ref = args.add(text)
        fn = "phraseto_tsquery" if node.phrase else "plainto_tsquery"
    if config == SIMPLE:
        return f"{fn}({regconfig(config)}, {ref})"
    stemmed, written = f"{fn}({regconfig(config)}, {ref})", f"{fn}({regconfig(SIMPLE)}, {ref})"
    if node.phrase:  # a phrase never matches lexemes without positions: its words, in any order
        written = f"plainto_tsquery({regconfig(SIMPLE)}, {ref})"
        return f"(CASE WHEN numnode({stemmed}) > 0 THEN {stemmed} ELSE {written} END)"
    return f"({stemmed} || {written})"


def row_relaxation(node: Node) -> Node | None:
    """A query that some single value of a parameter matches whenever the parameter's values
    together match ``node`` (None: no such query, e.g. a negation alone): a string parameter's
    ``:text`` probes the index of its values' words with it, then tests the values together
    (:func:`app.search_types.string_text.string_text_condition`). A phrase relaxes to any of its
    words, a conjunction to one of its parts, a disjunction to its parts' relaxations."""
    if isinstance(node, Term):
        if node.phrase:
            return _join("or", [Term(w) for w in node.text.split() if _has_word(w)])
        return node
    if node.kind == "not":
        return None
    parts = [row_relaxation(i) for i in node.items]
    if node.kind == "and":
        return next((p for p in parts if p is not None), None)
    return None if any(p is None for p in parts) else _join("or", parts)  # type: ignore[misc]


_SPACES = re.compile(r"\s+")


def describe(node: Node) -> str:
    """A readable rendering of the tree (for tests and diagnostics)."""
    if isinstance(node, Term):
        text = _SPACES.sub(" ", node.text)
        return f'"{text}"' if node.phrase else text + ("*" if node.prefix else "")
    if node.kind == "not":
        return "-" + describe(node.items[0])
    return "(" + (" | " if node.kind == "or" else " ").join(describe(i) for i in node.items) + ")"
