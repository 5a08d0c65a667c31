"""Which search rows a new version of a resource changes, parameter by parameter.

The search rows of a version are a pure function of its bytes (:func:`app.projections.search_index.rows_of`),
``(param, ...columns)`` by side-table kind. Two versions' rows of one parameter in one kind are the
same when they are the same multiset (the order of values in the resource, or a value repeated in
another place, does not change what a search finds): those rows stay as they are, and an update
replaces only the rows of the parameters whose multiset changed. A value moved from one parameter
to another (a given name made the family name) changes both parameters, not the one (``name``)
whose rows hold the value either way.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

from app.search_types.protocol import Rows
from app.search_types.registry import KINDS


class KindChange(NamedTuple):
    """The rows of one side-table kind an update changes: the parameters whose old rows go, and the
    new rows of those parameters (those that have some)."""

    params: list[str]
    rows: list[tuple]


def changes(before: Rows, after: Rows) -> dict[str, KindChange]:
    """kind -> what changes in it from the rows ``before`` to the rows ``after`` (kinds whose rows
    are the same are left out)."""
    out: dict[str, KindChange] = {}
    for kind in KINDS:
        old, new = before.get(kind, []), after.get(kind, [])
        if old == new:
            continue
        params = changed_params(old, new)
        if params:
            replaced = set(params)
            out[kind] = KindChange(params, [row for row in new if row[0] in replaced])
    return out


def changed_params(old: list[tuple], new: list[tuple]) -> list[str]:
    """The parameters (a row's first field) whose multiset of rows differs between ``old`` and
    ``new``, sorted."""
    try:
        a, b = set(old), set(new)
    except TypeError:  # a value that cannot be hashed: every parameter counts as changed
        return sorted({row[0] for row in (*old, *new)})
    changed = {row[0] for row in a ^ b}
    if len(a) < len(old) or len(b) < len(new):  # a row repeated: its count may be what changed
        by_old, by_new = _by_param(old), _by_param(new)
        changed.update(p for p in by_new.keys() & by_old.keys() if Counter(by_old[p]) != Counter(by_new[p]))
    return sorted(changed)


def _by_param(rows: list[tuple]) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for row in rows:
        out.setdefault(row[0], []).append(row)
    return out
