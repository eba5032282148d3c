"""Segment rules and named metrics from config/segments/*.yaml, checked and ordered.

A file holds `segments:` (a list of rules) and optionally `metrics:` (named metrics shared by
every file). Loading checks everything: keys, levels, each `when:` against the catalogue,
references between segments (and cycles), so `segments check` and evaluation agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, StringConstraints, ValidationError, field_validator

from smartseg.config.loader import validation_problem
from smartseg.config.sources import ConfigModel
from smartseg.config.yamlfile import read_yaml
from smartseg.errors import ConfigError
from smartseg.segmenter import syntax
from smartseg.segmenter.catalogue import Catalogue
from smartseg.segmenter.check import Checked, Checker, NamedMetric, RuleError, Source

__all__ = ["MetricSpec", "RuleSet", "SegmentRule", "SegmentSpec", "load_rules"]

Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,79}$")]


class MetricSpec(ConfigModel):
    """A named metric: an expression used by name (with optional window parameters)."""

    expr: str = Field(min_length=1)
    params: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*$")], ...] = ()
    description: str = ""


class SegmentSpec(ConfigModel):
    """One segment as RevOps writes it."""

    key: Key
    name: str = Field(min_length=1)
    description: str = ""
    level: Literal["account", "contact"] = "account"
    when: str | None = None
    catalogue: tuple[Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9]{2}$")], ...] = ()
    static: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @field_validator("when")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("the rule is empty; write a condition or leave `when:` out")
        return value


class SegmentsFile(ConfigModel):
    metrics: dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")], MetricSpec | str
    ] = Field(default_factory=dict)
    segments: list[SegmentSpec] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class SegmentRule:
    """A checked segment: its spec, typed rule (None when defined only by hand) and source."""

    spec: SegmentSpec
    checked: Checked | None
    source: Source
    file: Path

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def level(self) -> str:
        return self.spec.level

    @property
    def rule_hash(self) -> str:
        text = " ".join((self.spec.when or "").split())
        body = (
            f"{self.spec.level}|{text}|{self.spec.static}|{self.spec.include}|{self.spec.exclude}"
        )
        return hashlib.sha256(body.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class RuleSet:
    """All segments in evaluation order (a segment after those it refers to) and the metrics."""

    segments: tuple[SegmentRule, ...]
    metrics: Mapping[str, NamedMetric]
    files: tuple[Path, ...]

    def get(self, key: str) -> SegmentRule:
        for rule in self.segments:
            if rule.key == key:
                return rule
        from smartseg.segmenter.check import did_you_mean

        hint = did_you_mean(key, [r.key for r in self.segments])
        raise ConfigError(f"no segment {key!r} in {_dirs(self.files)}{hint}")


def _dirs(files: Sequence[Path]) -> str:
    return ", ".join(sorted({str(f.parent) for f in files})) or "the segments folder"


def _value_marks(path: Path, text: str) -> dict[tuple[str | int, ...], yaml.ScalarNode]:
    """Scalar nodes of `metrics.*.expr`, `metrics.*` and `segments[i].when`, for positions."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    found: dict[tuple[str | int, ...], yaml.ScalarNode] = {}
    if not isinstance(root, yaml.MappingNode):
        return found
    for key_node, value in root.value:
        if key_node.value == "segments" and isinstance(value, yaml.SequenceNode):
            for index, item in enumerate(value.value):
                if isinstance(item, yaml.MappingNode):
                    for k, v in item.value:
                        if k.value == "when" and isinstance(v, yaml.ScalarNode):
                            found[("segments", index, "when")] = v
        if key_node.value == "metrics" and isinstance(value, yaml.MappingNode):
            for k, v in value.value:
                if isinstance(v, yaml.ScalarNode):
                    found[("metrics", k.value)] = v
                elif isinstance(v, yaml.MappingNode):
                    for kk, vv in v.value:
                        if kk.value == "expr" and isinstance(vv, yaml.ScalarNode):
                            found[("metrics", k.value)] = vv
    return found


def _source(
    path: Path, file_text: str, key: str, value: str, node: yaml.ScalarNode | None
) -> Source:
    """Where each character of `value` sits in the file: YAML may fold lines and strip
    indentation, so match the value's non-blank characters against the file's in order."""
    if node is None:
        return Source(path, key, value)
    start = node.start_mark.index + (1 if node.style in ("'", '"') else 0)
    if node.style in ("|", ">"):
        start = file_text.index("\n", node.start_mark.index) + 1
    positions: list[tuple[int, int]] = []
    cursor = start
    line = file_text.count("\n", 0, start) + 1
    col = start - (file_text.rfind("\n", 0, start) + 1) + 1
    for char in value:
        if char.isspace():
            positions.append((line, col))
            continue
        while cursor < len(file_text) and file_text[cursor] != char:
            if file_text[cursor] == "\n":
                line, col = line + 1, 1
            else:
                col += 1
            cursor += 1
        if cursor >= len(file_text):
            return Source(path, key, value, node.start_mark.line + 1, node.start_mark.column + 1)
        positions.append((line, col))
        cursor += 1
        col += 1
    return Source(
        path, key, value, node.start_mark.line + 1, node.start_mark.column + 1, tuple(positions)
    )


