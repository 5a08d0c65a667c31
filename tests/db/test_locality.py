"""Which database URLs name a server on this machine (app/db/locality.py): it sets how many HTTP
workers `fhirledger serve` starts by default."""

from __future__ import annotations

import pytest

from app.db.locality import on_this_machine


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@/fhirledger?host=/srv/fhir/pgdata&port=5432",  # the embedded server's socket
        "postgresql:///fhir",  # libpq's default: the local socket
        "postgresql://fhir:secret@localhost:5432/fhir",
        "postgresql://fhir@LOCALHOST/fhir",
        "postgresql://fhir@127.0.0.1/fhir",
        "postgres://fhir@127.0.0.2:6432/fhir",
        "postgresql://fhir@[::1]:5432/fhir",
        "postgresql://fhir@db.example.org/fhir?host=/var/run/postgresql",  # the query's host wins
        "postgresql://fhir@%2Fvar%2Frun%2Fpostgresql/fhir",  # a socket directory, percent-encoded
        "host=/var/run/postgresql dbname=fhir",  # libpq's key=value form
        "dbname=fhir user=fhir",
        "host='localhost' dbname=fhir",
    ],
)
def test_local_servers(url: str) -> None:
    assert on_this_machine(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://fhir@db.example.org:5432/fhir",
        "postgresql://fhir@10.0.0.5/fhir",
        "postgresql://fhir@[2001:db8::1]:5432/fhir",
        "postgresql://fhir@localhost:5432,replica.example.org:5432/fhir",  # one host elsewhere
        "postgresql:///fhir?host=db.example.org",
        "host=db.example.org dbname=fhir",
        "dbname=fhir host=localhost,db.example.org",
    ],
)
def test_servers_elsewhere(url: str) -> None:
    assert not on_this_machine(url)
