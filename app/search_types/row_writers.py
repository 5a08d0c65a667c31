"""Side-table rows ``(param, ...columns)`` from one parameter's de-duplicated values held as plain
tuples (:mod:`app.search_types.value_tuples`): what each type's ``add_rows`` appends, and the
parameter's text row (the texts of tokens; string parameters' ``:text`` reads the string rows) that
:func:`app.search_types.text_document.text_rows` appends."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import app.search_types.value_tuples  # noqa: F401  (configures the compiled token writer, app/native/tokens.c)
from app.native import references, tokens
from app.search_types.protocol import system_hash
from app.search_types.reference import split_target
from app.search_types.text_document import MAX_CHARS

Writer = Callable[[str, dict, dict[str, list[tuple]], list[tuple]], None]
"""(code, values, kind -> rows, text rows)."""


def param_text(code: str, parts: Iterable[str | None], texts: list[tuple]) -> None:
    kept = [p for p in parts if p]
    if len(kept) == 1:
        texts.append((code, kept[0][:MAX_CHARS]))
    elif kept:
        texts.append((code, "\n".join(dict.fromkeys(kept))[:MAX_CHARS]))  # each distinct text once


def token_text(code: str, d: dict, o: dict, texts: list[tuple]) -> None:
    param_text(code, [v[2] for v in d], texts)


def no_text(code: str, d: dict, o: dict, texts: list[tuple]) -> None:
    return None


def python_token_rows(code: str, d: dict, o: dict, texts: list[tuple]) -> None:
    """:data:`token_rows` in Python (the compiled writer's reference)."""
    rows = o["token"]
    start = len(rows)
    parts = []
    for system, value, text, of_type in d:
        if of_type:
            for s, c in of_type:
                rows.append((code, system_hash(system), value, f"{s or ''}|{c or ''}"))
        elif system is not None or value is not None:
            rows.append((code, system_hash(system), value, None))
        if text:
            parts.append(text)
    if len(rows) == start and d:
        rows.append((code, None, None, None))
    if parts:  # param_text, inlined (every part is a text already): a call and a copy less per parameter
        texts.append((code, (parts[0] if len(parts) == 1 else "\n".join(dict.fromkeys(parts)))[:MAX_CHARS]))


token_rows: Writer = python_token_rows if tokens is None else tokens.token_rows
"""As :meth:`TokenType.add_rows`: a value with only a text leaves no row of its own; one empty row
stays when the parameter has no other (``:missing``). The compiled writer (:mod:`app.native`,
configured by :mod:`app.search_types.value_tuples`) where it is built, else
:func:`python_token_rows`."""


def string_rows(code: str, d: dict, o: dict, texts: list[tuple]) -> None:
    o["string"].extend([(code, n, e) for n, e in d])  # :text searches these rows (app/search_types/string.py)


def date_rows(code: str, d: dict, o: dict, texts: list[tuple]) -> None:
    if len(d) == 1:
        low, high = next(iter(d))
        o["date"].append((code, low, high))
        o["sort"].append((code, low, high))
        return
    o["date"].extend([(code, low, high) for low, high in d])
    o["sort"].append((code, min([v[0] for v in d]), max([v[1] for v in d])))


def number_rows(code: str, d: dict, o: dict, texts: list[tuple]) -> None:
    o["number"].extend([(code, v[0]) for v in d])


def quantity_rows(code: str, d: dict, o: dict, texts: list[tuple]) -> None:
    o["quantity"].extend([(code, v, system_hash(s), c, u) for v, s, c, u in d])


def reference_rows(code: str, d: dict, o: dict, texts: list[tuple]) -> None:
    """As :meth:`ReferenceType.add_rows`: the reference as written only where ``type/id`` does not
    spell it; by the compiled writer (:mod:`app.native`), or :func:`python_reference_rows`."""
    if references is None:
        python_reference_rows(code, d, o, texts)
    else:
        references.reference_rows(code, d, o["reference"])


def python_reference_rows(code: str, d: dict, o: dict, texts: list[tuple]) -> None:
    """:func:`reference_rows` in Python (the compiled writer's reference)."""
    o["reference"].extend(
        [(code, t, *split_target(i), None if t and i and ref == f"{t}/{i}" else ref, s, v) for t, i, ref, _, s, v in d]
    )


def uri_rows(code: str, d: dict, o: dict, texts: list[tuple]) -> None:
    o["uri"].extend([(code, v[0]) for v in d])


ROWS: dict[str, Writer] = {
    "token": token_rows,
    "string": string_rows,
    "date": date_rows,
    "number": number_rows,
    "quantity": quantity_rows,
    "reference": reference_rows,
    "uri": uri_rows,
}
TEXTS: dict[str, Writer] = {t: no_text for t in ROWS} | {"token": token_text}
"""The text rows alone (parameters answered without index rows: ``_id``)."""

_COMPONENT: dict[str, tuple[str, ...]] = {
    "token": ("{v}[0]", "{v}[1]", "None", "None", "None", "None"),
    "reference": ("None", "({v}[0] + '/' + {v}[1] if {v}[0] and {v}[1] else {v}[2])", "None", "None", "None", "None"),
    "quantity": ("{v}[1]", "{v}[2]", "{v}[0]", "None", "None", "None"),
    "number": ("None", "None", "{v}[0]", "None", "None", "None"),
    "date": ("None", "None", "None", "{v}[0]", "{v}[1]", "None"),
    "string": ("None", "None", "None", "None", "None", "{v}[0]"),
    "uri": ("None",) * 6,
}
"""(system, code, num, low, high, str) of a value used as a composite's component, by its type,
as Python expressions over the value ``{v}``: what each type's ``component`` gives."""


def composite_rows(types: tuple[str, ...]) -> Writer:
    """The writer of a composite whose components have the parameter types ``types``: the first
    component's system and code, the second's six columns, the third's number."""
    parts = [[e.format(v=f"k[{i}]") for e in _COMPONENT[t]] for i, t in enumerate(types)]
    none = ["None"] * 6
    a, b, c = parts[0], parts[1] if len(parts) > 1 else none, parts[2] if len(parts) > 2 else none
    row = ", ".join(["code", a[0], a[1], *b, c[2]])
    source = f"def rows(code, d, o, texts):\n    o['composite'].extend([({row}) for k in d])\n"
    namespace: dict = {}
    exec(compile(source, f"<composite rows {'/'.join(types)}>", "exec"), namespace)  # source we generated
    return namespace["rows"]
