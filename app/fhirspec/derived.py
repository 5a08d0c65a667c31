"""An on-disk cache of what the code derives from the R4 definition files: the type hierarchy, the
resource types, the FHIRPath type model, the core search parameters, the value set expansions.

Deriving them means parsing ``profiles-resources.json`` (35 MB of JSON) and its neighbours: about
0.4 s of CPU in every process that needs them (the CLI, each server process, replay's fork server,
whose start is counted in every replay's worker CPU); loading them back from here takes ~10 ms, and
the process never holds the parsed files (some 200 MB that the replay workers inherited).

The files stay the only source of truth. An entry is keyed by a digest of the bytes of every file
under ``spec_dir``, of the source of the code that derives it (the ``app.fhirspec`` package and the
builder's own module, which defines the classes it returns) and of :data:`FORMAT`; its payload
carries a digest of its own. A missing, stale, truncated or corrupt entry is derived again from
the files and rewritten (to a temporary file, then renamed over the old one, so readers and
concurrent writers only ever see a whole entry); an unusable directory (read-only, absent, full)
only means that the process derives everything itself. The directory is trusted as the data
directory is: entries are pickles.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from app.settings import get_settings

T = TypeVar("T")

log = logging.getLogger("fhirledger.spec_cache")

FORMAT = b"fhirledger-derived-1"
"""Bumped when the layout of an entry changes."""
_MAGIC = b"FLDERIV1"
_DIGEST = 32  # sha256
_PACKAGE = Path(__file__).resolve().parent

BUILDERS: dict[str, Callable[[], object]] = {}
"""Every cached builder by entry name, unwrapped (the tests compare each entry with its build)."""


def cache_dir() -> Path:
    """``FHIRLEDGER_SPEC_CACHE_DIR``, or ``<data_dir>/spec-cache`` when unset."""
    settings = get_settings()
    return settings.spec_cache_dir or settings.data_dir / "spec-cache"


def _make(directory: Path) -> None:
    """Create the cache directory: a configured one with its parents, the default one only inside an
    existing data directory (a process that merely reads the spec files creates no data directory,
    e.g. ``./.fhirledger`` in the working directory of a command given ``--data-dir``)."""
    directory.mkdir(parents=get_settings().spec_cache_dir is not None, exist_ok=True)


@functools.cache
def _files_digest(paths: tuple[Path, ...]) -> bytes:
    """sha256 over the names and bytes of ``paths`` (once per process: they do not change under a
    running process, which caches what it parsed from them anyway)."""
    digest = hashlib.sha256()
    for path in paths:
        data = path.read_bytes()
        digest.update(b"%s\0%d\0" % (path.name.encode(), len(data)))
        digest.update(data)
    return digest.digest()


def _spec_files(spec_dir: Path) -> tuple[Path, ...]:
    return tuple(sorted(p for p in spec_dir.iterdir() if p.is_file()))


def entry_key(name: str, build: Callable[[], object]) -> bytes:
    """What an entry of ``build`` must have been derived from to be served."""
    module_file = Path(sys.modules[build.__module__].__file__ or "").resolve()
    code = tuple(sorted({*_PACKAGE.glob("*.py"), module_file}))
    digest = hashlib.sha256(FORMAT + b"\0" + name.encode() + b"\0" + sys.version.encode())
    digest.update(_files_digest(_spec_files(get_settings().spec_dir)))
    digest.update(_files_digest(code))
    return digest.digest()


def _read(path: Path, key: bytes) -> object | None:
    """The entry at ``path`` if it is whole and derived from ``key``; None otherwise."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    head = len(_MAGIC) + 2 * _DIGEST
    payload = data[head:]
    if (
        len(data) <= head
        or data[: len(_MAGIC)] != _MAGIC
        or data[len(_MAGIC) : len(_MAGIC) + _DIGEST] != key
        or data[len(_MAGIC) + _DIGEST : head] != hashlib.sha256(payload).digest()
    ):
        return None
    try:
        return pickle.loads(payload)
    except Exception:  # a class changed shape without its module's source changing (a dependency)
        log.warning("spec cache entry %s does not load; deriving it again", path, exc_info=True)
        return None


def _write(path: Path, key: bytes, value: object) -> None:
    """Replace the entry at ``path`` as a whole (temporary file, then rename), or leave it be."""
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    temporary = None
    try:
        _make(path.parent)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as out:
            temporary = out.name
            out.write(_MAGIC + key + hashlib.sha256(payload).digest() + payload)
        os.replace(temporary, path)
        temporary = None
    except OSError as exc:
        log.info("spec cache %s not written (%s); each process derives it from the files", path, exc)
    finally:
        if temporary is not None:
            Path(temporary).unlink(missing_ok=True)


def load(name: str, build: Callable[[], T]) -> T:
    """The value ``build()`` derives from the spec files, from the cache when its entry is current."""
    try:
        key = entry_key(name, build)
    except OSError as exc:  # a spec file unreadable: the build says which
        log.info("spec cache not used for %s (%s)", name, exc)
        return build()
    path = cache_dir() / f"{name}.pickle"
    cached = _read(path, key)
    if cached is not None:
        return cached  # type: ignore[return-value]
    value = build()
    _write(path, key, value)
    return value


def derived(name: str) -> Callable[[Callable[[], T]], Callable[[], T]]:
    """Decorate a builder of a value derived from the spec files so that it is served from the
    cache; ``name`` names its entry. The value must pickle and compare equal to a rebuilt one
    (tests/fhirspec/test_derived.py checks every builder), and the builder may only run code of
    ``app.fhirspec`` and of its own module: an entry is keyed by those sources alone."""

    def wrap(build: Callable[[], T]) -> Callable[[], T]:
        BUILDERS[name] = build

        @functools.wraps(build)
        def cached() -> T:
            return load(name, build)

        return cached

    return wrap
