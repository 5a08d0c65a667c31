"""Search paging links that stay short whatever the query (https://hl7.org/fhir/R4/http.html#paging).

A ``next``/``previous`` link is the search URL with the paging cursor added (``[base]/[type]?
name=x&_page=…``), so a client may re-send its query string to ``[base]/[type]``. When that URL
would be longer than ``MAX_LINK_CHARS`` (a large ``POST _search`` form body), the search's
parameters are kept in the ``search_page`` table behind an unguessable token instead, and the
link reads ``[base]/[type]?_page_token=…&_page=…``. A token is bound to the search scope (the
resource type, or the system level), lives ``TOKEN_TTL_SECONDS`` after its last use, and an
expired or unknown one answers 410 asking the client to re-run the search. Short searches never
write to the database."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import asyncpg
import orjson

from app.errors import FhirError, invalid
from app.queries.bundle import page_url
from app.queries.paging import CURSOR_PARAM

TOKEN_PARAM = "_page_token"
MAX_LINK_CHARS = 2048
TOKEN_TTL_SECONDS = 3600
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22}")  # secrets.token_urlsafe(16): 128 random bits
_KEPT_BESIDE_TOKEN = ("_format", "_pretty")  # how to answer, not what to find: stay in the URL


def _scope_name(scope: str) -> str:
    return f"[base]/{scope}" if scope else "[base] (all types)"


async def resolve_page_token(
    pool: asyncpg.Pool, scope: str, params: list[tuple[str, str]]
) -> tuple[list[tuple[str, str]], str | None]:
    """The search parameters a request stands for: its own, or those kept behind its ``_page_token``
    (with the request's cursor); and the token, if any."""
    tokens = [v for k, v in params if k == TOKEN_PARAM]
    if not tokens:
        return params, None
    if len(tokens) > 1:
        raise invalid(f"{TOKEN_PARAM} may be given only once")
    others = sorted({k for k, _ in params if k not in (TOKEN_PARAM, CURSOR_PARAM, *_KEPT_BESIDE_TOKEN)})
    if others:
        raise invalid(
            f"{TOKEN_PARAM} stands for a whole search and cannot be combined with {', '.join(others)[:200]}; "
            "to change the search, run it again with all its parameters"
        )
    token = tokens[0]
    if not _TOKEN.fullmatch(token):
        raise invalid(f"{TOKEN_PARAM}='{token[:40]}' is not one this server issued; re-run the search")
    row = await pool.fetchrow(
        "UPDATE search_page SET used_at = now()"
        " WHERE token = $1 AND used_at > now() - make_interval(secs => $2) RETURNING scope, params",
        token,
        TOKEN_TTL_SECONDS,
    )
    if row is None:
        raise FhirError(
            410,
            "not-found",
            f"The search behind {TOKEN_PARAM}={token} has expired (kept {TOKEN_TTL_SECONDS // 60} minutes after "
            "its last page was read) or was never issued; re-run the search to page through it again",
        )
    if row["scope"] != scope:
        raise invalid(
            f"{TOKEN_PARAM}={token} belongs to a search on {_scope_name(row['scope'])}, "
            f"not on {_scope_name(scope)}; follow the Bundle's links as given"
        )
    kept = [(k, v) for k, v in params if k != TOKEN_PARAM]
    return [(k, v) for k, v in orjson.loads(row["params"])] + kept, token


async def _store(pool: asyncpg.Pool, scope: str, params: list[tuple[str, str]]) -> str:
    token = secrets.token_urlsafe(16)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "DELETE FROM search_page WHERE used_at < now() - make_interval(secs => $1)", TOKEN_TTL_SECONDS
        )
        await conn.execute(
            "INSERT INTO search_page (token, scope, params) VALUES ($1, $2, $3)", token, scope, orjson.dumps(params)
        )
    return token


@dataclass
class PageLinks:
    """Builds the ``next``/``previous`` links of one search: ``url`` (absolute, without query)
    with the search's parameters, or with its token once they are too long for a link."""

    pool: asyncpg.Pool
    url: str
    scope: str
    params: list[tuple[str, str]]  # as applied, the cursor included or not
    token: str | None = None

    async def link(self, cursor: str) -> str:
        search = [(k, v) for k, v in self.params if k not in (CURSOR_PARAM, TOKEN_PARAM)]
        if self.token is None:
            plain = page_url(self.url, search, {CURSOR_PARAM: cursor})
            if len(plain) <= MAX_LINK_CHARS:
                return plain
            self.token = await _store(self.pool, self.scope, [(k, v) for k, v in search if k not in _KEPT_BESIDE_TOKEN])
        kept = [(k, v) for k, v in search if k in _KEPT_BESIDE_TOKEN]
        return page_url(self.url, [(TOKEN_PARAM, self.token), *kept], {CURSOR_PARAM: cursor})
