"""Synthea-shaped data: one transaction Bundle per patient, holding the Patient and a few hundred
clinical resources (encounters, observations, conditions) that reference it by ``urn:uuid``.

    python bench/generate.py --patients 2 > sample.json    # prints one Bundle per line
"""

from __future__ import annotations

import argparse
import random
import sys
import uuid
from datetime import UTC, datetime, timedelta

import orjson

FAMILIES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "García",
    "Miller",
    "Davis",
    "Rodríguez",
    "Martínez",
    "Hernández",
    "López",
    "González",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Müller",
]
GIVEN = [
    "James",
    "Mary",
    "John",
    "Patricia",
    "Robert",
    "Jennifer",
    "Michael",
    "Linda",
    "José",
    "Zoë",
    "Chloé",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
]
CITIES = ["Boston", "Springfield", "Worcester", "Cambridge", "Lowell", "Brockton", "Quincy", "Lynn"]
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
VITALS = [  # (code, display, unit, mean, spread)
    ("8302-2", "Body Height", "cm", 170, 15),
    ("29463-7", "Body Weight", "kg", 75, 20),
    ("39156-5", "Body mass index", "kg/m2", 26, 5),
    ("8867-4", "Heart rate", "/min", 75, 15),
    ("9279-1", "Respiratory rate", "/min", 16, 3),
    ("2339-0", "Glucose", "mg/dL", 100, 25),
    ("718-7", "Hemoglobin", "g/dL", 14, 2),
    ("2093-3", "Cholesterol", "mg/dL", 190, 40),
]
CONDITIONS = [
    ("44054006", "Diabetes"),
    ("38341003", "Hypertension"),
    ("195662009", "Acute viral pharyngitis"),
    ("10509002", "Acute bronchitis"),
    ("55822004", "Hyperlipidemia"),
    ("40055000", "Chronic sinusitis"),
]
MRN = "http://hospital.example.org/mrn"


def _when(rng: random.Random, start: datetime, days: int) -> datetime:
    return start + timedelta(days=rng.randrange(days), seconds=rng.randrange(86400))


def _fmt(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _entry(resource: dict) -> dict:
    full_url = f"urn:uuid:{uuid.uuid4()}"
    return {"fullUrl": full_url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


def patient_bundle(rng: random.Random, n: int, clinical: int = 200) -> dict:
    """A transaction: 1 Patient + ``clinical`` resources (about 1 encounter per 10)."""
    birth = datetime(1930, 1, 1, tzinfo=UTC) + timedelta(days=rng.randrange(365 * 85))
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": MRN, "value": f"MRN{n:08d}"}],
        "active": True,
        "name": [{"use": "official", "family": rng.choice(FAMILIES), "given": [rng.choice(GIVEN)]}],
        "gender": rng.choice(["male", "female"]),
        "birthDate": birth.strftime("%Y-%m-%d"),
        "address": [
            {
                "line": [f"{rng.randrange(1, 999)} Main St"],
                "city": rng.choice(CITIES),
                "state": "MA",
                "postalCode": f"0{rng.randrange(1000, 2999)}",
            }
        ],
        "telecom": [{"system": "phone", "value": f"555-{rng.randrange(1000, 9999)}", "use": "home"}],
    }
    pe = _entry(patient)
    subject = {"reference": pe["fullUrl"]}
    entries = [pe]
    encounter = None
    start = datetime(2015, 1, 1, tzinfo=UTC)
    for i in range(clinical):
        if i % 10 == 0:
            when = _when(rng, start, 3650)
            encounter = _entry(
                {
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                    "type": [
                        {"coding": [{"system": SNOMED, "code": "185349003", "display": "Encounter for check up"}]}
                    ],
                    "subject": subject,
                    "period": {"start": _fmt(when), "end": _fmt(when + timedelta(minutes=rng.randrange(15, 120)))},
                }
            )
            entries.append(encounter)
            continue
        assert encounter is not None
        when = encounter["resource"]["period"]["start"]
        if i % 10 == 9:
            code, display = rng.choice(CONDITIONS)
            entries.append(
                _entry(
                    {
                        "resourceType": "Condition",
                        "clinicalStatus": {
                            "coding": [
                                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                            ]
                        },
                        "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
                        "subject": subject,
                        "encounter": {"reference": encounter["fullUrl"]},
                        "onsetDateTime": when,
                    }
                )
            )
            continue
        code, display, unit, mean, spread = rng.choice(VITALS)
        entries.append(
            _entry(
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                    "subject": subject,
                    "encounter": {"reference": encounter["fullUrl"]},
                    "effectiveDateTime": when,
                    "issued": when[:19] + ".000+00:00",
                    "valueQuantity": {
                        "value": round(rng.gauss(mean, spread), 1),
                        "unit": unit,
                        "system": UCUM,
                        "code": unit,
                    },
                }
            )
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def bundles(count: int, clinical: int = 200, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    return [patient_bundle(rng, n, clinical) for n in range(count)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=1)
    parser.add_argument("--clinical", type=int, default=200)
    args = parser.parse_args()
    for bundle in bundles(args.patients, args.clinical):
        sys.stdout.buffer.write(orjson.dumps(bundle) + b"\n")
