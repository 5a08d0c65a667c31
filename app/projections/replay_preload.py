"""Imported once by the fork server the replay workers are forked from
(:func:`app.projections.rebuild.replay_executor`): the caller's main module, the modules a worker
runs and the registry of search parameters, loaded there once, so that each worker starts as a
fork of a process that has them (a spawned worker imported and loaded them itself: about a second
of CPU per worker, a fifth of the workers' CPU in a replay of 100,000 events)."""

from __future__ import annotations

from app.events.codec import DICTIONARY_ID, add_dictionary, shipped
from app.fhirpath.model import type_model
from app.fhirspec.search_parameters import registry
from app.projections import bulk_load, custom_params, rebuild
from app.projections.fork_server import load_callers_main

__all__ = ["bulk_load", "custom_params", "rebuild"]

registry()
type_model()  # the FHIR types the row functions are generated from (~60 ms per worker, loaded here once)
add_dictionary(DICTIONARY_ID, shipped())  # the log's dictionary (app/events/codec.py)
load_callers_main()  # the caller's main module (app/projections/fork_server.py)
