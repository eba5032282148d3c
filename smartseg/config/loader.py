"""Load config/smartseg.yaml into a `Config`, or fail with one ConfigError a person can act on.

Pydantic reports problems by `loc` (a path through the models, including union tags); this
module maps each back to the YAML key path and its line, says what was expected, shows the bad
value (never a secret's), and reports the earliest problem in the file plus how many more exist.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from smartseg.config.models import Config, reference_problems
from smartseg.config.secrets import SECRET, is_secret_error
from smartseg.config.values import DatabaseUrl, validation_context
from smartseg.config.yamlfile import YamlDocument, read_yaml
from smartseg.errors import ConfigError, format_key_path
from smartseg.logs import redact, register_secret

__all__ = ["DEFAULT_CONFIG_PATH", "load_config", "validation_problem"]

DEFAULT_CONFIG_PATH = Path("config/smartseg.yaml")
_MAX_SHOWN_KEYS = 12
_MAX_SHOWN_CHARS = 40

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a mapping (key: value lines)",
    "model_attributes_type": "a mapping (key: value lines)",
    "path_type": "a file path",
    "date_type": "a date like 2025-01-31",
    "date_parsing": "a date like 2025-01-31",
}


def load_config(path: Path | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate the config; secrets are resolved from `env` (default: os.environ).

    Without `path`, SMARTSEG_CONFIG names the file, else ./config/smartseg.yaml.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    if path is None:
        path = Path(environ["SMARTSEG_CONFIG"]) if environ.get("SMARTSEG_CONFIG") else None
    path = path or DEFAULT_CONFIG_PATH
    if not path.is_file():
        state = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise ConfigError(
            f"config file {state}. Run `smartseg init` to create a starter config, or point "
            "SMARTSEG_CONFIG at your smartseg.yaml",
            file=path,
        )
    document = read_yaml(path)
    try:
        config = Config.model_validate(document.data, context=validation_context(path, environ))
    except ValidationError as exc:
        raise validation_problem(exc, document) from None
    problems = reference_problems(config)
    if problems:
        key_path, message = problems[0]
        line, _ = document.position(key_path)
        raise ConfigError(
            message, file=path, line=line, key=format_key_path(key_path), more=len(problems) - 1
        )
    override = environ.get("SMARTSEG_DATABASE_URL")
    if override:
        config = config.model_copy(update={"database_url": _env_database_url(override)})
    return config


def _env_database_url(url: str) -> str:
    from pydantic import TypeAdapter
    from sqlalchemy.engine import make_url

    try:
        TypeAdapter(DatabaseUrl).validate_python(url)
    except ValidationError:
        raise ConfigError(
            "environment variable SMARTSEG_DATABASE_URL is not a SQLite or PostgreSQL URL; "
            "expected something like sqlite:///smartseg.db or postgresql+psycopg://user@host/db",
            expected="a database URL",
        ) from None
    password = make_url(url).password
    if password:
        register_secret(str(password))
    return url


@dataclass(frozen=True)
class _Place:
    """Where a pydantic `loc` lands: the YAML key path, its model, and what type lives there."""

    path: tuple[str | int, ...]
    owner: type[BaseModel] | None
    annotation: Any
    secret: bool


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated[...] and Optional[...] down to the type that does the work."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, UnionType):
            members = [a for a in get_args(annotation) if a is not NoneType]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _union_models(annotation: Any) -> list[type[BaseModel]]:
    if get_origin(annotation) not in (Union, UnionType):
        return []
    return [a for a in get_args(annotation) if _is_model(a)]


def _tags(model: type[BaseModel]) -> set[object]:
    """Literal values a model's fields accept: how a discriminated union picks it."""
    tags: set[object] = set()
    for field in model.model_fields.values():
        if get_origin(field.annotation) is Literal:
            tags.update(get_args(field.annotation))
    return tags


def _is_secret_field(field: FieldInfo) -> bool:
    return any(meta is SECRET for meta in field.metadata)


def _place(loc: Sequence[str | int], root: type[BaseModel] = Config) -> _Place:
    path: list[str | int] = []
    annotation: Any = root
    owner: type[BaseModel] | None = None
    secret = False
    for item in loc:
        annotation = _unwrap(annotation)
        if _is_model(annotation):
            owner = annotation
            field = annotation.model_fields.get(item) if isinstance(item, str) else None
            path.append(item)
            annotation = field.annotation if field else None
            secret = secret or (field is not None and _is_secret_field(field))
            continue
        chosen = [m for m in _union_models(annotation) if item in _tags(m)]
        if chosen:  # a discriminated union's tag is in `loc` but not in the YAML
            annotation = chosen[0]
            continue
        if item == "[key]":  # pydantic's marker for an error in a dict key
            continue
        path.append(item)
        args = get_args(annotation)
        origin = get_origin(annotation)
        if origin in (list, tuple) and args:
            annotation = args[0]
        elif origin is dict and len(args) == 2:
            annotation = args[1]
        else:
            annotation = None
    return _Place(tuple(path), owner, _unwrap(annotation), secret)


