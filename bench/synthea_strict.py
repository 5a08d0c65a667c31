"""Real Synthea patients through the API in strict mode: every public R4 bundle in
``../shared/synthea-r4`` posted to ``POST /fhir`` as the transaction it is, on a fresh server, and
then a US Core-style search mix under strict search handling. Prints how many bundles and
resources were accepted, every rejection's diagnostics, and any search that was not a 200.

    python bench/synthea_strict.py [--dir ../shared/synthea-r4] [--limit N]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ServerProcess

SEARCHES = (
    "Patient?name=a",
    "Patient?birthdate=ge1970-01-01&gender=female",
    "Observation?category=laboratory&_count=50",
    "Observation?code=http://loinc.org|8302-2&_sort=-date",
    "Observation?patient={patient}&category=vital-signs&date=ge2015",
    "Condition?patient={patient}&clinical-status=active",
    "Encounter?patient={patient}&date=ge2010&_sort=-date",
    "MedicationRequest?patient={patient}&status=active&_include=MedicationRequest:medication",
    "Immunization?patient={patient}&_revinclude=Provenance:target",
    "Patient?_id={patient}&_revinclude=Encounter:patient&_count=5",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "synthea-r4"))
    parser.add_argument("--limit", type=int, default=0, help="at most this many bundles (0: all)")
    args = parser.parse_args()
    files = sorted(Path(args.dir).glob("*.json*"))[: args.limit or None]
    accepted = resources = 0
    rejected: list[tuple[str, int, str]] = []
    patient = ""
    started = time.monotonic()
    with ServerProcess() as server, httpx.Client(base_url=server.base, timeout=300) as client:
        headers = {"Content-Type": "application/fhir+json", "Prefer": "handling=strict"}
        for path in files:
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            r = client.post("/", content=raw, headers=headers)
            if r.status_code == 200:
                accepted += 1
                entries = r.json().get("entry", [])
                resources += len(entries)
                locations = [e["response"]["location"] for e in entries]
                patient = patient or next((loc.split("/")[1] for loc in locations if loc.startswith("Patient/")), "")
            else:
                rejected.append((path.name, r.status_code, r.text[:400]))
        elapsed = time.monotonic() - started
        print(f"bundles accepted {accepted}/{len(files)}, resources {resources}, {resources / elapsed:.0f} resources/s")
        for name, status, text in rejected:
            print(f"  REJECTED {name}: {status} {text}")
        for query in SEARCHES:
            r = client.get(f"/{query.format(patient=patient)}", headers={"Prefer": "handling=strict"})
            total = r.json().get("total") if r.status_code == 200 else None
            print(f"  {r.status_code} total={total} {query}" + ("" if r.status_code == 200 else f" {r.text[:300]}"))


if __name__ == "__main__":
    main()
