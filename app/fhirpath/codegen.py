"""Python source for compiled FHIRPath branches (:mod:`app.fhirpath.compiler`): nested loops in
place of a chain of step closures, for the steps that map each item on its own (element access,
``where()``, ``extension()``, ``resolve()``, resource-type filters). A branch with any other step
(an indexer, ``first()``, a comparison...) runs its closures through :func:`run` instead.

Nested loops yield the same nodes in the same order as the closures: every inlined step maps
each item to zero or more items independently of the others, so walking depth-first concatenates
the same lists the closures build breadth-first."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from app.fhirpath.compiler import Step, collect, run
from app.fhirpath.references import resolve_stub


class Source:
    """The lines of one generated function, its constants (objects the code refers to by name)
    and the top-level elements of the resource ``r`` read once at its start (``R_<n>``)."""

    def __init__(self, shared: set[tuple] | frozenset[tuple] = frozenset()) -> None:
        self.shared = shared  # what to memoize (see :meth:`memo`)
        self.uses: Counter[tuple] = Counter()  # how often each memoizable value is read
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self.hoisted: dict[str, str] = {}  # top-level element -> local variable
        self.memos: dict[tuple, str] = {}  # what a memo holds -> local variable (None until computed)
        self.depth = 1
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def const(self, value: object, prefix: str = "K") -> str:
        for name, existing in self.consts.items():
            if existing is value:
                return name
        name = self.name(prefix)
        self.consts[name] = value
        return name

    def add(self, line: str) -> None:
        self.lines.append("    " * self.depth + line)

    def open(self, header: str) -> None:
        """A line ending in ``:``; what follows is inside it until :attr:`depth` is restored."""
        self.add(header)
        self.depth += 1

    def root_element(self, key: str) -> str:
        if key not in self.hoisted:
            self.hoisted[key] = f"R_{len(self.hoisted)}"
        return self.hoisted[key]

    def memo(self, key: tuple) -> str:
        """The variable memoizing ``key`` in one call (None until computed)."""
        if key not in self.memos:
            self.memos[key] = f"M_{len(self.memos)}"
        return self.memos[key]

    def function(self, name: str, args: str) -> str:
        """The source of ``def name(args)``: the hoisted reads, then the lines."""
        head = [f"def {name}({args}):"]
        if self.hoisted:  # one statement: map() calls r.get in C
            names = ", ".join(self.hoisted.values())
            head.append(f"    {names}, = map(r.get, {tuple(self.hoisted)!r})")
        if self.memos:
            head.append(f"    {' = '.join(self.memos.values())} = None")
        return "\n".join(head + (self.lines or ["    pass"])) + "\n"

    def compile(self, name: str, args: str, filename: str) -> Callable:
        namespace: dict[str, Any] = dict(self.consts)
        exec(compile(self.function(name, args), filename, "exec"), namespace)  # source we generated
        return namespace[name]


def resolve_stub_fast(value: object, root: dict) -> dict | None:
    """:func:`resolve_stub`, answering at once for a reference that names no type (a URN)."""
    if type(value) is dict:
        ref = value.get("reference")
        if type(ref) is str and ref and "/" not in ref and ref[0] != "#" and "type" not in value:
            return None
    return resolve_stub(value, root)


def _inlined(step: Step) -> bool:
    return any(hasattr(step, a) for a in ("passes", "key", "preds", "url", "resolves"))


def first_root_keys(branches: Iterable[tuple[tuple[Step, ...], Any]]) -> list[str] | None:
    """The top-level elements each branch reads first, or None if some branch does not start by
    reading one (so a resource lacking all of them yields nothing)."""
    keys: list[str] = []
    for steps, _ in branches:
        key = next((getattr(s, "key", None) for s in steps if not getattr(s, "passes", False)), None)
        if key is None or not all(_inlined(s) for s in steps):
            return None
        if key not in keys:
            keys.append(key)
    return keys


def element_path(steps: tuple[Step, ...]) -> tuple[str, ...] | None:
    """The element keys of a branch made of element access only (None otherwise)."""
    keys = []
    for step in steps:
        if hasattr(step, "key"):
            keys.append(step.key)  # type: ignore[attr-defined]
        elif not getattr(step, "passes", False) or hasattr(step, "resource_type"):
            return None
    return tuple(keys) if keys else None


def emit_path(src: Source, steps: tuple[Step, ...], focus: str, root_focus: bool, leaf: Callable[[str], None]) -> None:
    """Emit code binding, in turn, each node ``steps`` yield from the item named ``focus`` (the
    resource ``r`` when ``root_focus``), and ``leaf(variable)`` inside; ``r`` is ``%resource``."""
    start = src.depth
    if not all(_inlined(s) for s in steps):
        var = src.name("n")
        src.open(f"for {var} in {src.const(run, 'RUN')}({src.const(steps, 'S')}, [{focus}], r):")
        leaf(var)
        src.depth = start
        return
    cur, is_dict = focus, root_focus
    for step in steps:
        if getattr(step, "passes", False) and not hasattr(step, "resource_type"):
            continue
        cur, is_dict = _emit_step(src, step, cur, is_dict, root_focus and cur == focus)
    leaf(cur)
    src.depth = start


def _emit_step(src: Source, step: Step, cur: str, is_dict: bool, at_root: bool) -> tuple[str, bool]:
    """One step over the node ``cur``: the variable of the node(s) it yields, and whether that is
    known to be a dict."""
    key = getattr(step, "key", None)
    var = src.name("n")
    if key is not None:
        if at_root:  # the parameter's code tests the top-level elements it starts from
            got = src.root_element(key)
        else:
            if not is_dict:
                src.open(f"if type({cur}) is dict:")
            got = src.name("x")
            src.add(f"{got} = {cur}.get({key!r})")
            src.open(f"if {got} is not None:")
        src.open(f"for {var} in ({got} if type({got}) is list else ({got},)):")
        src.open(f"if {var} is not None:")
        return var, False
    if hasattr(step, "resource_type"):
        src.open(f"if type({cur}) is dict and {cur}.get('resourceType') == {step.resource_type!r}:")  # type: ignore[attr-defined]
        return cur, True
    if hasattr(step, "url"):
        src.open(f"if type({cur}) is dict and type({cur}.get('extension')) is list:")
        src.open(f"for {var} in {cur}['extension']:")
        src.open(f"if type({var}) is dict and {var}.get('url') == {step.url!r}:")  # type: ignore[attr-defined]
        return var, True
    if hasattr(step, "resolves"):
        src.add(f"{var} = {src.const(resolve_stub, 'RESOLVE')}({cur}, r)")
        src.open(f"if {var} is not None:")
        return var, False
    test = getattr(step, "resolve_test", None)
    if test is not None:
        stub = src.name("s")
        src.add(f"{stub} = {src.const(resolve_stub_fast, 'RESOLVE')}({cur}, r)")
        src.open(f"if {stub} is not None and {src.const(test, 'T')}({stub}):")
        return cur, is_dict
    preds = step.preds  # type: ignore[attr-defined]
    general = f"{src.const(collect, 'COLLECT')}({src.const(preds, 'P')}, [{cur}], r) == [True]"
    simple = getattr(preds[0][0][0], "key_equals", None) if len(preds) == 1 and len(preds[0][0]) == 1 else None
    if simple is None:
        src.open(f"if {general}:")
        return cur, is_dict
    # where(key = 'text'): a string element is compared at once (what the predicate gives for it);
    # anything else (absent, an array, another type) takes the general way
    key, text = simple
    got = src.name("x")
    src.add(f"{got} = {cur}.get({key!r}) if type({cur}) is dict else None")
    src.open(f"if (({got} == {text!r}) if type({got}) is str else {general}):")
    return cur, is_dict
