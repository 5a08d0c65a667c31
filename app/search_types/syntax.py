"""The syntax of search values: prefixes, dates as ranges, numbers with their implicit precision,
values split on unescaped ``|`` and ``$`` (https://hl7.org/fhir/R4/search.html#prefix)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation, localcontext

from app.errors import invalid
from app.fhirtime import FhirDateError, parse_range

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
MAX_EXPONENT = 1000  # search numbers lie within ±1e1000 with at most 1000 decimal places
_EXACT = Context(prec=2 * MAX_EXPONENT + 10)  # enough digits for a precision range without rounding


def unescape(value: str) -> str:
    return value.replace("\\$", "$").replace("\\|", "|")


def split_prefix(code: str, value: str) -> tuple[str, str]:
    if len(value) > 2 and value[:2] in PREFIXES and not value[2:3].isalpha():
        return value[:2], value[2:]
    if len(value) > 2 and value[:2].isalpha() and value[:2].islower() and not value[2:3].isalpha():
        raise invalid(
            f"Search parameter '{code}': unknown prefix '{value[:2]}' in '{value[:60]}' "
            f"(prefixes are {', '.join(PREFIXES)})"
        )
    return "eq", value


def date_range(code: str, value: str) -> tuple[datetime, datetime]:
    try:
        return parse_range(value)
    except FhirDateError as exc:
        raise invalid(f"Search parameter '{code}': {exc}") from None


def approx_range(low: datetime, high: datetime) -> tuple[datetime, datetime]:
    """``ap`` on dates: widen by 10% of the distance from now (at least a day)."""
    gap = abs(datetime.now(UTC) - low) * 0.1
    gap = max(gap, timedelta(days=1))
    return low - gap, high + gap


def number(code: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise invalid(f"Search parameter '{code}': '{text[:60]}' is not a number") from None
    if not value.is_finite():
        raise invalid(f"Search parameter '{code}': '{text[:60]}' is not a finite number")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if value.adjusted() > MAX_EXPONENT or exponent < -MAX_EXPONENT:
        raise invalid(
            f"Search parameter '{code}': '{text[:60]}' is out of the range this server searches "
            f"(magnitudes up to 1e{MAX_EXPONENT}, at most {MAX_EXPONENT} decimal places)"
        )
    return value


def precision_range(value: Decimal) -> tuple[Decimal, Decimal]:
    """The implicit range of a number: ``100`` → [99.5, 100.5), ``1.50`` → [1.495, 1.505)."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    with localcontext(_EXACT):
        half = Decimal(5).scaleb(exponent - 1)
        return value - half, value + half


def _split_unescaped(value: str, separator: str, parts: int | None = None) -> list[str]:
    """Split on ``separator`` where it is not escaped by a backslash, into at most ``parts``."""
    out, buf, i = [], [], 0
    while i < len(value):
        if value[i] == "\\" and i + 1 < len(value):
            buf.append(value[i : i + 2])
            i += 2
            continue
        if value[i] == separator and (parts is None or len(out) < parts - 1):
            out.append("".join(buf))
            buf = []
        else:
            buf.append(value[i])
        i += 1
    out.append("".join(buf))
    return out


def split_pipe(value: str, parts: int) -> list[str]:
    """Split on unescaped ``|`` into at most ``parts`` pieces (unescaping each)."""
    return [unescape(p) for p in _split_unescaped(value, "|", parts)]


def split_composite(value: str) -> list[str]:
    """Split a composite value on unescaped ``$``."""
    return _split_unescaped(value, "$")
