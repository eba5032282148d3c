"""Error types smartseg reports to a person: each says what went wrong, where, and what to do."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = ["ConfigError", "SmartsegError", "format_key_path"]


class SmartsegError(Exception):
    """Base of every error meant for the operator; the CLI exits with `exit_code`."""

    exit_code: int = 1


class ConfigError(SmartsegError):
    """A configuration problem, located by file, line, column and dotted key path.

    `message` says what is wrong and how to fix it; `expected` names what would have been
    accepted (empty when the problem is not a type mismatch); `more` counts further problems
    found in the same file, so the reader knows the first fix may not be the last.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
        expected: str = "",
        more: int = 0,
    ) -> None:
        self.message = message
        self.file = Path(file) if file is not None else None
        self.line = line
        self.column = column
        self.key = key
        self.expected = expected
        self.more = more
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.location()
        text = self.message.rstrip().rstrip(".")
        if self.more:
            noun = "problem" if self.more == 1 else "problems"
            text += f" ({self.more} more {noun} in this file)"
        if not text.endswith(("?", "!")):
            text += "."
        return f"{where}: {text}" if where else text

    def location(self) -> str:
        """Render where the problem is, e.g. `config/smartseg.yaml, line 12, key sources.x`."""
        parts: list[str] = []
        if self.file is not None:
            parts.append(str(self.file))
        if self.line is not None:
            parts.append(f"line {self.line}")
        # A key path already pinpoints the spot; the column only helps for syntax errors.
        if self.column is not None and self.key is None:
            parts.append(f"column {self.column}")
        if self.key:
            parts.append(f"key {self.key}")
        return ", ".join(parts)


def format_key_path(path: Sequence[str | int]) -> str:
    """Render a key path as RevOps reads it: `sources.usage.files[0].format`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
