"""A tiny parameterised SQL builder: values become ``$n`` arguments, never SQL text."""

from __future__ import annotations

from app.errors import invalid

MAX_ARGS = 30000  # below PostgreSQL's 32,767 bound parameters per statement


class Args:
    def __init__(self) -> None:
        self.values: list = []

    def add(self, value: object, cast: str | None = None) -> str:
        if len(self.values) >= MAX_ARGS:
            raise invalid(
                f"This search needs more than {MAX_ARGS} values bound in one query; "
                "use fewer comma-separated values, parameters or chained target types"
            )
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
