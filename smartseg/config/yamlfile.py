"""Read a YAML config file safely, remembering where every key and list item was written.

The positions let any later error, given a key path such as `sources.hubspot.rate_limit.burst`
or a pydantic `loc`, point at a line. Duplicate keys are refused: YAML would silently keep the
last one, and a RevOps edit that lands in the wrong copy would do nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, SequenceNode

from smartseg.errors import ConfigError

__all__ = ["MAX_CONFIG_BYTES", "PositionLoader", "YamlDocument", "read_yaml"]

MAX_CONFIG_BYTES = 5 * 1024 * 1024
_MERGE_TAG = "tag:yaml.org,2002:merge"


class PositionLoader(yaml.SafeLoader):
    """SafeLoader that records the mark of every mapping key and sequence item it builds."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        # Keyed by id() of the built dict/list; the document keeps those objects alive.
        self.key_marks: dict[int, dict[Hashable, yaml.Mark]] = {}
        self.item_marks: dict[int, list[yaml.Mark]] = {}


def _construct_mapping(loader: PositionLoader, node: MappingNode) -> Iterator[dict[Any, Any]]:
    data: dict[Any, Any] = {}
    yield data  # yielding first lets aliases refer back to this mapping
    own_pairs = sum(1 for key, _ in node.value if key.tag != _MERGE_TAG)
    loader.flatten_mapping(node)  # merge keys (<<) arrive first; own keys may override them
    first_own = len(node.value) - own_pairs
    marks: dict[Hashable, yaml.Mark] = {}
    own_marks: dict[Hashable, yaml.Mark] = {}
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise ConstructorError(
                "while reading a mapping",
                node.start_mark,
                "found a key that is not text",
                key_node.start_mark,
            )
        if index >= first_own:
            if key in own_marks:
                raise ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r}: first on line {own_marks[key].line + 1}, again on "
                    f"line {key_node.start_mark.line + 1}; keep one",
                    key_node.start_mark,
                )
            own_marks[key] = key_node.start_mark
        marks[key] = key_node.start_mark
        data[key] = loader.construct_object(value_node, deep=True)
    loader.key_marks[id(data)] = marks


def _construct_sequence(loader: PositionLoader, node: SequenceNode) -> Iterator[list[Any]]:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_object(child, deep=True) for child in node.value)
    loader.item_marks[id(data)] = [child.start_mark for child in node.value]


PositionLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)
PositionLoader.add_constructor("tag:yaml.org,2002:seq", _construct_sequence)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML mapping plus the line/column of each key path in it."""

    path: Path
    data: dict[str, Any]
    _key_marks: dict[int, dict[Hashable, yaml.Mark]] = field(repr=False)
    _item_marks: dict[int, list[yaml.Mark]] = field(repr=False)

    def position(self, key_path: Sequence[str | int]) -> tuple[int | None, int | None]:
        """1-based (line, column) of the deepest part of `key_path` present in the file."""
        found: yaml.Mark | None = None
        current: Any = self.data
        for part in key_path:
            mark: yaml.Mark | None = None
            if isinstance(current, dict) and part in current:
                mark = self._key_marks.get(id(current), {}).get(part)
                current = current[part]
            elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
                marks = self._item_marks.get(id(current), [])
                mark = marks[part] if part < len(marks) else None
                current = current[part]
            else:
                break
            found = mark or found
        if found is None:
            return None, None
        return found.line + 1, found.column + 1


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"file is {size / 1048576:.1f} MiB; a config file may be at most 5 MiB "
                "(is this the right file?)",
                file=path,
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read file: {exc.strerror or exc}", file=path) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"not a UTF-8 text file (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "a config file must be YAML text",
            file=path,
            line=line,
        ) from None


def _open_quote(text: str, before: yaml.Mark) -> yaml.Mark | None:
    """Start of a multi-line quoted value ending where the error surfaced: a missing quote.

    YAML lets quoted text span lines, so an unclosed quote swallows everything up to the next
    quote character and the parser complains there, far from the real mistake.
    """
    suspect: yaml.Mark | None = None
    try:
        for token in yaml.scan(text, Loader=yaml.SafeLoader):
            if token.start_mark.index >= before.index:
                break
            if (
                isinstance(token, yaml.ScalarToken)
                and token.style in ('"', "'")
                and token.start_mark.line != token.end_mark.line
                and token.end_mark.line == before.line
            ):
                suspect = token.start_mark
    except yaml.YAMLError:
        pass  # the scan stops at the same syntax error; what it saw so far is enough
    return suspect


def _syntax_error(exc: yaml.MarkedYAMLError, text: str, path: Path) -> ConfigError:
    """A ConfigError pointing where the YAML problem most likely is, not where it surfaced."""
    if isinstance(exc, ConstructorError) and exc.problem_mark is not None:
        # Duplicate keys are well-formed YAML; only syntax problems are "invalid YAML".
        at = exc.problem_mark
        return ConfigError(exc.problem or "", file=path, line=at.line + 1, column=at.column + 1)
    mark: yaml.Mark | None = exc.problem_mark or exc.context_mark
    problem = exc.problem or "the file could not be parsed"
    if exc.context and exc.context_mark is not None and exc.problem_mark is not None:
        problem = f"{problem} ({exc.context} on line {exc.context_mark.line + 1})"
    quoted = exc.context_mark if exc.context == "while scanning a quoted scalar" else None
    if quoted is None and mark is not None:
        quoted = _open_quote(text, mark)
    if quoted is not None:
        mark = quoted
        problem = "a quoted value starting here is not closed on its line; is a quote missing?"
    return ConfigError(
        f"invalid YAML: {problem}",
        file=path,
        line=mark.line + 1 if mark else None,
        column=mark.column + 1 if mark else None,
    )


_SETTINGS = "a mapping of settings such as `sources:` (run `smartseg init` for a starter config)"


def read_yaml(path: Path, *, expected: str = _SETTINGS) -> YamlDocument:
    """Parse `path` as one YAML mapping, turning every parse problem into a ConfigError.

    `expected` says what the file should hold, for the message about an empty file.
    """
    text = _read_text(path)
    loader: PositionLoader | None = None
    try:
        # The reader checks every character as the loader is built, so that is inside the try.
        loader = PositionLoader(text)
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        raise _syntax_error(exc, text, path) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise ConfigError(
            f"invalid YAML: character U+{exc.character:04X} is not allowed in a YAML file "
            "(binary data, or text saved as UTF-16?)",
            file=path,
            line=line,
        ) from None
    except RecursionError:
        # PyYAML parses nested collections recursively; thousands of `[` exhaust the stack.
        raise ConfigError(
            "invalid YAML: lists or mappings are nested too deeply to read", file=path
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        raise ConfigError(f"the file is empty; expected {expected}", file=path)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"the value {str(data)[:40]!r}"
        raise ConfigError(
            f"expected a mapping of settings at the top level (key: value lines), got {kind}",
            file=path,
            line=1,
        )
    return YamlDocument(path, data, loader.key_marks, loader.item_marks)
