"""``fhirledger serve`` is safe by default: without authorization settings it serves a loopback
address only (saying once that it is open), and refuses any other address unless told
``--insecure-open``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app.cli import is_loopback, main, open_access_refusal
from app.settings import Settings
from tests.server_process import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("FHIRLEDGER_AUTH_"):
            monkeypatch.delenv(name)


def test_serving_all_interfaces_without_auth_settings_exits_2_with_a_clear_message(no_auth, capsys) -> None:
    started = time.monotonic()
    code = main(["serve", "--host", "0.0.0.0", "--port", str(free_port())])
    assert code == 2
    assert time.monotonic() - started < 5  # refused before any database is started
    err = capsys.readouterr().err
    assert "refusing to serve 0.0.0.0 without authorization" in err
    assert "FHIRLEDGER_AUTH_ISSUER" in err and "--insecure-open" in err


def test_only_loopback_hosts_run_open_unless_insecure_open_or_auth_is_configured(no_auth) -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"):
        assert is_loopback(host) and open_access_refusal(Settings(host=host), False) is None
    for host in ("0.0.0.0", "::", "10.1.2.3", "fhir.example.org"):
        assert not is_loopback(host)
        assert open_access_refusal(Settings(host=host), False) is not None
        assert open_access_refusal(Settings(host=host), True) is None
    configured = Settings(
        host="0.0.0.0", auth_issuer="https://issuer.example", auth_audience="x", auth_jwks="/tmp/jwks.json"
    )
    assert open_access_refusal(configured, False) is None


def test_a_loopback_server_without_auth_runs_and_says_once_that_it_is_open(database_dsn: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FHIRLEDGER_AUTH_")}
    env["FHIRLEDGER_DATABASE_URL"] = database_dsn
    env["FHIRLEDGER_OFFLOAD_BODY_BYTES"] = "262144"  # retired: said, not silently ignored
    env["PYTHONPATH"] = str(ROOT)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != 200:
            assert proc.poll() is None, log.read_text()
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2).status_code
            except httpx.HTTPError:
                time.sleep(0.2)
        assert status == 200, log.read_text()
    finally:
        proc.terminate()
        proc.wait(30)
    assert log.read_text().count("authorization is off") == 1
    assert "FHIRLEDGER_OFFLOAD_BODY_BYTES is no longer read" in log.read_text()
