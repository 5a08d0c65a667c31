"""Structural validation of FHIR R4 resources against the official StructureDefinitions."""

from app.validation.validator import validate_resource, warm

__all__ = ["validate_resource", "warm"]
