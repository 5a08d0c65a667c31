"""An app with authorization on (real signed tokens checked against a JWKS file), for the tests of
what restricted scopes let reads return, and a small data set of two patients."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from app.api.app import create_app
from app.settings import Settings
from tests.auth.keys import AUDIENCE, ISSUER, SigningKey, claims, jwks

TAG_SYSTEM = "http://fhirledger.test/access"
LAB = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}
VITALS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}


@pytest.fixture(scope="session")
def signing_key() -> SigningKey:
    return SigningKey("access-rsa")


@pytest.fixture(scope="session")
def auth_settings(database_dsn: str, signing_key: SigningKey, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    path: Path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    path.write_bytes(orjson.dumps(jwks(signing_key)))
    return Settings(
        database_url=database_dsn,
        max_body_bytes=1024 * 1024,
        auth_issuer=ISSUER,
        auth_audience=AUDIENCE,
        auth_jwks=str(path),
    )


@pytest.fixture(scope="session")
async def auth_client(auth_settings: Settings, pool: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(auth_settings, pool)  # authorization on: the app's own middleware
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


@dataclass
class World:
    """Patients A and B with their Observations, all tagged with ``tag``; ``ids`` by name:
    a_lab (A, laboratory, performer Practitioner pr, focus Patient B), a_vital (A, vital signs),
    b_lab (B, laboratory), b_focus_a (B's, focus on Patient A), pr (a Practitioner)."""

    client: httpx.AsyncClient
    key: SigningKey
    tag: str = field(default_factory=lambda: uuid.uuid4().hex)
    ids: dict[str, str] = field(default_factory=dict)
    # to the millisecond, as the server stamps versions: a create within the same millisecond is "since"
    since: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds"))

    async def add(self, name: str, resource: dict) -> str:
        resource = {**resource, "meta": {"tag": [{"system": TAG_SYSTEM, "code": self.tag}]}}
        r = await self.client.post(f"/fhir/{resource['resourceType']}", json=resource)
        assert r.status_code == 201, r.text
        self.ids[name] = r.json()["id"]
        return self.ids[name]

    def token(self, scope: str, patient: str | None = None) -> dict[str, str]:
        """Headers with a bearer token for ``scope`` and (by name) the patient in context."""
        pid = self.ids.get(patient, patient) if patient else None
        return {"Authorization": "Bearer " + self.key.sign(claims(scope=scope, patient=pid))}

    def name(self, rid: str) -> str:
        return next((n for n, i in self.ids.items() if i == rid), rid)

    def names(self, bundle: dict, mode: str = "match") -> set[str]:
        return {self.name(e["resource"]["id"]) for e in bundle.get("entry", []) if e["search"]["mode"] == mode}


async def world(open_client: httpx.AsyncClient, key: SigningKey) -> World:
    w = World(open_client, key)
    a = await w.add("A", {"resourceType": "Patient", "name": [{"family": "Ames"}]})
    b = await w.add("B", {"resourceType": "Patient", "name": [{"family": "Bates"}]})
    pr = await w.add("pr", {"resourceType": "Practitioner", "name": [{"family": "Pratt"}]})

    def obs(patient: str, category: dict, **more: Any) -> dict:
        return {
            "resourceType": "Observation",
            "status": "final",
            "category": [category],
            "code": {"text": "t"},
            "subject": {"reference": f"Patient/{patient}"},
            **more,
        }

    await w.add(
        "a_lab", obs(a, LAB, performer=[{"reference": f"Practitioner/{pr}"}], focus=[{"reference": f"Patient/{b}"}])
    )
    await w.add("a_vital", obs(a, VITALS))
    await w.add("b_lab", obs(b, LAB))
    await w.add("b_focus_a", obs(b, VITALS, focus=[{"reference": f"Patient/{a}"}]))
    return w


def outcome_issues(bundle: dict) -> list[dict]:
    return [i for e in bundle.get("entry", []) if e["search"]["mode"] == "outcome" for i in e["resource"]["issue"]]