def _parse(source: Source) -> syntax.Expr:
    try:
        return syntax.parse(source.text)
    except syntax.RuleSyntaxError as exc:
        raise RuleError(exc.message, source, exc.start, exc.end) from None


def load_rules(directory: Path, catalogue: Catalogue | None = None) -> RuleSet:
    """Read every *.yaml in `directory`, check all rules, and order them for evaluation."""
    catalogue = catalogue or Catalogue()
    if not directory.is_dir():
        raise ConfigError(
            f"the segments folder {directory} does not exist; create it or set segments_dir "
            "in smartseg.yaml (run `smartseg init` for the shipped rules)"
        )
    files = tuple(sorted(p for p in directory.glob("*.y*ml") if p.is_file()))
    specs: list[tuple[SegmentSpec, Path, Source]] = []
    metrics: dict[str, NamedMetric] = {}
    where: dict[str, str] = {}
    for path in files:
        document = read_yaml(path, expected="`segments:` (a list of rules) or `metrics:`")
        try:
            parsed = SegmentsFile.model_validate(document.data)
        except ValidationError as exc:
            raise validation_problem(exc, document, SegmentsFile) from None
        text = path.read_text(encoding="utf-8")
        nodes = _value_marks(path, text)
        for name, raw in parsed.metrics.items():
            spec = MetricSpec(expr=raw) if isinstance(raw, str) else raw
            line, _ = document.position(("metrics", name))
            if name in metrics:
                raise ConfigError(
                    f"metric {name!r} is defined twice (first in {where['m:' + name]}); keep one",
                    file=path, line=line, key=f"metrics.{name}",
                )  # fmt: skip
            where["m:" + name] = f"{path}, line {line}"
            source = _source(path, text, f"metric {name}", spec.expr, nodes.get(("metrics", name)))
            metrics[name] = NamedMetric(name, spec.params, _parse(source), source, spec.description)
        for index, segment in enumerate(parsed.segments):
            line, _ = document.position(("segments", index))
            if segment.key in where:
                raise ConfigError(
                    f"segment key {segment.key!r} is used twice (first in "
                    f"{where[segment.key]}); segment keys must be unique",
                    file=path, line=line, key=f"segments[{index}].key",
                )  # fmt: skip
            if segment.when is None and not segment.include:
                raise ConfigError(
                    f"segment {segment.key!r} has neither a `when:` rule nor an `include:` list; "
                    "add one",
                    file=path, line=line, key=f"segments[{index}]",
                )  # fmt: skip
            where[segment.key] = f"{path}, line {line}"
            source = _source(
                path, text, f"rule {segment.key}", segment.when or "",
                nodes.get(("segments", index, "when")),
            )  # fmt: skip
            specs.append((segment, path, source))
    checker = Checker(catalogue, metrics, {seg.key: seg.level for seg, _, _ in specs})
    for metric in metrics.values():
        _check_metric_alone(checker, metric)
    rules: dict[str, SegmentRule] = {}
    for segment_spec, path, source in specs:
        checked = (
            checker.check(_parse(source), segment_spec.level, source) if segment_spec.when else None
        )
        rules[segment_spec.key] = SegmentRule(segment_spec, checked, source, path)
    return RuleSet(_ordered(rules), metrics, files)


def _check_metric_alone(checker: Checker, metric: NamedMetric) -> None:
    """A metric must make sense at one level at least; report its own problems in its file.

    Metrics with parameters are checked where they are used, once the arguments are known.
    """
    if metric.params:
        return
    errors: list[RuleError] = []
    for level in ("account", "contact"):
        try:
            checker.check_metric(metric, level)
            return
        except RuleError as exc:
            errors.append(exc)
    raise errors[0]


def _ordered(rules: Mapping[str, SegmentRule]) -> tuple[SegmentRule, ...]:
    """File order, except that a segment comes after every segment it names."""
    graph = {
        key: (rule.checked.depends_on if rule.checked else frozenset())
        for key, rule in rules.items()
    }
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle: list[str] = list(exc.args[1])
        first = rules[cycle[0]]
        spot = max(first.source.text.find("in_segment"), 0)
        raise RuleError(
            f"segments refer to each other in a circle: {' -> '.join(reversed(cycle))}; "
            "break the circle by removing one in_segment()",
            first.source,
            spot,
            spot + len("in_segment"),
        ) from None
    done: dict[str, None] = {}
    while len(done) < len(rules):
        for key in rules:
            if key not in done and graph[key] <= done.keys():
                done[key] = None
                break
    return tuple(rules[key] for key in done)
