"""The collation of the databases we create: byte order (``LC_COLLATE 'C'``), the character
classes of the cluster (its ``LC_CTYPE``, so case folding, regular expressions and the full-text
parser still know non-ASCII letters).

Under a libc collation other than ``C`` or ``POSIX`` (``C.UTF-8`` and ``en_US.UTF-8`` alike),
PostgreSQL compares two different strings with ``strcoll`` on copies of them, and sorts text
without abbreviated keys; under ``C`` it compares bytes. Every B-tree over text pays for it: the
primary keys of the current-state tables (resource ids), the log's ``(type, id, version)``, the
written references and composite codes. Measured on the Observations of a million Synthea resources
(462,128 rows, embedded PostgreSQL 18): the current-state table's primary key built in 0.35 s
under ``C`` against 0.92-1.01 s under ``C.UTF-8``; indexes whose text column repeats one value
(``param``) gain nothing, equal strings being compared with ``memcmp`` already.

Byte order is the order of code points for UTF-8, which is also what glibc's ``C.UTF-8``
collation gives, so on the embedded server the order of every sorted result stays as it was. Only
the databases created here get it (the embedded ``fhirledger`` database, and the tests'); an
existing database keeps its collation, and an external server's database is the operator's
(``fhirledger doctor`` reports one that is not ``C``)."""

from __future__ import annotations

CTYPE_OF_TEMPLATE = "SELECT datctype FROM pg_database WHERE datname = 'template1'"
"""The cluster's character classes (those of the database new databases copy by default)."""


def create_database_sql(name: str, ctype: str) -> str:
    """``CREATE DATABASE`` of ``name`` in byte order, with the character classes ``ctype``
    (:data:`CTYPE_OF_TEMPLATE`); template0, since template1's collation may differ."""
    return f"CREATE DATABASE {_ident(name)} TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE {_literal(ctype)}"


def is_byte_order(collate: str) -> bool:
    """Whether a database's ``datcollate`` compares bytes."""
    return collate in ("C", "POSIX")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
