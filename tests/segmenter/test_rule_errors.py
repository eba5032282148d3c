"""Every rule problem names the file, the rule, the line and column, and shows a caret; the CLI
reports it and exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from smartseg.segmenter.check import RuleError
from smartseg.segmenter.rules import load_rules
from smartseg.worker.cli import main


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    folder = tmp_path / "segments"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text)
    return folder


def rule_error(tmp_path: Path, when: str, level: str = "account", extra: str = "") -> RuleError:
    folder = write(
        tmp_path,
        f"{extra}segments:\n  - key: demo\n    name: Demo\n    level: {level}\n    when: {when}\n",
    )
    with pytest.raises(RuleError) as caught:
        load_rules(folder)
    return caught.value


def test_unknown_field_suggests_the_close_one(tmp_path: Path) -> None:
    error = rule_error(tmp_path, "edtion = 'Gold'")
    assert "unknown field 'edtion'" in error.message
    assert "did you mean 'edition'" in error.message
    assert (error.line, error.column) == (5, 11)
    text = str(error)
    assert "rules.yaml, line 5, column 11, rule demo" in text
    assert text.endswith("    edtion = 'Gold'\n    ^^^^^^")


def test_unknown_function_and_metric_suggest_names(tmp_path: Path) -> None:
    error = rule_error(tmp_path, "activ_days(30d) > 3")
    assert "unknown function 'activ_days'; did you mean 'active_days'" in error.message
    error = rule_error(
        tmp_path, "utilisation > 1", extra="metrics:\n  utilization: active_users(30d) / seats\n"
    )
    assert "did you mean 'utilization'" in error.message


def test_account_field_in_a_contact_rule_says_how_to_reach_it(tmp_path: Path) -> None:
    error = rule_error(tmp_path, "renewal_date < today", level="contact")
    assert "write account.renewal_date" in error.message


def test_type_mismatch_names_both_types(tmp_path: Path) -> None:
    error = rule_error(tmp_path, "seats > 'ten'")
    assert "cannot compare number with text" in error.message
    assert error.excerpt().splitlines()[1].strip() == "^" * len("seats > 'ten'")


def test_duration_without_unit_is_refused_with_a_hint(tmp_path: Path) -> None:
    error = rule_error(tmp_path, "tenure > 365")
    assert "cannot compare duration with number" in error.message
    assert "365d" in error.message


def test_unknown_duration_unit_is_named(tmp_path: Path) -> None:
    error = rule_error(tmp_path, "active_days(30days) > 3")
    assert "30days is not a duration" in error.message
    assert "30d, 2w, 3mo or 1y" in error.message
    assert error.excerpt().endswith("^" * len("30days"))


def test_bad_window_is_refused(tmp_path: Path) -> None:
    error = rule_error(tmp_path, "active_days(30) > 3")
    assert "expected a time window such as 30d" in error.message
    assert error.column == 23


def test_syntax_error_points_at_the_token(tmp_path: Path) -> None:
    error = rule_error(tmp_path, "seats > 3 seats < 5")
    assert "expected an operator, 'and' or 'or' but found 'seats'" in error.message
    assert error.column == 21


def test_null_comparison_suggests_is_null(tmp_path: Path) -> None:
    error = rule_error(tmp_path, "edition = null")
    assert "is null" in error.message


def test_metric_that_refers_to_itself_is_named(tmp_path: Path) -> None:
    error = rule_error(tmp_path, "m1 > 1", extra="metrics:\n  m1: m2 + 1\n  m2: m1 * 2\n")
    assert "refers to itself" in error.message
    assert "m1 -> m2 -> m1" in error.message


def test_folded_multiline_rule_maps_to_the_right_line(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        "segments:\n"
        "  - key: demo\n"
        "    name: Demo\n"
        "    when: edition = 'Gold'\n"
        "          and days_until(renewal_date) <= 180\n"
        "          and seets > 2\n",
    )
    with pytest.raises(RuleError) as caught:
        load_rules(folder)
    assert (caught.value.line, caught.value.column) == (6, 15)


def test_block_scalar_rule_maps_to_the_right_line(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        "segments:\n  - key: demo\n    name: Demo\n    when: |\n"
        "      edition = 'Gold'\n      and seets > 2\n",
    )
    with pytest.raises(RuleError) as caught:
        load_rules(folder)
    assert (caught.value.line, caught.value.column) == (6, 11)


def test_segments_check_passes_on_valid_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tmp_path, "segments:\n  - {key: a, name: A, when: \"edition = 'Gold'\"}\n")
    config = tmp_path / "smartseg.yaml"
    config.write_text("database_url: sqlite:///x.db\n")
    assert main(["--config", str(config), "segments", "check"]) == 0
    assert "1 segments and 0 metrics in 1 files are valid" in capsys.readouterr().out
