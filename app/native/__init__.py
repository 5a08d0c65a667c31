"""Compiled (C) versions of the most frequent generic steps of a replay's worker processes: the walk
of a resource for its ``_content`` text (``textwalk.c``), the rows of reference values
(``references.c``) and of token values (``tokens.c``), and the encoding of rows as COPY data
(``copyrows.c``); and of a write's walks of its parsed body (``bodywalk.c``): the strings a
transaction's references may rewrite, and the colons of the repeated-key check. The Python
functions they mirror stay the reference, and run where the extension modules are not built:
``pip install`` compiles them when a C compiler and the Python headers are at hand, and goes on
without them otherwise (``optional`` in pyproject.toml). :func:`missing` names those not built, for
``fhirledger doctor``; tests hold each equal to its Python reference."""

from __future__ import annotations

from types import ModuleType

try:
    from app.native import _textwalk as textwalk
except ImportError:  # not built: the Python walk runs
    textwalk: ModuleType | None = None  # type: ignore[no-redef]

try:
    from app.native import _references as references
except ImportError:  # not built: the Python row writer runs
    references: ModuleType | None = None  # type: ignore[no-redef]

try:
    from app.native import _copyrows as copyrows
except ImportError:  # not built: the generated Python encoders run
    copyrows: ModuleType | None = None  # type: ignore[no-redef]

try:
    from app.native import _bodywalk as bodywalk
except ImportError:  # not built: the Python walks run
    bodywalk: ModuleType | None = None  # type: ignore[no-redef]

try:
    from app.native import _tokens as tokens
except ImportError:  # not built: the Python converter and row writer run
    tokens: ModuleType | None = None  # type: ignore[no-redef]


def missing() -> list[str]:
    """The compiled modules this installation lacks (their Python versions run instead)."""
    modules = (
        ("textwalk", textwalk),
        ("references", references),
        ("copyrows", copyrows),
        ("bodywalk", bodywalk),
        ("tokens", tokens),
    )
    return [name for name, module in modules if module is None]
