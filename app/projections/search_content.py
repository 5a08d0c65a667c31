"""Which search rows an update may change, decided from what changed between the two versions
(:func:`revised_rows`), so that the rows of what did not change are not extracted.

Two versions equal but for the stamp the server gives each version (``meta.versionId`` and
``meta.lastUpdated``, :mod:`app.commands.stamp`) have the same rows: the search rows are a pure
function of the resource (:func:`app.projections.search_index.rows_of`) and read neither stamp
field: ``_lastUpdated`` is answered from the current-state table, the text rows leave ``meta`` out.
A parameter whose expression may reach either field (a custom one could) makes ``meta`` count as
changed on every version. An update that sends the resource as it is (a client re-saving a form, a
sync re-sending a record) then writes the log and the current-state row and no search row: it
costs no extraction of the new version and none of the previous one.

An update that changes some elements (:func:`revised_rows`) extracts, from both versions, only the
rows of the parameters whose expression starts from a changed top-level element (each parameter's
own generated row function, :func:`app.projections.search_index.code_rows`), and the whole-resource
text rows: a parameter reads nothing of the resource outside the top-level elements its expression
starts from (its filters read the node they test; a reference names a contained resource, so a
change of ``contained`` counts as a change of every parameter), so the rows of the others are the
same in both versions. A parameter whose expression names ``%resource`` (or another environment
variable) or is left to fhirpathpy counts as reading every element. An update of a phone number
extracts ``phone``, ``telecom`` and ``email`` of the two versions, not the thirty other parameters
of a Patient.
"""

from __future__ import annotations

from collections.abc import Mapping

from app.fhirpath import compile_expression
from app.fhirpath.codegen import first_root_keys
from app.fhirspec.search_parameters import SearchParam, params_for
from app.projections.search_index import code_rows, rows_of
from app.search_types.protocol import Rows
from app.search_types.row_plan import SKIPPED

ONE_BY_ONE = 8
"""At most this many parameters changed: each is extracted by its own row function; more, and the
type's row function extracts them all (one walk of the resource)."""

STAMP = ("versionId", "lastUpdated")
_MAY_READ_STAMP = (*STAMP, "descendants(", "children(", "repeat(")
"""Words of an expression that may reach a stamp field: its name, or a walk over every child (no R4
parameter but ``_lastUpdated`` holds one)."""
_reads_stamp: dict[str, tuple[Mapping[str, SearchParam], bool]] = {}


def reads_stamp(resource_type: str) -> bool:
    """Whether some search parameter of the type (``_lastUpdated`` aside) may read a stamp field."""
    params = params_for(resource_type)
    cached = _reads_stamp.get(resource_type)
    if cached is not None and cached[0] is params:  # the registry swaps mappings on change
        return cached[1]
    expressions = [
        e
        for code, p in params.items()
        if code not in SKIPPED
        for e in (p.expression_for(resource_type), *(c.expression for c in p.components))
    ]
    reads = any(word in (e or "") for e in expressions for word in _MAY_READ_STAMP)
    _reads_stamp[resource_type] = (params, reads)
    return reads


def _roots(resource_type: str, param: SearchParam) -> frozenset[str] | None:
    """The top-level elements the rows of ``param`` are read from (None: any element)."""
    expression = param.expression_for(resource_type)
    if not expression:
        return frozenset()
    parts = [expression, *(c.expression or "" for c in param.components)]
    if any("%" in part for part in parts):  # %resource, %context...: the whole resource is in reach
        return None
    branches = compile_expression(expression, resource_type).branches
    if branches is None:
        return None
    keys = first_root_keys(branches)
    if keys is None and param.components and _at_root(branches, resource_type):
        # a composite of the resource itself (Observation's code-value-*): its components' elements
        found: set[str] = set()
        for component in param.components:
            sub = compile_expression(component.expression, resource_type).branches
            sub_keys = first_root_keys(sub) if sub is not None else None
            if sub_keys is None:
                return None
            found.update(sub_keys)
        return frozenset(found)
    return None if keys is None else frozenset(keys)


def _at_root(branches: list, resource_type: str) -> bool:
    """Whether every branch yields the resource itself (steps that only test its type)."""
    return all(typ == resource_type and all(getattr(s, "passes", False) for s in steps) for steps, typ in branches)


_roots_of: dict[str, tuple[Mapping[str, SearchParam], dict[str, frozenset[str] | None]]] = {}


def code_roots(resource_type: str) -> dict[str, frozenset[str] | None]:
    """code -> the top-level elements its rows are read from (None: any), for every parameter of the
    type; computed again when the registry swaps the type's mapping."""
    params = params_for(resource_type)
    cached = _roots_of.get(resource_type)
    if cached is not None and cached[0] is params:
        return cached[1]
    roots = {code: _roots(resource_type, p) for code, p in params.items()}
    _roots_of[resource_type] = (params, roots)
    return roots


def changed_elements(resource_type: str, before: dict, after: dict) -> set[str]:
    """The top-level elements whose values differ between two versions; ``meta`` only when more
    than its stamp differs (or a parameter may read the stamp)."""
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    if "meta" in changed and not reads_stamp(resource_type):
        if _unstamped({"meta": before.get("meta")}) == _unstamped({"meta": after.get("meta")}):
            changed.discard("meta")
    return changed


def revised_rows(resource_type: str, before: dict, after: dict) -> tuple[Rows, Rows]:
    """The search rows of two versions of a resource, limited to the parameters a changed element
    may change (both empty when nothing but the stamp changed; see the module's doc)."""
    changed = changed_elements(resource_type, before, after)
    if not changed:
        return {}, {}
    if "contained" in changed:
        return rows_of(before), rows_of(after)
    codes = [c for c, roots in code_roots(resource_type).items() if roots is None or not roots.isdisjoint(changed)]
    if len(codes) > ONE_BY_ONE:
        return rows_of(before), rows_of(after)
    return code_rows(before, codes), code_rows(after, codes)


def _unstamped(resource: dict) -> dict:
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return resource
    rest = {k: v for k, v in meta.items() if k not in STAMP}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if rest:
        out["meta"] = rest
    return out
