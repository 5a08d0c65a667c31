"""Domain errors: each carries its HTTP status and FHIR issue code; the API renders them as
OperationOutcome. Nothing here knows about HTTP frameworks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    severity: str  # fatal | error | warning | information
    code: str  # FHIR IssueType: invalid, structure, required, value, not-found, conflict, ...
    diagnostics: str
    expression: tuple[str, ...] = ()

    def to_json(self) -> dict:
        out: dict = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            out["expression"] = list(self.expression)
        return out


@dataclass
class FhirError(Exception):
    status: int
    code: str
    diagnostics: str
    expression: tuple[str, ...] = ()
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Exception.__init__(self, self.diagnostics)

    def all_issues(self) -> list[Issue]:
        if self.issues:
            return self.issues
        return [Issue("error", self.code, self.diagnostics, self.expression)]


def operation_outcome(issues: list[Issue]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


def not_found(diagnostics: str) -> FhirError:
    return FhirError(404, "not-found", diagnostics)


def invalid(diagnostics: str, status: int = 400, expression: tuple[str, ...] = ()) -> FhirError:
    return FhirError(status, "invalid", diagnostics, expression)
