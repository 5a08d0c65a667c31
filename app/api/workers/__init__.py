"""``fhirledger serve --workers N``: the supervisor of the worker processes, the server each runs,
and how they share the connections."""
