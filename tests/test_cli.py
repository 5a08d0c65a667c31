"""The ``fhirledger`` command line (app/cli.py): a command imports the module of its own command
only (the start of every command, and of replay's fork server, which loads the main module)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import COMMANDS, main, worker_environment
from app.settings import PROJECT_ROOT, Settings

LOADED = """
import sys
from app.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("\\n" + " ".join(sorted(m for m in sys.modules if m.startswith("app.cli_") and m != "app.cli_common")))
"""


def _command_modules_loaded(*argv: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", LOADED, *argv], env=env, check=True, capture_output=True, text=True, cwd=PROJECT_ROOT
    )
    return done.stdout.splitlines()[-1].split()  # after the help


def test_a_command_loads_only_its_own_module():
    assert _command_modules_loaded("projections", "rebuild", "--help") == ["app.cli_projections"]
    assert _command_modules_loaded("audit", "--help") == ["app.cli_events"]
    assert _command_modules_loaded("serve", "--help") == []


def test_the_help_and_a_wrong_command_name_every_command(capsys):
    with pytest.raises(SystemExit):
        main(["no-such-command"])
    err = capsys.readouterr().err
    for command in ["serve", *COMMANDS]:
        assert f"'{command}'" in err


def test_serve_workers_get_the_data_directory_given_on_the_command_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``serve --workers 2 --data-dir D``: each worker builds its settings from the environment;
    it must see D (its exports and spec cache go there), not ./.fhirledger of the working directory."""
    given = Settings(data_dir=tmp_path / "data", database_url="postgresql://db.example/fhir")
    for name in ("FHIRLEDGER_DATA_DIR", "FHIRLEDGER_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in worker_environment(given).items():
        monkeypatch.setenv(name, value)
    worker = Settings()
    assert worker.data_dir == tmp_path / "data"
    assert worker.database_url == "postgresql://db.example/fhir"


def test_a_command_given_a_data_directory_reads_its_spec_cache_there(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """``fhirledger projections rebuild --data-dir D``: while the command runs, the settings (this
    process's and its replay workers') name D, so the spec cache is D/spec-cache, not ./.fhirledger's
    (where each process found none and parsed the spec files again); afterwards the environment and
    the settings are as they were."""
    from app import cli_projections
    from app.cli_common import CommandError
    from app.fhirspec.derived import cache_dir
    from app.settings import get_settings

    monkeypatch.setenv("FHIRLEDGER_DATA_DIR", str(tmp_path / "before"))
    get_settings.cache_clear()
    request.addfinalizer(get_settings.cache_clear)  # the other tests read the environment they have
    assert cache_dir() == tmp_path / "before" / "spec-cache"
    seen: list[Path] = []

    def types(args: object) -> list[str]:  # the command's first reading of the spec: its types
        seen.extend([cache_dir(), get_settings().data_dir])
        raise CommandError("stop here")

    monkeypatch.setattr(cli_projections, "_types", types)
    assert main(["projections", "rebuild", "--all", "--data-dir", str(tmp_path / "data")]) == 2
    assert seen == [tmp_path / "data" / "spec-cache", tmp_path / "data"]
    assert os.environ["FHIRLEDGER_DATA_DIR"] == str(tmp_path / "before")
    assert cache_dir() == tmp_path / "before" / "spec-cache"
