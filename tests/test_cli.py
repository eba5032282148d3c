"""The CLI's contract: exit codes, one JSON object with --json, errors without tracebacks."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from smartseg import __version__
from smartseg.worker.cli import main


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SMARTSEG_CONFIG", raising=False)
    monkeypatch.delenv("SMARTSEG_DATABASE_URL", raising=False)
    return tmp_path


def test_version_prints_the_package_version(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"smartseg {__version__}"


def test_unknown_command_is_a_usage_error(workdir: Path) -> None:
    assert main(["frobnicate"]) == 2


def test_init_writes_a_config_that_loads(workdir: Path) -> None:
    assert main(["init", "cfg"]) == 0
    assert (workdir / "cfg" / "smartseg.yaml").is_file()
    secret = workdir / "cfg" / "secrets" / "hubspot_token"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert main(["--config", "cfg/smartseg.yaml", "db", "upgrade"]) == 0


def test_init_keeps_existing_files_unless_forced(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["init", "cfg"])
    (workdir / "cfg" / "smartseg.yaml").write_text("# mine\n")
    main(["init", "cfg"])
    assert (workdir / "cfg" / "smartseg.yaml").read_text() == "# mine\n"
    assert "kept" in capsys.readouterr().out
    main(["init", "cfg", "--force"])
    assert (workdir / "cfg" / "smartseg.yaml").read_text() != "# mine\n"


def test_status_json_is_one_object_after_upgrade(
    workdir: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SMARTSEG_DATABASE_URL", db_url)
    assert main(["db", "upgrade", "--json"]) == 0
    capsys.readouterr()
    assert main(["status", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["runs"] == []
    assert payload["up_to_date"] is True


def test_status_before_upgrade_says_what_to_run(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert "smartseg db upgrade" in err
    assert "Traceback" not in err


def test_database_password_never_reaches_the_terminal(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(
        "SMARTSEG_DATABASE_URL", "mysql://admin:Hunter2-very-secret@db.internal/smartseg"
    )
    assert main(["status"]) == 2
    captured = capsys.readouterr()
    assert "Hunter2-very-secret" not in captured.err + captured.out


def test_console_script_runs_as_a_process(workdir: Path) -> None:
    env = {**os.environ, "SMARTSEG_DATABASE_URL": f"sqlite:///{workdir / 'p.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "smartseg", "db", "upgrade", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["revision"]
