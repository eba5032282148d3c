"""Secret references in config: `{env: NAME}` or `{file: PATH}`, resolved at load time.

Secrets never live inline in YAML (config is committed and reviewed). A reference is resolved
into a `SecretStr` while the config is validated, and the value is registered with the log
redactor so it cannot leak through logging. A disabled source's references are checked but not
read, so a machine without, say, Stripe credentials can still run the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr, ValidationInfo
from pydantic_core import PydanticCustomError

from smartseg.config.values import CONFIG_DIR, ENV, RESOLVE_SECRETS, context_of
from smartseg.errors import ConfigError
from smartseg.logs import register_secret

__all__ = ["SECRET", "OptionalSecret", "Secret", "UnresolvedSecret", "is_secret_error"]

_MAX_SECRET_FILE_BYTES = 64 * 1024
_SHAPE = "{env: NAME} or {file: PATH}"


class _SecretMarker:
    """Annotation metadata marking a field as secret, so errors never echo its value."""

    def __repr__(self) -> str:
        return "SECRET"


SECRET = _SecretMarker()


class UnresolvedSecret(SecretStr):
    """Stands in for the secret of a disabled source: its reference was checked, not read."""

    def __init__(self, reference: str) -> None:
        super().__init__("")
        self.reference = reference

    def get_secret_value(self) -> str:
        """Refuse: a disabled source's secret was deliberately never read."""
        raise ConfigError(
            f"the secret {self.reference} belongs to a disabled source and was not read; "
            "set enabled: true on that source to use it"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnresolvedSecret) and other.reference == self.reference

    def __hash__(self) -> int:
        return hash(self.reference)


def is_secret_error(error_type: str) -> bool:
    """Whether a validation error came from secret resolution (its message is complete)."""
    return error_type.startswith("secret_")


def _error(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(f"secret_{kind}", message)


def _reference(value: object, field: str) -> tuple[str, str]:
    """Check the `{env: NAME}` / `{file: PATH}` shape; return ("env"|"file", target)."""
    if not isinstance(value, Mapping):
        raise _error(
            "inline", f"secrets are not allowed inline in config; use {_SHAPE} for {field}"
        )
    keys = sorted(str(k) for k in value)
    if keys not in (["env"], ["file"]):
        shown = ", ".join(repr(k) for k in keys) or "none"
        raise _error("shape", f"expected {_SHAPE} for {field}, got keys {shown}")
    kind = keys[0]
    target = value[kind]
    if not isinstance(target, str) or not target.strip():
        raise _error("shape", f"expected {_SHAPE} for {field}, with a non-empty {kind} name")
    return kind, target.strip()


def _from_env(name: str, field: str, env: Mapping[str, str]) -> str:
    value = env.get(name)
    if value is None or not value.strip():
        state = "is not set" if value is None else "is empty"
        raise _error(
            "env_missing",
            f"environment variable {name} {state}. Set it, or point {field} at a file "
            "with {file: PATH}",
        )
    return value.strip()


def _from_file(raw: str, field: str, config_dir: Path) -> str:
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = config_dir / path
    if not path.is_file():
        raise _error(
            "file_missing",
            f"secret file {raw} does not exist (looked for {path}). Create it, or point "
            f"{field} at an environment variable with {{env: NAME}}",
        )
    try:
        with path.open("rb") as handle:
            data = handle.read(_MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise _error(
            "file_unreadable", f"cannot read secret file {path}: {exc.strerror or exc}"
        ) from None
    if len(data) > _MAX_SECRET_FILE_BYTES:
        raise _error("file_too_large", f"secret file {path} is larger than 64 KiB")
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _error("file_not_text", f"secret file {path} is not UTF-8 text") from None
    if not text:
        raise _error("file_empty", f"secret file {path} is empty")
    return text


def resolve_secret(value: object, info: ValidationInfo) -> SecretStr:
    """Turn a secret reference into a SecretStr (registering it for redaction)."""
    if isinstance(value, SecretStr):
        return value  # built in code, already resolved
    field = info.field_name or "this secret"
    kind, target = _reference(value, field)
    context = context_of(info)
    if not context.get(RESOLVE_SECRETS, True):
        return UnresolvedSecret(f"{{{kind}: {target}}}")
    if kind == "env":
        secret = _from_env(target, field, context[ENV])
    else:
        secret = _from_file(target, field, context[CONFIG_DIR])
    register_secret(secret)
    return SecretStr(secret)


def _resolve_optional(value: object, info: ValidationInfo) -> SecretStr | None:
    return None if value is None else resolve_secret(value, info)


Secret = Annotated[SecretStr, BeforeValidator(resolve_secret), SECRET]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_resolve_optional), SECRET]


def secrets_only_when_enabled(data: Any, handler: Any, info: ValidationInfo) -> Any:
    """Validate a source with secret resolution off when the source says `enabled: false`.

    The flag lives in the shared validation context for the duration of this source only.
    """
    context = info.context
    disabled = isinstance(data, Mapping) and data.get("enabled", True) is False
    if not disabled or not isinstance(context, dict) or RESOLVE_SECRETS not in context:
        return handler(data)
    previous = context[RESOLVE_SECRETS]
    context[RESOLVE_SECRETS] = False
    try:
        return handler(data)
    finally:
        context[RESOLVE_SECRETS] = previous
