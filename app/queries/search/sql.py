"""A tiny parameterised SQL builder: values become ``$n`` arguments, never SQL text."""

from __future__ import annotations


class Args:
    def __init__(self) -> None:
        self.values: list = []

    def add(self, value: object, cast: str | None = None) -> str:
        self.values.append(value)
        ref = f"${len(self.values)}"
        return f"{ref}::{cast}" if cast else ref


def any_of(conditions: list[str]) -> str:
    if not conditions:
        return "FALSE"
    return conditions[0] if len(conditions) == 1 else "(" + " OR ".join(conditions) + ")"


def all_of(conditions: list[str]) -> str:
    if not conditions:
        return "TRUE"
    return conditions[0] if len(conditions) == 1 else "(" + " AND ".join(conditions) + ")"


def like_prefix(text: str) -> str:
    """A LIKE pattern matching strings that start with ``text`` (its wildcards escaped)."""
    return escape_like(text) + "%"


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
