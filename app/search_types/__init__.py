"""Search-parameter types (https://hl7.org/fhir/R4/search.html#ptypes), one module per type.

Each module (:mod:`string`, :mod:`token`, :mod:`date`, :mod:`number`, :mod:`quantity`,
:mod:`reference`, :mod:`uri`, :mod:`composite`, :mod:`special`) holds one :class:`SearchType`
(:mod:`app.search_types.protocol`): how values of that type are extracted from a resource, the
side table(s) and indexes they are stored in, the rows written there, the SQL condition of a
search value under each modifier and prefix, the modifiers it accepts and its sort columns.
:mod:`app.search_types.registry` maps type names to them; projections (extraction, side tables)
and queries (conditions, sorting, modifiers) both dispatch through it.
"""
