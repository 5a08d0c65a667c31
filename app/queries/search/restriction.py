"""What a token's scopes let it see of a resource type, as search conditions: the
:class:`~app.queries.search.model.Restriction` of an allowed :class:`app.auth.Decision`, and its SQL.

Each :class:`app.auth.Access` of the decision becomes one group: the patient's compartment (an OR
over :func:`app.auth.compartment_criteria`, e.g. ``subject=Patient/1`` or ``performer=Patient/1``)
AND every parameter of a v2 scope's query (``patient/Observation.rs?category=laboratory``), parsed
by the search parser (strictly); the groups are ORed. The conditions are built by the same code
as search criteria, so a value is always a bound argument, never SQL text, and a read check
agrees with a search.
"""

from __future__ import annotations

from app.auth import Access, Decision, Principal, compartment_criteria, forbidden
from app.errors import FhirError
from app.identity import ID_PATTERN
from app.projections.search_index import search_table
from app.queries.search.conditions import criterion_sql, narrowed
from app.queries.search.criteria import resolve
from app.queries.search.model import AccessGroup, Criterion, Restriction, Unusable
from app.queries.search.parse import QUIET_PARAMS, RESULT_PARAMS, parse_search
from app.queries.search.sql import Args, all_of, any_of
from app.search_types.param_aliases import stored_code
from app.search_types.reference import REFERENCE

_NOT_CRITERIA = RESULT_PARAMS | QUIET_PARAMS | {"_include", "_revinclude"}


def _compartment(resource_type: str, patient: str) -> tuple[Criterion, ...]:
    """Conditions any one of which puts a ``resource_type`` in ``patient``'s compartment; none (so
    nothing matches) for a patient claim that is not a resource id."""
    if not ID_PATTERN.fullmatch(patient):
        return ()
    return tuple(resolve(resource_type, code, value) for code, value in compartment_criteria(resource_type, patient))


def _query_criteria(resource_type: str, params: tuple[tuple[str, str], ...]) -> tuple[Criterion, ...]:
    """The criteria of a scope's query; :class:`Unusable` when it is not a plain search."""
    for name, _ in params:
        if name.partition(":")[0] in _NOT_CRITERIA:
            raise Unusable(f"'{name[:60]}' is not a search criterion")
    try:
        q = parse_search(resource_type, list(params), strict=True, default_count=1, max_count=1)
    except FhirError as exc:
        raise Unusable(exc.diagnostics) from None
    return tuple(q.criteria)


def _group(resource_type: str, access: Access) -> AccessGroup:
    compartment = None if access.patient is None else _compartment(resource_type, access.patient)
    criteria = _query_criteria(resource_type, access.params) if access.params else ()
    why = []
    if access.patient is not None:
        why.append(f"in the compartment of Patient/{access.patient[:64]}")
    if access.params:
        why.append("matching " + "&".join(f"{k}={v}" for k, v in access.params)[:200])
    return AccessGroup(access.patient, compartment, criteria, " and ".join(why))


def restriction_for(decision: Decision) -> Restriction | None:
    """The restriction an allowed decision carries (None: none); 403 for a refused one, or when
    none of its scopes' queries can be applied as a search of the type."""
    if not decision.allowed:
        raise forbidden(decision)
    if decision.unrestricted:
        return None
    groups: list[AccessGroup] = []
    unusable: list[str] = []
    for access in decision.alternatives:
        try:
            groups.append(_group(decision.resource_type, access))
        except Unusable as exc:
            unusable.append(f"'{'&'.join(f'{k}={v}' for k, v in access.params)[:100]}' ({exc.why[:200]})")
    if not groups:
        raise FhirError(
            403,
            "forbidden",
            f"The token's scopes allow {decision.interaction} on {decision.resource_type} only for resources "
            f"matching {' or '.join(unusable)}, which this server cannot apply as a search of "
            f"{decision.resource_type}; ask for a scope without that query or with a supported one",
        )
    return Restriction(decision.resource_type, tuple(groups))


def _reference_condition(kind: str, c: Criterion, args: Args, base: str) -> str:
    """A compartment parameter's condition, on the rows that answer it (a narrowed one's: its wider one's)."""
    code, only = stored_code(kind, c.code)
    return narrowed(REFERENCE.condition(code, c.values[0], None, c.param, args, base), only, args)


def _compartment_sql(kind: str, criteria: tuple[Criterion, ...], args: Args, base: str) -> str:
    """In the compartment: ``_id`` (Patient) or one uncorrelated id set over the reference side
    table for all the compartment's reference parameters (they all name the same patient), which
    PostgreSQL hashes or joins once instead of probing per row."""
    conds = [criterion_sql(kind, c, args, base) for c in criteria if c.param.type != "reference"]
    refs = [c for c in criteria if c.param.type == "reference"]
    if refs:
        assert len({c.values for c in refs}) == 1
        value = any_of([_reference_condition(kind, c, args, base) for c in refs])
        table = search_table(kind, "reference")
        conds.append(f"r.key IN (SELECT s.key FROM {table} s WHERE {value})")
    return any_of(conds)


def restriction_sql(restriction: Restriction, args: Args, base: str) -> str:
    """The condition, on current-state row ``r``, that a resource is visible under ``restriction``."""
    kind = restriction.resource_type
    groups = []
    for group in restriction.groups:
        parts = [criterion_sql(kind, c, args, base) for c in group.criteria]
        if group.compartment is not None:
            parts.insert(0, _compartment_sql(kind, group.compartment, args, base))
        groups.append(all_of(parts))
    return any_of(groups)


def readable(principal: Principal, resource_type: str) -> Decision:
    """Whether (and how) resources of ``resource_type`` may be returned alongside others (includes,
    history entries): allowed by an ``r`` or an ``s`` scope on the type."""
    read = principal.allows(resource_type, "read")
    if read.unrestricted:
        return read
    search = principal.allows(resource_type, "search-type")
    if not search.allowed:
        return read
    if not read.allowed or search.unrestricted:
        return search
    alternatives = tuple(dict.fromkeys(read.alternatives + search.alternatives))
    return Decision(resource_type, "read", alternatives, f"{read.needed} or {search.needed}")
