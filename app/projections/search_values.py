"""The typed search-index values of a resource (https://hl7.org/fhir/R4/search.html), one list per
search parameter: the value types of each search-parameter type and the extraction entry points,
gathered from :mod:`app.search_types` (one module per type, where each conversion lives)."""

from __future__ import annotations

from app.search_types.composite import CompositeValue
from app.search_types.date import DATE_MAX, DATE_MIN, DateValue
from app.search_types.extraction import extract_all, extract_values, fallback_params
from app.search_types.nodes import normalize_string
from app.search_types.number import NumberValue
from app.search_types.quantity import ISO_4217, QuantityValue
from app.search_types.reference import ReferenceValue
from app.search_types.string import StringValue
from app.search_types.token import TokenValue
from app.search_types.uri import UriValue

SearchValue = (
    StringValue | TokenValue | DateValue | NumberValue | QuantityValue | ReferenceValue | UriValue | CompositeValue
)

__all__ = [
    "DATE_MAX",
    "DATE_MIN",
    "ISO_4217",
    "CompositeValue",
    "DateValue",
    "NumberValue",
    "QuantityValue",
    "ReferenceValue",
    "SearchValue",
    "StringValue",
    "TokenValue",
    "UriValue",
    "extract_all",
    "extract_values",
    "fallback_params",
    "normalize_string",
]
