"""The inline projectors: run inside the write transaction, right after the append."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import asyncpg

from app.events.model import VersionEvent
from app.projections.current_state import CurrentStateProjector
from app.projections.custom_params import CustomSearchParamProjector
from app.projections.search_index import SearchIndexProjector


class Projector(Protocol):
    name: str

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[VersionEvent], positions: Sequence[int]
    ) -> None: ...


INLINE_PROJECTORS: list[Projector] = [CurrentStateProjector(), SearchIndexProjector(), CustomSearchParamProjector()]


async def project(conn: asyncpg.Connection, events: Sequence[VersionEvent], positions: Sequence[int]) -> None:
    for projector in INLINE_PROJECTORS:
        await projector.apply(conn, events, positions)
