"""The PostgreSQL text-search configuration of full-text search (``_content``, ``_text``, ``:text``):
``FHIRLEDGER_TEXT_SEARCH_CONFIG`` (default ``english``; ``simple`` for no stemming and no stop
words). Its name is checked to be an identifier here and against ``pg_ts_config`` at start
(:func:`app.projections.state.check_projections`); it is part of the search projection's layout
version, so changing it marks the search index stale (503) until ``fhirledger projections rebuild``
has re-stemmed the stored text."""

from __future__ import annotations

import re

from app.settings import get_settings

SIMPLE = "simple"
_NAME = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)?")
_override: list[str] = []


class TextConfigError(ValueError):
    """A text-search configuration name that is malformed or unknown to the database."""


def valid_name(name: str) -> str:
    """``name`` if it has the shape of a (possibly schema-qualified) configuration name."""
    if not _NAME.fullmatch(name):
        raise TextConfigError(
            f"FHIRLEDGER_TEXT_SEARCH_CONFIG={name!r} is not a text search configuration name "
            "(lower-case letters, digits and _, e.g. english, german, simple)"
        )
    return name


def text_config() -> str:
    """The configured name (checked to be an identifier, so it may be spelled into SQL)."""
    return valid_name(_override[-1] if _override else get_settings().text_search_config)


def use_text_config(name: str | None) -> None:
    """Override the setting in this process (``None``: back to the setting); for tests and tools.
    Statements already built keep the configuration they were built with."""
    if name is None:
        _override.clear()
    else:
        _override.append(valid_name(name))


def regconfig(name: str) -> str:
    """The SQL literal of a configuration name."""
    return f"'{valid_name(name)}'::regconfig"


async def check_text_config(conn) -> None:  # noqa: ANN001 (an asyncpg connection)
    """Raise :class:`TextConfigError` unless the database knows the configured name."""
    name = text_config()
    schema, _, short = name.rpartition(".")
    found = await conn.fetchval(
        "SELECT count(*) FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace"
        " WHERE c.cfgname = $1 AND ($2 = '' OR n.nspname = $2)",
        short,
        schema,
    )
    if not found:
        names = await conn.fetch("SELECT cfgname FROM pg_ts_config ORDER BY cfgname")
        raise TextConfigError(
            f"FHIRLEDGER_TEXT_SEARCH_CONFIG={name!r} is not a text search configuration of this "
            f"PostgreSQL server; available: {', '.join(r['cfgname'] for r in names)}"
        )
