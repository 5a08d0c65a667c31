"""The ``reference`` search type: ``[type]/[id]``, ``[id]``, an absolute URL (``url|version`` for
canonicals), ``:[type]`` and ``:identifier``; chains and ``_has`` are built on it by the query layer.

A value is ``(type, id, reference, version, identifier_system, identifier_value)`` from Reference
(the string parsed as relative, absolute, contained ``#id`` or URN; ``Reference.type`` when the
string has no type; ``Reference.identifier`` for ``:identifier``), canonical/uri strings
(``url|version``) and resources (``Bundle.entry[0].resource``). Stored in ``sp_<type>_reference
(target_type, target_uuid, target_id, reference, ident_system, ident_value)``: a target id that
is a UUID as PostgreSQL writes one (lowercase, hyphenated: Synthea's, and ids this server assigns)
is stored as a 16-byte ``uuid`` in ``target_uuid`` instead of 37 bytes of text, any other in
``target_id`` (:data:`TARGET_ID_SQL` is the id either way), with the generated ``hash`` of
(param, target id), indexed on ``(hash, key) INCLUDE (target_type)`` (a reference search, a chain
and ``_has`` probe it with the hash of the id they look for), ``(param, reference)`` and
``(param, ident_value)``. ``reference`` holds the reference as written only where it is not
``target_type/target_id`` (an absolute URL, a canonical, a contained ``#id``): the relative ones,
nearly all, are not stored twice, and both lookup indexes hold only the rows with a value
(absolute URL searches and ``:identifier`` test the column, so they use them).
:data:`REFERENCE_SQL` is the reference as written either way (``_sort``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

from app.errors import invalid
from app.fhirpath.references import parse_reference, reference_target
from app.fhirspec.search_parameters import SearchParam
from app.search_types.nodes import text_of
from app.search_types.protocol import Rows, SearchType, SideTable, SortColumns, param_hash
from app.search_types.sql import Args
from app.search_types.syntax import split_pipe, unescape


class ReferenceValue(NamedTuple):
    type: str | None
    id: str | None
    reference: str | None
    version: str | None = None
    identifier_system: str | None = None
    identifier_value: str | None = None


def _identifier_condition(value: str, args: Args) -> str:
    if "|" not in value:
        return f"s.ident_value = {args.add(value)}"
    system, ident = (split_pipe(value, 2) + [""])[:2]
    if system == "":
        return f"(s.ident_system IS NULL AND s.ident_value = {args.add(ident)})"
    if ident == "":
        return f"s.ident_system = {args.add(system)}"
    return f"(s.ident_system = {args.add(system)} AND s.ident_value = {args.add(ident)})"


def target_condition(code: str, target_type: str | None, target_id: str, args: Args) -> str:
    """A row of parameter ``code`` pointing at ``[target_type/]target_id`` (``target_id`` an SQL
    expression, e.g. a chain's ``r.id``, or a bound value's reference)."""
    cond = f"s.hash = {param_hash(args.add(code, 'text'), target_id)}"
    return f"({cond} AND s.target_type = {args.add(target_type)})" if target_type else cond


def targets_in(code: str, target_type: str, ids_sql: str, args: Args) -> str:
    """A row of ``code`` pointing at a ``target_type`` resource among the ids ``ids_sql`` selects
    (``SELECT r.id …``): the hashes of those ids probe the hash index."""
    param = args.add(code, "text")
    hashes = f"SELECT {param_hash(param, 'i.id')} FROM ({ids_sql}) i"
    return f"(s.hash IN ({hashes}) AND s.target_type = {args.add(target_type)})"


def reference_condition(code: str, value: str, modifier: str | None, args: Args, base: str) -> str:
    """The condition of one reference search value; ``base``: this server's FHIR base URL, whose
    absolute references count as relative ones."""
    text = unescape(value)
    if modifier == "identifier":
        return f"(s.param = {args.add(code)} AND {_identifier_condition(value, args)})"
    if modifier is not None:  # :[type]
        if "/" in text:
            raise invalid(f"{code}:{modifier}='{text[:60]}' takes a plain id, e.g. {code}:{modifier}=123")
        return target_condition(code, modifier, args.add(text, "text"), args)
    if base and text.startswith(base + "/"):
        text = text[len(base) + 1 :]
    if "://" in text or text.startswith("urn:"):
        url, _, version = text.partition("|")
        cond = f"s.reference = {args.add(url)}"
        if version:
            cond = f"({cond} OR s.reference = {args.add(text)})"
        return f"(s.param = {args.add(code)} AND {cond})"
    segments = text.split("/")
    if len(segments) >= 2 and segments[-2][:1].isupper():
        return target_condition(code, segments[-2], args.add(segments[-1], "text"), args)
    if len(segments) == 1:
        return target_condition(code, None, args.add(text, "text"), args)
    raise invalid(f"Search parameter '{code}': '{text[:60]}' is not a reference (Type/id, id or an absolute URL)")


TARGET_ID_SQL = "coalesce(target_id, target_uuid::text)"
"""The target id of a row (over its unqualified columns)."""
REFERENCE_SQL = "coalesce(s.reference, s.target_type || '/' || coalesce(s.target_id, s.target_uuid::text))"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def split_target(target_id: str | None) -> tuple[str | None, str | None]:
    """(target_uuid, target_id) of a target id: a UUID in the text form PostgreSQL gives back
    goes in the first, anything else in the second."""
    if target_id is not None and len(target_id) == 36 and _UUID.fullmatch(target_id):
        return target_id, None
    return None, target_id


def stored_reference(value: ReferenceValue) -> str | None:
    """The ``reference`` column of a value: None where the target's type and id spell it."""
    if value.type and value.id and value.reference == f"{value.type}/{value.id}":
        return None
    return value.reference


