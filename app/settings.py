"""All configuration in one place: environment variables prefixed ``FHIRLEDGER_``."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FHIRLEDGER_", extra="ignore")

    database_url: str | None = None
    """PostgreSQL DSN. Unset: an embedded PostgreSQL is started under ``data_dir``."""
    data_dir: Path = Path(".fhirledger")
    host: str = "127.0.0.1"
    port: int = 8080
    base_path: str = "/fhir"
    spec_dir: Path = PROJECT_ROOT / "spec" / "fhir" / "r4"
    spec_cache_dir: Path | None = None
    """Where what is derived from the files of ``spec_dir`` is cached (app/fhirspec/derived.py);
    unset: ``<data_dir>/spec-cache``. Unwritable: every process derives it from the files again."""
    max_body_bytes: int = 16 * 1024 * 1024
    max_url_bytes: int = 8 * 1024
    """Longest request URL (path and query) served; longer ones answer 414 (use POST _search)."""
    max_header_bytes: int = 32 * 1024
    """Most bytes of request headers (names and values) served; more answer 431."""
    pool_min_size: int = 2
    pool_max_size: int = 20
    pool_timeout_ms: int = 5000
    """Longest wait for a free database connection; past it the request answers 503 with Retry-After."""
    statement_timeout_ms: int = 30000
    """PostgreSQL ``statement_timeout`` of request work; a cancelled statement answers 400 too-costly."""
    trusted_proxies: str = ""
    """Comma list of IPs/CIDRs of proxies whose ``X-Forwarded-For`` names the client address."""
    allowed_hosts: str = ""
    """Comma list of host names (optionally ``host:port``) requests may name in ``Host``; empty: any."""
    max_bundle_entries: int = 10000
    history_default_count: int = 50
    history_max_count: int = 1000
    search_default_count: int = 20
    search_max_count: int = 1000
    search_handling: Literal["strict", "lenient"] = "strict"
    """Searches with a parameter the server cannot apply: ``strict`` answers 400, ``lenient``
    ignores it with a warning; a request's ``Prefer: handling=`` wins."""
    text_search_config: str = "english"
    """PostgreSQL text-search configuration of ``_content``, ``_text`` and ``:text`` (stemming and
    stop words of a language; ``simple`` for none). Changing it needs ``fhirledger projections
    rebuild --all`` (searches answer 503 until then)."""
    log_compression: Literal["zstd", "none"] = "zstd"
    """How new events store their resource in the event log: ``zstd`` compresses the JSON with a
    preset dictionary (app/events/codec.py; about 8x smaller); ``none`` stores the JSON as is.
    Either way every read gives the same JSON bytes; rows already written stay as they are."""
    projection_audit_seconds: int = 600
    """How often the jobs leader samples resources to check the projections against the log."""
    validation: str = "strict"
    """``strict`` rejects unknown elements; ``lenient`` accepts them with a warning."""
    actor_header: str | None = None
    """A request header naming the user (set by an authenticating proxy), e.g. ``X-User``; it wins
    over the ``sub`` of an ``Authorization: Bearer`` JWT. See app/api/actor.py."""

    export_dir: Path | None = None
    """Where bulk export files are written (one directory per export); unset: ``<data_dir>/exports``."""
    export_ttl_hours: float = 24.0
    """How long a finished bulk export's files stay downloadable; then they are removed."""
    import_dir: Path | None = None
    """``$import`` reads ``file://`` URLs only under this directory (unset: ``file://`` is refused)."""
    import_max_bytes: int = 4 * 1024**3
    """Most bytes ``$import`` downloads from one ``http(s)://`` URL."""
    import_fetch_timeout_seconds: float = 600.0
    """Longest download of one ``$import`` URL."""

    auth_issuer: str | None = None
    """The token issuer (``iss``). Set: every request needs a valid bearer JWT (see app/auth/)."""
    auth_audience: str | None = None
    """The ``aud`` tokens must carry (usually this server's FHIR base URL); required with an issuer."""
    auth_jwks: str | None = None
    """The issuer's signing keys: an ``https://`` or ``http://`` JWKS URL, or a local file path."""
    auth_authorization_endpoint: str | None = None
    auth_token_endpoint: str | None = None
    auth_admin_scope: str = "system/*.*"
    """The scope administrative operations need (reindex, projection rebuilds, custom SearchParameters)."""
    auth_jwks_timeout_seconds: float = 5.0
    auth_jwks_min_refetch_seconds: float = 60.0
    """A token with an unknown ``kid`` makes the key set be fetched again, at most this often."""

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                try:
                    ipaddress.ip_network(part.strip(), strict=False)
                except ValueError:
                    raise ValueError(f"'{part.strip()}' is not an IP address or CIDR") from None
        return value

    @model_validator(mode="after")
    def _auth_complete(self) -> Settings:
        if self.auth_issuer:
            missing = [name for name in ("auth_audience", "auth_jwks") if not getattr(self, name)]
            if missing:
                names = " and ".join(f"FHIRLEDGER_{name.upper()}" for name in missing)
                raise ValueError(f"FHIRLEDGER_AUTH_ISSUER is set, so {names} must be set too")
        return self


RETIRED = {
    "FHIRLEDGER_OFFLOAD_BODY_BYTES": "a transaction Bundle's work runs on the event loop in slices of 1 ms, "
    "other requests served between them, whatever its size",
}
"""Settings no longer read, and what took their place (``serve`` warns when one is set)."""


def retired_settings(environ: Mapping[str, str]) -> list[str]:
    """A warning for each retired setting ``environ`` still sets."""
    return [f"{name} is no longer read: {why}" for name, why in RETIRED.items() if name in environ]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
