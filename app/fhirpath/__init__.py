"""FHIRPath for search indexing: a compiler of the expression forms the R4 search parameters use
into Python closures over FHIR JSON, with fhirpathpy as the fallback."""

from app.fhirpath.extractor import Extractor, compile_expression, fallback_expressions

__all__ = ["Extractor", "compile_expression", "fallback_expressions"]
