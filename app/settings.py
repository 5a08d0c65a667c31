"""All configuration in one place: environment variables prefixed ``FHIRLEDGER_``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

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
    max_body_bytes: int = 16 * 1024 * 1024
    max_url_bytes: int = 8 * 1024
    """Longest request URL (path and query) served; longer ones answer 414 (use POST _search)."""
    max_header_bytes: int = 32 * 1024
    """Most bytes of request headers (names and values) served; more answer 431."""
    pool_min_size: int = 2
    pool_max_size: int = 20
    max_bundle_entries: int = 10000
    history_default_count: int = 50
    history_max_count: int = 1000
    search_default_count: int = 20
    search_max_count: int = 1000
    projection_audit_seconds: int = 600
    """How often the jobs leader samples resources to check the projections against the log."""
    validation: str = "strict"
    """``strict`` rejects unknown elements; ``lenient`` accepts them with a warning."""
    actor_header: str | None = None
    """A request header naming the user (set by an authenticating proxy), e.g. ``X-User``; it wins
    over the ``sub`` of an ``Authorization: Bearer`` JWT. See app/api/actor.py."""


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
