"""Playbook files: the shipped ones load; mistakes are located config errors; templates fill
only the names they are allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartseg.errors import ConfigError
from smartseg.segmenter.rules import load_rules
from smartseg.sync.playbooks import load_playbooks, render

REPO = Path(__file__).parents[2] / "config"


def rules(tmp_path: Path):  # type: ignore[no-untyped-def]
    folder = tmp_path / "segments"
    folder.mkdir(exist_ok=True)
    (folder / "s.yaml").write_text(
        "segments:\n  - {key: gold_renewal, name: Gold renewal, when: \"edition = 'Gold'\"}\n"
    )
    return load_rules(folder)


def playbooks(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "playbooks"
    folder.mkdir(exist_ok=True)
    (folder / "p.yaml").write_text(text)
    return folder


GOOD = """playbooks:
  - key: demo
    name: Demo
    segment: gold_renewal
    task: {subject: "Call {account.name}", body: "Why: {why}", due_in: 2d, priority: High}
"""


def test_shipped_playbooks_cover_the_action_segments() -> None:
    loaded = load_playbooks(REPO / "playbooks", load_rules(REPO / "segments"))
    assert {p.segment[:3] for p in loaded} == {"a01", "a02", "a03"}


def test_a_good_playbook_loads(tmp_path: Path) -> None:
    (loaded,) = load_playbooks(playbooks(tmp_path, GOOD), rules(tmp_path))
    assert loaded.task.due_in.days == 2 and loaded.trigger == "enter"


def test_contact_placeholders_need_a_contact_segment(tmp_path: Path) -> None:
    folder = playbooks(tmp_path, GOOD.replace("{account.name}", "{contact.email}"))
    with pytest.raises(ConfigError, match="account segment"):
        load_playbooks(folder, rules(tmp_path))


def test_render_fills_known_names_and_never_walks_attributes() -> None:
    values = {"account": {"name": "Acme", "arr": None}, "why": "- seats: 3"}
    assert render("{account.name} ({account.arr}) {why}", values) == "Acme () - seats: 3"
    assert render("{account.__class__}", values) == ""
