"""Playbooks from config/playbooks/*.yaml: which segment entry (or exit) becomes which CRM task.

Templates use `{account.name}`, `{contact.email}`, `{segment.name}`, `{segment.rule}` and
`{why}` (the values the rule read, one per line). Only those names exist: a template is checked
when the file loads, so a typo is a located config error, not a broken task in the CRM.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, ValidationError, field_validator

from smartseg.config.loader import validation_problem
from smartseg.config.sources import ConfigModel
from smartseg.config.values import Duration
from smartseg.config.yamlfile import read_yaml
from smartseg.errors import ConfigError
from smartseg.segmenter.check import did_you_mean
from smartseg.segmenter.rules import RuleSet

__all__ = ["Playbook", "TaskTemplate", "load_playbooks", "render"]

TEMPLATE_FIELDS: Mapping[str, tuple[str, ...]] = {
    "account": (
        "name",
        "domain",
        "edition",
        "renewal_date",
        "arr",
        "mrr",
        "csm_name",
        "owner_name",
        "status",
        "seats",
        "industry",
        "region",
    ),
    "contact": ("first_name", "last_name", "email", "title", "role"),
    "segment": ("key", "name", "description", "rule"),
    "why": (),
    "playbook": ("key", "name"),
}


class _Formatter(string.Formatter):
    """str.format limited to `{group.field}` names: no indexing, no attribute walking."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> tuple[Any, str]:
        group, _, name = field_name.partition(".")
        values = kwargs.get(group)
        if group == "why":
            return values, field_name
        if not isinstance(values, Mapping):
            return "", field_name
        value = values.get(name)
        return ("" if value is None else value), field_name


_FORMAT = _Formatter()


def _check_template(text: str) -> str:
    for _, name, spec, conversion in _FORMAT.parse(text):
        if name is None:
            continue
        group, _, field = name.partition(".")
        if group not in TEMPLATE_FIELDS:
            raise ValueError(
                f"unknown placeholder {{{name}}}{did_you_mean(group, list(TEMPLATE_FIELDS))}; "
                "use {account.<field>}, {contact.<field>}, {segment.<field>} or {why}"
            )
        if group != "why" and field not in TEMPLATE_FIELDS[group]:
            hint = did_you_mean(field, list(TEMPLATE_FIELDS[group]))
            raise ValueError(f"unknown placeholder {{{name}}}{hint}")
        if conversion or spec:
            raise ValueError(f"placeholder {{{name}}} takes no format options")
    return text


class TaskTemplate(ConfigModel):
    """The CRM task a playbook creates."""

    subject: str = Field(min_length=1, max_length=255)
    body: str = ""
    due_in: Duration = timedelta(days=3)
    priority: Literal["High", "Normal", "Low"] = "Normal"

    @field_validator("subject", "body")
    @classmethod
    def _placeholders(cls, value: str) -> str:
        return _check_template(value)


class Reentry(ConfigModel):
    """At most `max` tasks per entity in any `per` window, however often it re-enters."""

    max: int = Field(1, ge=1)
    per: Duration


class Playbook(ConfigModel):
    key: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,59}$")]
    name: str = Field(min_length=1)
    segment: str
    trigger: Literal["enter", "exit"] = "enter"
    targets: tuple[Literal["salesforce", "hubspot"], ...] = ("salesforce", "hubspot")
    task: TaskTemplate
    owner: tuple[Literal["csm", "account_owner"], ...] = ("csm", "account_owner")
    fallback_owner: dict[Literal["salesforce", "hubspot"], str] = Field(default_factory=dict)
    reentry: Reentry | None = None
    close_on_exit: bool = False
    exit_window: Duration = Field(
        timedelta(days=7), description="Exit playbooks act on exits this recent."
    )


class PlaybooksFile(ConfigModel):
    playbooks: list[Playbook] = Field(default_factory=list)


def load_playbooks(directory: Path, rules: RuleSet) -> list[Playbook]:
    """Every playbook in `directory`, checked against the segments it names."""
    if not directory.is_dir():
        return []
    known = {r.key: r for r in rules.segments}
    seen: dict[str, str] = {}
    out: list[Playbook] = []
    for path in sorted(p for p in directory.glob("*.y*ml") if p.is_file()):
        document = read_yaml(path, expected="`playbooks:` (a list of playbooks)")
        try:
            parsed = PlaybooksFile.model_validate(document.data)
        except ValidationError as exc:
            raise validation_problem(exc, document, PlaybooksFile) from None
        for index, playbook in enumerate(parsed.playbooks):
            line, _ = document.position(("playbooks", index))
            where = f"playbooks[{index}]"
            if playbook.key in seen:
                raise ConfigError(
                    f"playbook key {playbook.key!r} is used twice (first in {seen[playbook.key]})",
                    file=path,
                    line=line,
                    key=f"{where}.key",
                )
            seen[playbook.key] = f"{path}, line {line}"
            if playbook.segment not in known:
                hint = did_you_mean(playbook.segment, list(known))
                raise ConfigError(
                    f"playbook {playbook.key!r} names unknown segment {playbook.segment!r}{hint}",
                    file=path,
                    line=document.position(("playbooks", index, "segment"))[0],
                    key=f"{where}.segment",
                )
            level = known[playbook.segment].level
            for text in (playbook.task.subject, playbook.task.body):
                if level == "account" and "{contact." in text:
                    raise ConfigError(
                        f"playbook {playbook.key!r} uses {{contact.…}} but segment "
                        f"{playbook.segment!r} is an account segment",
                        file=path,
                        line=line,
                        key=f"{where}.task",
                    )
            out.append(playbook)
    return out


def render(template: str, values: Mapping[str, Any]) -> str:
    """Fill a checked template; missing values render as empty text."""
    return _FORMAT.vformat(template, (), dict(values))
