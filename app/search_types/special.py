"""The ``special`` search type (``Location.near``, ``_text``, ``_content``...): not supported, so
nothing is extracted or stored and a search on it is refused (or ignored under lenient handling)."""

from __future__ import annotations

from app.errors import invalid
from app.fhirspec.search_parameters import SearchParam
from app.search_types.protocol import SearchType
from app.search_types.sql import Args


class SpecialType(SearchType):
    name = "special"
    searchable = False

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        raise invalid(f"'{code}' is a special parameter, which this server does not support")


SPECIAL = SpecialType()
