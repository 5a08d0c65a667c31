"""Structural validation of FHIR R4 resources against the official StructureDefinitions."""

from app.validation.validator import (
    JSON_LEVEL,
    UNKNOWN_ELEMENT,
    is_json_level,
    rejection_status,
    validate_resource,
    warm,
)

__all__ = ["JSON_LEVEL", "UNKNOWN_ELEMENT", "is_json_level", "rejection_status", "validate_resource", "warm"]