def _show(value: object) -> str:
    """A short, YAML-flavoured rendering of a bad value."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        # A secret pasted into the wrong key must not be echoed back either.
        value = redact(value)
        if len(value) > _MAX_SHOWN_CHARS:
            value = value[: _MAX_SHOWN_CHARS - 3] + "..."
        return repr(value)
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _options(text: str) -> str:
    """Pydantic says "'a', 'b' or 'c'"; a list reads better in one style."""
    return text.replace(" or ", ", ")


def _unknown_key(key: object, owner: type[BaseModel] | None) -> str:
    allowed = sorted(owner.model_fields) if owner else []
    message = f"unknown key {str(key)!r}"
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    message += f"; did you mean {close[0]!r}?" if close else "."
    if allowed and len(allowed) <= _MAX_SHOWN_KEYS:
        message += f" Allowed keys: {', '.join(allowed)}"
    return message


def _describe(error: Mapping[str, Any], place: _Place) -> tuple[str, str]:
    """(message, expected) for one pydantic error."""
    kind: str = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    if is_secret_error(kind):
        return error["msg"], ""
    if kind == "extra_forbidden":
        return _unknown_key(place.path[-1] if place.path else "?", place.owner), ""
    if kind == "missing":
        return "required key is missing", ""
    if kind == "union_tag_not_found":
        tags = sorted(str(t) for m in _union_models(place.annotation) for t in _tags(m))
        expected = "one of " + ", ".join(repr(t) for t in tags)
        return f"missing key {ctx.get('discriminator', 'flow')}; expected {expected}", expected

    if "expected" in ctx and kind == "literal_error":
        expected = f"one of {_options(str(ctx['expected']))}"
    elif kind == "union_tag_invalid":
        expected = f"one of {_options(str(ctx['expected_tags']))}"
        value = ctx.get("tag")
    elif "expected" in ctx:
        expected = str(ctx["expected"])
    elif kind in _EXPECTED:
        expected = _EXPECTED[kind]
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = {
            "greater_than": f"above {ctx.get('gt')}",
            "greater_than_equal": f"of at least {ctx.get('ge')}",
            "less_than": f"below {ctx.get('lt')}",
            "less_than_equal": f"of at most {ctx.get('le')}",
        }[kind]
        expected = f"a number {bound}"
    elif kind == "string_too_short":
        expected = "a non-empty value"
    elif kind == "string_pattern_mismatch":
        expected = _pattern_phrase(str(ctx.get("pattern", "")))
    else:
        message = str(error["msg"]).removeprefix("Value error, ")
        return message[:1].lower() + message[1:], ""

    message = f"expected {expected}"
    if not place.secret:
        message += f", got {_show(value)}"
    if ctx.get("reason"):
        message += f" ({ctx['reason']})"
    return message, expected


_NAME_PATTERN = re.compile(r"^\^\[a-z\]\[a-z0-9_\](?:\*|\{0,(\d+)\})\$$")


def _pattern_phrase(pattern: str) -> str:
    """What a regex-constrained value looks like, in words for the key patterns config uses."""
    found = _NAME_PATTERN.match(pattern)
    if found is None:
        return f"text matching {pattern}"
    longest = f" (at most {int(found.group(1)) + 1} characters)" if found.group(1) else ""
    return f"a name of lower-case letters, digits and _, starting with a letter{longest}"


@dataclass(frozen=True)
class _Located:
    error: Mapping[str, Any]
    place: _Place
    key_path: tuple[str | int, ...]
    line: int | None
    column: int | None

    def order(self) -> tuple[bool, int]:
        # Wrong values before missing keys (those sit on their parent's line), then top-down.
        return self.error["type"] == "missing", self.line or 0


def _locate(
    error: Mapping[str, Any], document: YamlDocument, root: type[BaseModel] = Config
) -> _Located:
    place = _place(error["loc"], root)
    key_path = place.path
    if error["type"] == "union_tag_invalid":  # the bad value is the discriminator key's
        discriminator = str((error.get("ctx") or {}).get("discriminator", "")).strip("'")
        key_path = (*key_path, discriminator)
    line, column = document.position(key_path)
    return _Located(error, place, key_path, line, column)


def validation_problem(
    exc: ValidationError, document: YamlDocument, root: type[BaseModel] = Config
) -> ConfigError:
    """The first problem in the file (validated as `root`), as a ConfigError counting the rest."""
    errors = exc.errors(include_url=False)
    first = min((_locate(error, document, root) for error in errors), key=_Located.order)
    message, expected = _describe(first.error, first.place)
    return ConfigError(
        message,
        file=document.path,
        line=first.line,
        column=first.column,
        key=format_key_path(first.key_path) or None,
        expected=expected,
        more=len(errors) - 1,
    )
