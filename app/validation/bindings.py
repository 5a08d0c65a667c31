"""Required-strength value set bindings that can be expanded from ``valuesets.json`` alone.

See https://hl7.org/fhir/R4/terminologies.html#required. A value set is expandable here when
every ``compose.include`` is either a whole CodeSystem present in the bundle (content
``complete``), an explicit concept list, or another expandable value set; value sets that need
filters, excludes or external systems (SNOMED CT, LOINC, UCUM, MIME types...) are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

from app.fhirspec.derived import derived
from app.fhirspec.loader import load_json


@dataclass(frozen=True)
class Expansion:
    url: str
    codes: frozenset[str]  # every code, whatever its system
    by_system: dict[str, frozenset[str]]
    ordered: tuple[str, ...]  # the codes in definition order, for messages

    def summary(self, limit: int = 12) -> str:
        codes = self.ordered
        shown = " | ".join(codes[:limit])
        return shown + (" | ..." if len(codes) > limit else "")


def _strip_version(url: str) -> str:
    return url.split("|", 1)[0]


@lru_cache(maxsize=1)
def _definitions() -> tuple[dict[str, dict], dict[str, dict]]:
    value_sets: dict[str, dict] = {}
    code_systems: dict[str, dict] = {}
    for entry in load_json("valuesets.json")["entry"]:
        res = entry["resource"]
        if res["resourceType"] == "ValueSet":
            value_sets[res["url"]] = res
        elif res["resourceType"] == "CodeSystem":
            code_systems[res["url"]] = res
    return value_sets, code_systems


def _concept_codes(concepts: list[dict]) -> list[str]:
    out: list[str] = []
    for concept in concepts:
        out.append(concept["code"])
        out += _concept_codes(concept.get("concept", []))
    return out


@cache
def expand(url: str) -> Expansion | None:
    """The codes of a value set, or ``None`` when it cannot be expanded without a server."""
    return _expansions().get(_strip_version(url))


@lru_cache(maxsize=1)
@derived("value-set-expansions")
def _expansions() -> dict[str, Expansion]:
    """Every value set of the bundle that expands here, by URL: all of them take ~10 ms, and
    cached (app/fhirspec/derived.py) they spare each server process parsing ``valuesets.json``."""
    value_sets, _ = _definitions()
    return {url: found for url in value_sets if (found := _expand(url, frozenset())) is not None}


def _expand(url: str, seen: frozenset[str]) -> Expansion | None:
    value_sets, code_systems = _definitions()
    vs = value_sets.get(url)
    if vs is None or url in seen or "compose" not in vs or vs["compose"].get("exclude"):
        return None
    by_system: dict[str, list[str]] = {}
    for include in vs["compose"].get("include", []):
        if include.get("filter"):
            return None
        system = include.get("system")
        if include.get("valueSet"):
            for imported_url in include["valueSet"]:
                imported = _expand(_strip_version(imported_url), seen | {url})
                if imported is None:
                    return None
                for sys_, codes in imported.by_system.items():
                    by_system.setdefault(sys_, []).extend(codes)
            if system is None:
                continue
        if system is None:
            return None
        if include.get("concept"):
            codes = [c["code"] for c in include["concept"]]
        else:
            cs = code_systems.get(system)
            if cs is None or cs.get("content") != "complete":
                return None
            codes = _concept_codes(cs.get("concept", []))
            if not codes:
                return None
        by_system.setdefault(system, []).extend(codes)
    if not by_system:
        return None
    ordered = tuple(dict.fromkeys(code for codes in by_system.values() for code in codes))
    frozen = {k: frozenset(v) for k, v in by_system.items()}
    return Expansion(url, frozenset(ordered), frozen, ordered)
