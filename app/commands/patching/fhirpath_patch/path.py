"""The path of a FHIRPath Patch operation, parsed into steps: a leading type (``Patient``), members,
indexers ``[n]``, ``where(criteria)``, ``extension('url')``, ``ofType(T)``, ``first()``, ``last()``,
``tail()``, ``single()``, ``skip(n)`` and ``take(n)``. ``where`` criteria are compiled by fhirpathpy
with the R4 model. Anything outside this grammar raises ValueError."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import fhirpathpy
from fhirpathpy.models import models

from app.fhirpath.regex_guard import refusal as regex_refusal

IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = re.compile(r"[$%]?[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+")
_NO_ARGS = frozenset({"first", "last", "tail", "single"})
_INT_ARG = frozenset({"skip", "take"})

Step = tuple[str, object]  # (kind, argument): member, type, index, where, extension, ofType, first...


def parse_path(text: str) -> list[Step]:
    """The steps of a patch path; raises ValueError for anything outside the supported grammar."""
    scanner = _Scanner(text)
    steps: list[Step] = []
    first = scanner.name()
    if first in ("$this", "%resource", "%rootResource"):
        pass
    elif scanner.peek() == "(":
        steps.append(_function(first, scanner.arguments()))
    elif first[:1].isupper():
        steps.append(("type", first))
    else:
        steps.append(("member", first))
    while not scanner.done():
        if scanner.take("."):
            name = scanner.name()
            steps.append(_function(name, scanner.arguments()) if scanner.peek() == "(" else ("member", name))
        elif scanner.take("["):
            number = scanner.until("]").strip()
            if not _NUMBER.fullmatch(number):
                raise ValueError(f"an indexer must be a non-negative integer, not [{number}]")
            steps.append(("index", int(number)))
        else:
            raise ValueError(f"cannot read {scanner.rest()[:20]!r}")
    return steps


def _function(name: str, argument: str) -> Step:
    argument = argument.strip()
    if name in _NO_ARGS:
        if argument:
            raise ValueError(f"{name}() takes no argument")
        return (name, None)
    if name in _INT_ARG:
        if not _NUMBER.fullmatch(argument):
            raise ValueError(f"{name}() takes a non-negative integer")
        return (name, int(argument))
    if name == "where":
        if not argument:
            raise ValueError("where() needs criteria")
        return ("where", _criteria(argument))
    if name == "ofType":
        type_name = argument.removeprefix("FHIR.").strip("`")
        if not IDENT.fullmatch(type_name):
            raise ValueError("ofType() takes a type name")
        return ("ofType", type_name)
    if name == "extension":
        match = re.fullmatch(r"'((?:[^'\\]|\\.)*)'", argument)
        if not match:
            raise ValueError("extension() takes a string literal url")
        return ("extension", match.group(1).replace("\\'", "'"))
    raise ValueError(f"the function {name}() is not supported in a patch path")


@lru_cache(maxsize=512)
def _criteria(expression: str) -> Callable:
    if why := regex_refusal(expression):
        raise ValueError(f"where({expression[:200]}): {why}")
    try:
        criteria = fhirpathpy.compile(expression, model=models["r4"])
        criteria([], {"resource": {}, "rootResource": {}})  # fhirpathpy finds most errors only when run
        return criteria
    except Exception as exc:  # fhirpathpy raises bare Exception and ANTLR errors
        raise ValueError(f"where({expression}) is not valid FHIRPath ({exc})") from None


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def done(self) -> bool:
        self.skip()
        return self.pos >= len(self.text)

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos : self.pos + 1]

    def rest(self) -> str:
        return self.text[self.pos :]

    def take(self, char: str) -> bool:
        if self.peek() == char:
            self.pos += 1
            return True
        return False

    def name(self) -> str:
        self.skip()
        if self.take("`"):
            return self.until("`")
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise ValueError(f"expected a name at {self.rest()[:20]!r}" if self.rest() else "the path ends early")
        self.pos = match.end()
        return match.group()

    def until(self, char: str) -> str:
        end = self.text.find(char, self.pos)
        if end < 0:
            raise ValueError(f"missing {char!r}")
        out, self.pos = self.text[self.pos : end], end + 1
        return out

    def arguments(self) -> str:
        """The text between balanced parentheses (string literals and quoted names respected)."""
        self.take("(")
        start, depth, quote = self.pos, 1, ""
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if quote:
                if char == "\\":
                    self.pos += 1
                elif char == quote:
                    quote = ""
            elif char in "'`":
                quote = char
            elif char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    return self.text[start : self.pos - 1]
        raise ValueError("unbalanced parentheses")
