"""Reading search-parameter expressions as text: the top-level ``|`` branches of a union
(``Patient.name | Practitioner.name``), which is all the registry needs to tell which branches
apply to which resource type."""

from __future__ import annotations


def split_union(text: str) -> list[str]:
    """The top-level ``|`` branches of an expression, as text (quotes and brackets respected)."""
    parts: list[str] = []
    depth = 0
    quote = False
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == "'":
                quote = False
        elif ch == "'":
            quote = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]
