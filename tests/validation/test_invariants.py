"""Invariants: which constraints are evaluated, and that evaluating them never breaks."""

from __future__ import annotations

from app.fhirspec.resource_types import resource_types
from app.validation import expressions, invariants, native, validate_resource
from app.validation.compile import definitions, sd_nodes
from tests.validation.validation_samples import minimal, rich_samples

# The visible gap: every constraint of the R4 definitions that is NOT evaluated, and why.
NOT_EVALUATED = {
    "ctm-1": "uses resolve(): needs the referenced resources (a server-side check)",
    "txt-1": "uses htmlChecks(), which fhirpathpy does not implement",
    "txt-2": "uses htmlChecks(), which fhirpathpy does not implement",
}
# Evaluated in Python rather than by fhirpathpy (same meaning, linear cost).
NATIVE = {"ele-1", "ext-1", "ref-1", "dom-3", "que-2"}


def all_constraints() -> list[dict]:
    return [c for sd in definitions().values() for el in sd["snapshot"]["element"] for c in el.get("constraint", [])]


def test_not_evaluated_constraints_are_exactly_the_listed_ones() -> None:
    assert invariants.not_evaluated(all_constraints()) == NOT_EVALUATED


def test_native_constraints() -> None:
    assert invariants.NATIVE | native.NATIVE_EVALUATORS.keys() == NATIVE


def test_every_other_constraint_compiles() -> None:
    keys = {c["key"] for c in all_constraints()}
    for name in resource_types():
        for node in sd_nodes(name).values():
            for c in node.constraints:
                assert (c.fn is None) == (c.key in NOT_EVALUATED), c.key
    assert len(keys) > 200


def test_no_constraint_errors_at_run_time_on_samples(monkeypatch) -> None:
    failures: list[str] = []
    original = invariants.evaluate

    def spy(constraint, data, resource, root, memo=None):
        result = original(constraint, data, resource, root, memo)
        if result is None and constraint.fn is not None:
            failures.append(constraint.key)
        return result

    monkeypatch.setattr(invariants, "evaluate", spy)
    for name in resource_types():
        validate_resource(minimal(name))
    for sample in rich_samples().values():
        validate_resource(sample)
    assert failures == []


def test_engine_failure_does_not_crash(monkeypatch) -> None:
    node = sd_nodes("Patient")["Patient.contact"]
    (pat_1,) = [c for c in node.constraints if c.key == "pat-1"]

    def boom(*_args: object) -> list:
        raise RuntimeError("engine failure")

    monkeypatch.setattr(pat_1, "fn", boom)
    monkeypatch.setattr(invariants, "_RESULTS", {})  # no remembered outcome
    patient = rich_samples()["patient"]
    patient["contact"] = [{"gender": "male"}]  # violates pat-1, which now cannot be evaluated
    assert validate_resource(patient) == []


def test_questionnaire_link_ids_must_be_unique() -> None:
    q = rich_samples()["questionnaire"]
    q["item"][2]["item"][1]["item"][0]["linkId"] = "1"
    issues = [i for i in validate_resource(q) if i.severity == "error"]
    assert [(i.code, i.expression) for i in issues] == [("invariant", ("Questionnaire",))]
    assert "que-2" in issues[0].diagnostics


def test_period_invariant() -> None:
    patient = rich_samples()["patient"]
    patient["contact"] = [{"name": {"family": "x"}, "period": {"start": "2020", "end": "2019"}}]
    issues = validate_resource(patient)
    assert [(i.code, i.expression) for i in issues] == [("invariant", ("Patient.contact[0].period",))]


def test_absence_guards() -> None:
    assert expressions.absence_guards("dataAbsentReason.empty() or value.empty()") == {"dataAbsentReason", "value"}
    assert expressions.absence_guards("a.count().empty() or b.exists()") == frozenset()
    assert expressions.absence_guards("x.exists() implies y.exists()") == {"x"}
    assert expressions.presence_guards("name.exists() or telecom.exists()") == {"name", "telecom"}
    assert expressions.root_identifiers("contained.where(%resource.id = id).empty()") == {"contained"}
    assert expressions.root_identifiers("hasValue() or children().count() > 1") is None


def test_skipping_absent_elements_matches_full_evaluation() -> None:
    """Guards only skip evaluations whose outcome is already known: same issues either way."""
    from app.validation import walker as walker_module

    samples = [minimal(name) for name in resource_types()] + list(rich_samples().values())
    fast = [validate_resource(s) for s in samples]

    class NoSkip(walker_module.Walker):
        def constraints(self, constraints, data, location):
            for c in constraints:
                if c.fn is None or (c.key == "dom-6" and self._contained):
                    continue
                if invariants.evaluate(c, data, self._resource, self._root, self._memo) is False:
                    self.add("invariant", location, f"constraint {c.key} failed", c.severity)

    slow = []
    for s in samples:
        w = NoSkip(lenient=False, with_invariants=True)
        w.resource(s, None)
        slow.append(w.issues)
    assert [len(x) for x in fast] == [len(x) for x in slow]


def claim_with_contained_coverage(reference: str) -> dict:
    return {
        "resourceType": "Claim",
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}]},
        "use": "claim",
        "patient": {"reference": "urn:uuid:8b0e5f8c-3a43-4a6c-9d0e-2f1d1d1d1d1d"},
        "created": "2020-10-29T01:46:40-04:00",
        "provider": {"display": "General Hospital"},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
        "contained": [
            {
                "resourceType": "Coverage",
                "id": "cov",
                "status": "active",
                "beneficiary": {"display": "x"},
                "payor": [{"display": "NO_INSURANCE"}],
            }
        ],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": reference}}],
    }


def test_local_references_of_a_bundle_entry_resolve_in_that_entry() -> None:
    # As in every Synthea bundle: a Claim entry refers to its own contained Coverage ('#cov');
    # %rootResource is the entry's resource, not the Bundle.
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": claim_with_contained_coverage("#cov")}],
    }
    assert [i.diagnostics for i in validate_resource(bundle) if i.severity == "error"] == []
    bundle["entry"][0]["resource"] = claim_with_contained_coverage("#other")
    errors = [i for i in validate_resource(bundle) if i.severity == "error"]
    keys = {(i.expression[0], i.diagnostics.split("constraint ")[1][:5]) for i in errors}
    assert keys == {("Bundle.entry[0].resource.insurance[0].coverage", "ref-1"), ("Bundle.entry[0].resource", "dom-3")}


def test_local_references_read_from_the_json_text_are_those_of_the_walk() -> None:
    """dom-3 reads the '#' strings of a resource from its JSON text: the same set as the walk,
    whatever the quotes, backslashes, keys and non-ASCII characters around them."""
    tricky = {
        "#key": "not a key's string",
        "a": ["#x", "#", 'say "#1" now', "\\", "#y\\", '#q"uote', "back\\#slash", "#é ü", "x#y", 3, True, None],
        "b": {"reference": "#c1", "nested": [{"v": '","#z'}, {"w": "#w1"}], "#k2": {"deep": "#d"}},
        "contained": [{"resourceType": "Patient", "id": "c1", "link": "#"}],
    }
    assert native._all_local_refs(tricky) == native._local_refs(tricky, set())
    assert native._all_local_refs({"a": "no local reference", "#b": 1}) == set()
    for sample in rich_samples().values():
        assert native._all_local_refs(sample) == native._local_refs(sample, set())
