"""SMART on FHIR resource scopes, v1 and v2, and the decisions they give
(https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html).

A scope is ``<level>/<type>.<permissions>[?<query>]``: level ``patient``, ``user`` or ``system``;
a resource type or ``*``; permissions either v1 ``read`` (= ``rs``), ``write`` (= ``cud``), ``*``
(= ``cruds``) or v2 letters, a non-empty subset of ``c r u d s`` in that order. A v2 scope may carry
a query (``patient/Observation.rs?category=laboratory``): it then allows only resources matching
that search, kept here as ``(param, value)`` pairs the search layer ANDs in.

Interactions need letters (:data:`INTERACTION_LETTERS`): create ``c``; read, vread, history ``r``;
search ``s``; update, patch ``u``; delete ``d``; the conditional forms add ``s``.

A :class:`Decision` lists the ways a request is allowed (:class:`Access`, OR-ed): each may confine it
to the patient in context (patient-level scopes) and to a scope's query. With ``patient/`` scopes,
compartment types (see :mod:`app.auth.compartment`) are confined to the patient's compartment;
types outside the Patient compartment (Medication, Practitioner, Organization, ...) hold no
patient's data, so ``patient/`` scopes let them be read and searched but not written. ``patient/``
scopes count only when the token names its patient (the ``patient`` launch-context claim).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import product
from urllib.parse import parse_qsl

from app.auth.compartment import compartment_params
from app.fhirspec.resource_types import resource_type_set

LEVELS = ("patient", "user", "system")
LETTERS = "cruds"
V1_PERMISSIONS = {"read": "rs", "write": "cud", "*": "cruds"}
INTERACTION_LETTERS = {
    "create": "c",
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "history-type": "r",
    "history-system": "r",
    "search-type": "s",
    "search-system": "s",
    "update": "u",
    "patch": "u",
    "delete": "d",
    "conditional-create": "cs",
    "conditional-update": "us",
    "conditional-patch": "us",
    "conditional-delete": "ds",
}
_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.([a-z]+|\*)(?:\?(.*))?$")

Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Scope:
    level: str  # patient | user | system
    resource_type: str  # a resource type or "*"
    letters: str  # a subset of "cruds", in that order
    query: Params = ()  # a v2 query restriction: resources must match all of these search params
    text: str = ""  # as granted

    def applies_to(self, resource_type: str) -> bool:
        return self.resource_type == "*" or self.resource_type == resource_type


def _letters(permissions: str, has_query: bool) -> str | None:
    if permissions in V1_PERMISSIONS:
        return None if has_query else V1_PERMISSIONS[permissions]  # queries are v2 only
    positions = [LETTERS.find(c) for c in permissions]
    if -1 in positions or positions != sorted(set(positions)):
        return None
    return permissions


def parse_scope(text: str) -> Scope | None:
    """One resource scope; None if ``text`` is not one (``openid``, ``launch/patient``, typos)."""
    m = _SCOPE.match(text)
    if m is None:
        return None
    level, kind, permissions, query = m.groups()
    if kind != "*" and kind not in resource_type_set():
        return None
    letters = _letters(permissions, query is not None)
    if letters is None:
        return None
    params: Params = ()
    if query is not None:
        try:
            params = tuple(parse_qsl(query, keep_blank_values=False, strict_parsing=True))
        except ValueError:
            return None
        if not params:
            return None  # "?" with nothing after it must not read as unrestricted
    return Scope(level, kind, letters, params, text)


@dataclass(frozen=True)
class Access:
    """One way a request is allowed: only within ``patient``'s compartment when set, and only for
    resources matching every one of ``params`` (search parameters, ANDed)."""

    patient: str | None = None
    params: Params = ()

    @property
    def unrestricted(self) -> bool:
        return self.patient is None and not self.params

    def merged(self, other: Access) -> Access | None:
        """Both restrictions at once (for interactions needing two letters); None if impossible."""
        if self.patient and other.patient and self.patient != other.patient:
            return None
        return Access(self.patient or other.patient, tuple(dict.fromkeys(self.params + other.params)))


@dataclass(frozen=True)
class Decision:
    resource_type: str
    interaction: str
    alternatives: tuple[Access, ...]  # OR-ed; empty when refused; (Access(),) when unrestricted
    needed: str  # the scopes that would allow it, e.g. "patient/Observation.r or user/Observation.r"
    note: str = ""  # why some granted scopes did not count

    @property
    def allowed(self) -> bool:
        return bool(self.alternatives)

    @property
    def unrestricted(self) -> bool:
        return any(a.unrestricted for a in self.alternatives)


def _simplify(accesses: Iterable[Access]) -> tuple[Access, ...]:
    unique = tuple(dict.fromkeys(accesses))
    return (Access(),) if any(a.unrestricted for a in unique) else unique


@dataclass(frozen=True)
class Grants:
    """What a token's scopes allow, for the patient in context (if any)."""

    scopes: tuple[Scope, ...] = ()
    patient: str | None = None
    other: tuple[str, ...] = ()  # scopes that are not resource scopes: openid, fhirUser, launch/patient, ...
    levels: frozenset[str] = field(default=frozenset())

    def _access(self, scope: Scope, resource_type: str, letter: str) -> tuple[Access | None, str]:
        if scope.level != "patient":
            return Access(None, scope.query), ""
        if self.patient is None:
            return None, "the token's patient/ scopes do not count: it names no patient (no patient claim)"
        if resource_type == "*" or compartment_params(resource_type):
            return Access(self.patient, scope.query), ""
        if letter in "rs":
            return Access(None, scope.query), ""
        return None, f"patient/ scopes do not write {resource_type}, which is outside the Patient compartment"

    def _for_letter(self, resource_type: str, letter: str, level: str | None) -> tuple[list[Access], set[str]]:
        accesses: list[Access] = []
        notes: set[str] = set()
        for scope in self.scopes:
            if letter not in scope.letters or (level is not None and scope.level != level):
                continue
            if not (scope.applies_to(resource_type) if resource_type != "*" else scope.resource_type == "*"):
                continue
            access, note = self._access(scope, resource_type, letter)
            if access is not None:
                accesses.append(access)
            elif note:
                notes.add(note)
        return accesses, notes

    def allows(self, resource_type: str, interaction: str, level: str | None = None) -> Decision:
        """May ``interaction`` (a key of :data:`INTERACTION_LETTERS`) be done on ``resource_type``
        (``"*"``: on every type, as for whole-system search and history)? ``level`` limits the
        scopes considered to one level."""
        return _decide(self, resource_type, interaction, level)

    def _decide(self, resource_type: str, interaction: str, level: str | None) -> Decision:
        letters = INTERACTION_LETTERS[interaction]
        combined: list[Access] = [Access()]
        notes: set[str] = set()
        for letter in letters:
            accesses, found_notes = self._for_letter(resource_type, letter, level)
            notes |= found_notes
            merged = (a.merged(b) for a, b in product(combined, _simplify(accesses)))
            combined = [m for m in merged if m is not None]
        levels = (level,) if level else LEVELS
        needed = " or ".join(f"{lvl}/{resource_type}.{letters}" for lvl in levels)
        return Decision(resource_type, interaction, _simplify(combined), needed, "; ".join(sorted(notes)))

    def covers(self, scope_text: str) -> bool:
        """Do the granted scopes, without query restrictions, include all that ``scope_text`` grants
        (e.g. the admin scope ``system/*.*``)?"""
        wanted = parse_scope(scope_text)
        if wanted is None:
            return scope_text in self.other
        for letter in wanted.letters:
            if not any(
                s.level == wanted.level
                and letter in s.letters
                and not s.query
                and (s.resource_type == "*" or s.resource_type == wanted.resource_type)
                for s in self.scopes
            ):
                return False
        return True


@lru_cache(maxsize=4096)
def _decide(grants: Grants, resource_type: str, interaction: str, level: str | None) -> Decision:
    return grants._decide(resource_type, interaction, level)


def parse_scopes(scopes: str | Iterable[str] | None, patient: str | None = None) -> Grants:
    """The grants of a ``scope`` claim (space-separated) or an ``scp`` array, for ``patient``."""
    words = scopes.split() if isinstance(scopes, str) else [s for s in scopes or () if isinstance(s, str)]
    return _parse_words(tuple(words), patient)


@lru_cache(maxsize=1024)
def _parse_words(words: tuple[str, ...], patient: str | None) -> Grants:
    parsed: list[Scope] = []
    other: list[str] = []
    for word in words:
        scope = parse_scope(word)
        if scope is None:
            other.append(word)
        else:
            parsed.append(scope)
    return Grants(tuple(parsed), patient, tuple(other), frozenset(s.level for s in parsed))
