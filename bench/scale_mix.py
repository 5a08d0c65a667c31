"""The scale benchmark's search mix: 15 US Core-style templates, their values sampled from the
resources of a loaded database, and the 38-query mix built from them.

Values are sampled once (from the first data directory measured) and used for every size, so that
each size answers the very same queries: a larger data directory grown from a smaller one holds
the same resources under the same ids, plus the copies.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import asyncpg
import orjson

from app.events.codec import decode

LOINC, SNOMED, UCUM = "http://loinc.org", "http://snomed.info/sct", "http://unitsofmeasure.org"


@dataclass(frozen=True)
class Template:
    name: str
    resource_type: str
    queries: tuple[str, ...]  # the query strings, one per sampled value


async def _resources(pool: asyncpg.Pool, table: str, limit: int) -> list[dict]:
    rows = await pool.fetch(
        f"SELECT e.resource FROM {table} c JOIN event_log e ON e.position = c.position"
        " WHERE NOT c.deleted ORDER BY c.id LIMIT $1",
        limit,
    )
    return [orjson.loads(decode(r["resource"])) for r in rows]  # the log's bytes as stored


def _coding(concept: object) -> dict:
    codings = concept.get("coding", []) if isinstance(concept, dict) else []
    return codings[0] if codings else {}


def _common(values: list, n: int, rng: random.Random) -> list:
    """``n`` values drawn by frequency from the sample (frequent codes are searched more)."""
    if not values:
        return []
    counts = Counter(values)
    keys = list(counts)
    return rng.choices(keys, weights=[counts[k] for k in keys], k=n)


def _patients(patients: list[dict], n: int) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"name": [], "family_birth": [], "identifier": [], "gender": []}
    for p in patients[:n]:
        family = (p.get("name") or [{}])[0].get("family", "")
        out["name"].append(f"name={family[:4]}")
        out["family_birth"].append(f"family={family}&birthdate={p.get('birthDate')}")
        ident = next((i for i in p.get("identifier", []) if "synthea" in i.get("system", "")), None)
        if ident:
            out["identifier"].append(f"identifier={ident['system']}|{ident['value']}")
        out["gender"].append(f"gender={p.get('gender', 'female')}")
    return out


def _observations(obs: list[dict], n: int, rng: random.Random) -> dict[str, list[str]]:
    codes = [_coding(o.get("code")).get("code") for o in obs]
    component = {_coding(c.get("code")).get("code") for o in obs for c in o.get("component", [])}
    component_only = sorted(c for c in component - set(codes) if c)
    quantities = [
        (_coding(o.get("code")).get("code"), o["valueQuantity"])
        for o in obs
        if isinstance(o.get("valueQuantity"), dict) and o["valueQuantity"].get("code")
    ]
    vitals = [o for o in obs if _coding((o.get("category") or [{}])[0]).get("code") == "vital-signs"]
    out: dict[str, list[str]] = {"patient_code": [], "code_date": [], "category_patient_date": []}
    out |= {"code_value": [], "component_code": []}
    for o in rng.sample(obs, min(n, len(obs))):
        code, subject = _coding(o.get("code")).get("code"), o.get("subject", {}).get("reference", "")
        out["patient_code"].append(f"patient={subject}&code={LOINC}|{code}")
    for code in _common(codes, n, rng):
        year = rng.randint(2000, 2019)
        out["code_date"].append(f"code={LOINC}|{code}&date=ge{year}-01-01&date=lt{year + 1}-01-01")
    for o in rng.sample(vitals, min(n, len(vitals))):
        year = str(o.get("effectiveDateTime", "2015"))[:4]
        out["category_patient_date"].append(
            f"category=vital-signs&patient={o['subject']['reference']}&date=ge{int(year) - 3}-01-01"
        )
    for code, q in rng.sample(quantities, min(n, len(quantities))):
        out["code_value"].append(f"code={LOINC}|{code}&value-quantity=gt{q['value']}|{UCUM}|{q['code']}")
    out["component_code"] = [f"code={LOINC}|{c}&_count=1" for c in component_only[:n]]
    return out


def _others(conditions: list[dict], encounters: list[dict], meds: list[dict], n: int, rng: random.Random) -> dict:
    out: dict[str, list[str]] = {}
    subjects = [c["subject"]["reference"] for c in conditions if "subject" in c]
    out["condition_patient"] = [f"patient={s}" for s in rng.sample(subjects, min(n, len(subjects)))]
    status = [_coding(c.get("clinicalStatus")).get("code") for c in conditions]
    out["condition_status"] = [f"clinical-status={s}" for s in _common([s for s in status if s], n, rng)]
    codes = [_coding(c.get("code")).get("code") for c in conditions]
    out["condition_code"] = [f"code={SNOMED}|{c}" for c in _common([c for c in codes if c], n, rng)]
    out["encounter_patient_date"] = [
        f"patient={e['subject']['reference']}&date=ge{str(e['period']['start'])[:4]}-01-01"
        for e in rng.sample(encounters, min(n, len(encounters)))
        if "period" in e
    ]
    classes = [e.get("class", {}).get("code") for e in encounters]
    out["encounter_class"] = [f"class={c}" for c in _common([c for c in classes if c], n, rng)]
    out["medication_patient_status"] = [
        f"patient={m['subject']['reference']}&status={m.get('status')}" for m in rng.sample(meds, min(n, len(meds)))
    ]
    return out


TEMPLATES = (  # name, type, key of the sampled values
    ("Patient name", "Patient", "name"),
    ("Patient family+birthdate", "Patient", "family_birth"),
    ("Patient identifier", "Patient", "identifier"),
    ("Patient gender", "Patient", "gender"),
    ("Observation patient+code", "Observation", "patient_code"),
    ("Observation code+date", "Observation", "code_date"),
    ("Observation category+patient+date", "Observation", "category_patient_date"),
    ("Observation code+value-quantity", "Observation", "code_value"),
    ("Observation component code _count=1", "Observation", "component_code"),
    ("Condition patient", "Condition", "condition_patient"),
    ("Condition clinical-status", "Condition", "condition_status"),
    ("Condition code", "Condition", "condition_code"),
    ("Encounter patient+date", "Encounter", "encounter_patient_date"),
    ("Encounter class", "Encounter", "encounter_class"),
    ("MedicationRequest patient+status", "MedicationRequest", "medication_patient_status"),
)


async def sample_templates(pool: asyncpg.Pool, per_template: int = 12, seed: int = 7) -> list[Template]:
    rng = random.Random(seed)
    values = _patients(await _resources(pool, "cur_patient", 200), per_template)
    values |= _observations(await _resources(pool, "cur_observation", 4000), per_template, rng)
    values |= _others(
        await _resources(pool, "cur_condition", 1000),
        await _resources(pool, "cur_encounter", 1000),
        await _resources(pool, "cur_medication_request", 1000),
        per_template,
        rng,
    )
    return [Template(name, rtype, tuple(values[key])) for name, rtype, key in TEMPLATES if values.get(key)]


def mix(templates: list[Template], size: int = 38, seed: int = 11) -> list[str]:
    """``size`` request paths: every template at least twice, the rest drawn at random."""
    rng = random.Random(seed)
    picks = [t for t in templates for _ in range(2)]
    picks += rng.choices(templates, k=max(0, size - len(picks)))
    return [f"/{t.resource_type}?{rng.choice(t.queries)}" for t in picks[:size]]
