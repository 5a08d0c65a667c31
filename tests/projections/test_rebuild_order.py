"""Several types' rebuilds start with the type that has the most events: the whole takes at least
as long as the largest type's rebuild, which must not be left to run alone at the end."""

from __future__ import annotations

import asyncpg
import httpx

from app.events.store import counts_by_type
from app.projections.rebuild_many import largest_first


async def test_the_type_with_the_most_events_is_rebuilt_first(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    before = await counts_by_type(pool)
    fewer = before.get("EnrollmentRequest", (0, 0))[0]
    for _ in range(fewer + 2 - before.get("EnrollmentResponse", (0, 0))[0]):
        r = await client.post(
            "/fhir/EnrollmentResponse", json={"resourceType": "EnrollmentResponse", "status": "active"}
        )
        assert r.status_code == 201, r.text
    r = await client.post("/fhir/EnrollmentRequest", json={"resourceType": "EnrollmentRequest", "status": "active"})
    assert r.status_code == 201, r.text
    # Linkage: no events at all; it keeps its place after the types that have some
    order = await largest_first(pool, ["Linkage", "EnrollmentRequest", "EnrollmentResponse"])
    assert order == ["EnrollmentResponse", "EnrollmentRequest", "Linkage"]
