"""`smartseg demo` runs the whole pipeline against the in-process sandbox and reports it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartseg.worker.cli import main


@pytest.mark.timeout(300)
def test_demo_pulls_evaluates_and_writes_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--accounts", "45", "--dir", str(tmp_path / "demo"), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(summary["records_pulled"]) == {"salesforce", "hubspot", "stripe", "usage", "nps"}
    assert all(n > 0 for n in summary["records_pulled"].values())
    assert len(summary["segments"]) > 100 and summary["segments"]["b01_active_customers"] > 0
    assert summary["tags_written"] > 0 and summary["tasks_created"] > 0
    assert summary["failed"] == 0
    assert summary["api_calls"]["sync"]["salesforce"] > 0
    assert summary["seconds"]["total"] > 0
    # The store stays behind for a look around.
    config = tmp_path / "demo" / "config" / "smartseg.yaml"
    assert main(["--config", str(config), "segments", "list", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["segments"]["b01_active_customers"]["members"] > 0
