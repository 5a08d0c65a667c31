"""The cache of what is derived from the spec files (app/fhirspec/derived.py): served only when
whole and derived from the same files and code, equal to a fresh derivation, never a reason not
to start."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.fhirpath.model import type_model  # noqa: F401  (registers its builder)
from app.fhirspec import derived
from app.fhirspec.resource_types import resource_types
from app.fhirspec.search_parameters import SearchParamRegistry, _load_core, core_registry
from app.settings import PROJECT_ROOT, Settings, get_settings
from app.validation import bindings  # noqa: F401  (registers its builder)

CALLS: list[int] = []


def _counted() -> dict[str, bytes]:
    """A builder reading the spec directory: its files' bytes (counting its runs)."""
    CALLS.append(1)
    return {p.name: p.read_bytes() for p in sorted(derived.get_settings().spec_dir.iterdir())}


@pytest.fixture
def spec_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of two small spec files, and the cache in a directory of the test's own."""
    spec = tmp_path / "spec"
    spec.mkdir()
    for name in ("compartmentdefinition-patient.json", "version.info"):
        shutil.copy(get_settings().spec_dir / name, spec / name)
    settings = Settings(spec_dir=spec, spec_cache_dir=tmp_path / "cache")
    monkeypatch.setattr(derived, "get_settings", lambda: settings)
    derived._files_digest.cache_clear()
    CALLS.clear()
    yield spec
    derived._files_digest.cache_clear()


def test_every_entry_equals_a_fresh_derivation(tmp_path, monkeypatch):
    """Each cached value, read back from its file, equals what the builder derives from the files:
    the whole structure (every search parameter with its components, every type's elements)."""
    real = get_settings()
    monkeypatch.setattr(derived, "get_settings", lambda: Settings(spec_dir=real.spec_dir, spec_cache_dir=tmp_path))
    assert set(derived.BUILDERS) == {
        "base-types",
        "resource-types",
        "type-model",
        "search-parameters",
        "value-set-expansions",
    }
    for name, build in derived.BUILDERS.items():
        fresh = build()
        derived.load(name, build)  # derived and written
        served = derived._read(tmp_path / f"{name}.pickle", derived.entry_key(name, build))
        assert type(served) is type(fresh)
        assert served == fresh, name
    params = derived._read(tmp_path / "search-parameters.pickle", derived.entry_key("search-parameters", _load_core))
    assert [p._by_base for p in params] == [p._by_base for p in _load_core.__wrapped__()]
    cached_registry, parsed = SearchParamRegistry(params), core_registry()
    for t in resource_types():
        assert dict(cached_registry.params_for(t)) == dict(parsed.params_for(t)), t


def test_a_changed_spec_file_is_derived_again(spec_dir):
    first = derived.load("counted", _counted)
    assert derived.load("counted", _counted) == first and len(CALLS) == 1
    (spec_dir / "version.info").write_bytes((spec_dir / "version.info").read_bytes() + b" ")
    derived._files_digest.cache_clear()  # a new process
    second = derived.load("counted", _counted)
    assert len(CALLS) == 2 and second != first and second == _counted()


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "garbage"])
def test_a_damaged_entry_is_never_served(spec_dir, damage):
    value = derived.load("counted", _counted)
    path = derived.cache_dir() / "counted.pickle"
    data = path.read_bytes()
    damaged = {
        "truncated": data[: len(data) - 7],
        "flipped": data[:-20] + bytes([data[-20] ^ 1]) + data[-19:],
        "empty": b"",
        "garbage": os.urandom(len(data)),
    }[damage]
    path.write_bytes(damaged)
    assert derived.load("counted", _counted) == value and len(CALLS) == 2
    assert derived.load("counted", _counted) == value and len(CALLS) == 2  # rewritten whole


def test_an_unwritable_cache_directory_only_costs_the_derivation(spec_dir, monkeypatch):
    blocker = spec_dir.parent / "a-file"
    blocker.write_bytes(b"")
    monkeypatch.setattr(derived, "cache_dir", lambda: blocker / "cache")  # mkdir fails (even as root)
    assert derived.load("counted", _counted) == _counted()
    assert derived.load("counted", _counted) == _counted()
    assert len(CALLS) == 4


def test_no_data_directory_is_created_for_the_cache(spec_dir, monkeypatch):
    data_dir = spec_dir.parent / "data"
    monkeypatch.setattr(derived, "get_settings", lambda: Settings(spec_dir=spec_dir, data_dir=data_dir))
    assert derived.load("counted", _counted) == _counted()
    assert not data_dir.exists()
    data_dir.mkdir()
    derived.load("counted", _counted)
    derived.load("counted", _counted)
    assert len(CALLS) == 3 and (data_dir / "spec-cache" / "counted.pickle").exists()


def _write_and_read(path: str, key: bytes, rounds: int, queue: multiprocessing.Queue) -> None:
    value = _large()
    bad = 0
    for _ in range(rounds):
        derived._write(Path(path), key, value)
        if derived._read(Path(path), key) != value:
            bad += 1
    queue.put(bad)


def _large() -> dict[str, list[str]]:
    return {f"k{i}": [f"value {i} {j}" for j in range(40)] for i in range(5000)}  # a few MB pickled


def test_concurrent_writers_leave_a_whole_entry(tmp_path):
    path, key = tmp_path / "entry.pickle", b"k" * 32
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    writers = [context.Process(target=_write_and_read, args=(str(path), key, 15, queue)) for _ in range(4)]
    for w in writers:
        w.start()
    bad = [queue.get(timeout=120) for _ in writers]
    for w in writers:
        w.join(timeout=60)
    assert bad == [0, 0, 0, 0]
    assert derived._read(path, key) == _large()
    assert [p.name for p in tmp_path.iterdir()] == ["entry.pickle"]  # no temporary file left


def test_replay_preload_parses_no_spec_file_once_the_cache_is_written(tmp_path):
    """What replay's fork server loads (app/projections/replay_preload.py): the first process
    parses the spec files and writes the cache, the next parses none."""
    script = (
        "import app.projections.replay_preload\n"
        "from app.fhirspec.loader import load_json\n"
        "print(load_json.cache_info().currsize)\n"
    )
    env = {**os.environ, "FHIRLEDGER_SPEC_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(PROJECT_ROOT)}
    parsed = [
        int(subprocess.run([sys.executable, "-c", script], env=env, check=True, capture_output=True).stdout)
        for _ in range(2)
    ]
    assert parsed == [3, 0]