class ReferenceType(SearchType):
    name = "reference"
    value_class = ReferenceValue
    tables = (
        SideTable(
            "reference",
            (
                ("target_type", "text"),
                ("target_uuid", "uuid"),
                ("target_id", "text"),
                ("reference", "text"),
                ("ident_system", "text"),
                ("ident_value", "text"),
            ),
            (
                ("hash", "(hash, key) INCLUDE (target_type)"),
                ("written", "(param, reference) INCLUDE (key) WHERE reference IS NOT NULL"),
                ("ident_value", "(param, ident_value) WHERE ident_value IS NOT NULL"),
            ),
            hash=TARGET_ID_SQL,
            depends=("target_type",),
        ),
    )
    modifiers = frozenset({"missing", "identifier"})  # and :[type], one of the parameter's targets
    sort_columns = SortColumns(REFERENCE_SQL, REFERENCE_SQL, "text")

    def convert(self, typ: str | None, value: Any, root: dict) -> Iterator[ReferenceValue]:
        if isinstance(value, str):
            if value:
                parsed = parse_reference(value, root)
                yield ReferenceValue(parsed.type, parsed.id, value.partition("|")[0], parsed.version)
            return
        if not isinstance(value, dict) or typ == "Attachment":
            return
        if "resourceType" in value:  # a resource, e.g. Bundle.entry[0].resource
            kind, rid = text_of(value.get("resourceType")), text_of(value.get("id"))
            if kind:
                yield ReferenceValue(kind, rid, f"{kind}/{rid}" if rid else None)
            return
        parsed = reference_target(value, root)
        ref = text_of(value.get("reference"))
        identifier = value.get("identifier") if isinstance(value.get("identifier"), dict) else {}
        id_system, id_value = text_of(identifier.get("system")), text_of(identifier.get("value"))
        if parsed is None or (ref is None and id_value is None and parsed.type is None):
            return
        yield ReferenceValue(parsed.type, parsed.id, ref, parsed.version, id_system, id_value)

    def add_rows(self, code: str, values: list[ReferenceValue], out: Rows) -> None:
        out["reference"].extend(
            (code, v.type, *split_target(v.id), stored_reference(v), v.identifier_system, v.identifier_value)
            for v in values
        )

    def component(self, value: ReferenceValue) -> tuple:
        code = f"{value.type}/{value.id}" if value.type and value.id else value.reference
        return (None, code, None, None, None, None)

    def condition(self, code: str, value: str, modifier: str | None, param: SearchParam, args: Args, base: str) -> str:
        return reference_condition(code, value, modifier, args, base)


REFERENCE = ReferenceType()
