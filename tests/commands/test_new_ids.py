"""Server-assigned ids (app/identity.py ``new_id``) come from random bytes read in batches: every
id is a version-4 UUID, none repeats, and a forked process (a worker) never hands out its
parent's."""

from __future__ import annotations

import os
import uuid

from app import identity
from app.identity import new_id


def test_ids_are_distinct_version_4_uuids_across_batches() -> None:
    ids = [new_id() for _ in range(3 * identity._RANDOM_BATCH + 7)]
    assert len(set(ids)) == len(ids)
    for value in ids[:: identity._RANDOM_BATCH // 2]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_a_forked_process_does_not_repeat_its_parents_ids() -> None:
    new_id()  # the batch is read: the child inherits its unused part
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then out at once
        try:
            os.write(write, ",".join(new_id() for _ in range(5)).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split(","))
    os.waitpid(pid, 0)
    parent = {new_id() for _ in range(5)}
    assert len(child) == 5 and not child & parent
