"""The CLI's door, as real subprocesses on SQLite and PostgreSQL: literal id
prefixes, hostile values refused in one line with nothing stored, no credential
in any error, and the dashboard kept on loopback unless told otherwise."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from durable import Durable
from tests.e2e.cli_app import build
from tests.e2e.cli_support import ROOT, Result, durable
from tests.support.procs import spawn, wait_until

SECRET = "Sup3r-s3cret"


@pytest.fixture
def drive(db_url: str) -> Iterator[Durable]:
    app = build(db_url)
    app.migrate()
    yield app
    app.close()


def one_line_error(result: Result, code: int = 1) -> str:
    assert result.code == code, result.err
    assert "Traceback" not in result.err
    if code == 1:
        assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    return result.err


def test_id_prefixes_are_literal_and_never_empty(db_url: str, drive: Durable) -> None:
    run_id = durable(db_url, "run", "greet", "--json").json["id"]
    assert "empty" in one_line_error(durable(db_url, "inspect", ""))
    assert "empty" in one_line_error(durable(db_url, "inspect", "   "))
    for wildcard in ("%", "_", "%%", run_id[:4] + "%", "_" + run_id[1:], "\\"):
        err = one_line_error(durable(db_url, "inspect", wildcard))
        assert "no execution id starts with" in err, wildcard
        one_line_error(durable(db_url, "cancel", wildcard))
    assert durable(db_url, "inspect", run_id[:8], "--json").json["execution"]["id"] == run_id
    assert drive.get_execution(run_id).status == "pending"


def test_hostile_values_are_refused_in_one_line(db_url: str, drive: Durable) -> None:
    listen = durable(db_url, "run", "listen", "--json").json["id"]
    before = len(drive.list_executions().items)
    cases = [
        ("run", "greet", "--input", '{"a\\u0000": 1}'),
        ("run", "greet", "--input", '"\\ud800"'),
        ("run", "greet", "--input", "[" * 200 + "]" * 200),
        ("run", "greet", "--priority", str(2**70)),
        ("run", "greet", "--queue", "q\udcff"),  # a non-UTF-8 argument
        ("send-event", listen, "go\udcff"),
        ("send-event", listen, "go", "--payload", '{"k\\u0000": 1}'),
        ("provide-input", listen, "size\udcff", "--value", "1"),
        ("inspect", "ab\udcff"),
    ]
    for args in cases:
        result = durable(db_url, *args)
        assert result.code in (1, 2), (args, result.err)
        assert "Traceback" not in result.err and "UnicodeEncodeError" not in result.err, args
        assert "OverflowError" not in result.err and "RecursionError" not in result.err, args
    assert len(drive.list_executions().items) == before
    assert drive.list_pending_events() == []


def _pg_base() -> str | None:
    return os.environ.get("DURABLE_TEST_POSTGRES_URL")


def _url_forms() -> list[str]:
    """Every way a credential rides in a URL, against a database that does not exist
    on the test server (fast errors), or a closed port without a server."""
    base = _pg_base()  # without it (no PostgreSQL here), a closed port
    host = base.split("@", 1)[-1].split("/", 1)[0] if base else "127.0.0.1:1"
    db = "durable_missing_db"
    return [
        f"postgresql://postgres:{SECRET}@{host}/{db}",
        f"postgresql://:{SECRET}@{host}/{db}",
        f"postgres://postgres:{SECRET}@{host}/{db}?sslmode=disable",
        f"postgresql://postgres@{host}/{db}?password={SECRET}",
        f"postgresql://postgres@{host}/{db}?sslpassword={SECRET}&sslmode=disable",
        f"postgresql://postgres@{host}/{db}?passfile=/nonexistent/{SECRET}",
        f"postgresql://postgres:{SECRET}@[bad/{db}",
        f"postgresql://postgres@{host}/{db}?password={SECRET}&port=notaport",
        f"postgresql://postgres:{SECRET}@{host}/{db}?bogus_option=1",
        f"postgresql:///{db}?host={host.split(':')[0]}&password={SECRET}",
    ]


@pytest.mark.parametrize("url", _url_forms())
def test_no_credential_in_cli_errors(url: str) -> None:
    result = durable(url, "list")
    assert result.code == 1, result.err
    assert result.err.startswith("error: ")
    assert SECRET not in result.err and SECRET not in result.out, result.err
    debug = durable(url, "--debug", "list")  # even the traceback's last line is ours
    assert debug.code != 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "dashboard.example"])
def test_dashboard_refuses_a_network_bind_without_auth(sqlite_url: str, host: str) -> None:
    result = durable(sqlite_url, "dashboard", "--host", host, timeout=30)
    assert result.code == 2, result.err
    assert "refusing to serve the dashboard" in result.err and "--auth" in result.err
    assert "--insecure-no-auth" in result.err


def test_dashboard_on_the_network_when_told_so(sqlite_url: str, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "dashboard.log"
    env = {"DURABLE_CLI_TEST_URL": sqlite_url, "NO_COLOR": "1"}
    args = ["-m", "durable", "--app", "tests.e2e.cli_app:app", "dashboard"]
    args += ["--host", "0.0.0.0", "--port", str(port), "--insecure-no-auth"]
    args += ["--allowed-host", "ops.example"]
    proc = spawn(args, env=env, log=log)
    try:
        wait_until(lambda: _answers(port, "localhost"), 30, what="the dashboard")
        assert _answers(port, "ops.example")
        assert not _answers(port, "evil.example")
    finally:
        proc.terminate()
        proc.wait(20)


def _answers(port: int, host: str) -> bool:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Host": host})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as exc:
        assert exc.code == 400 and b"not allowed" in exc.read()
        return False
    except OSError:
        return False


def test_no_credential_when_the_app_module_fails_to_build(tmp_path: Path) -> None:
    module = tmp_path / "badapp.py"
    module.write_text(
        textwrap.dedent(
            f"""
            from durable import Durable
            app = Durable("postgresql://u:{SECRET}@[::1/db?password={SECRET}")
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    proc = subprocess.run(
        [sys.executable, "-m", "durable", "--app", "badapp:app", "list"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 1, proc.stderr
    assert SECRET not in proc.stderr and "Traceback" not in proc.stderr
