"""Running the real `smartseg` entry point in-process, as a person would from a shell.

`main()` is what the console script calls: it turns errors into one paragraph and an exit code,
so the corpus asserts exactly what a person sees. Output is read back through capsys.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from smartseg.worker.cli import main


@dataclass(frozen=True)
class Outcome:
    """What one command printed and how it exited."""

    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


Cli = Callable[..., Outcome]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """Run `smartseg ARGS...` from tmp_path with no SMARTSEG_* settings but `env`."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("SMARTSEG_") and not name.startswith("SMARTSEG_TEST_"):
            monkeypatch.delenv(name)

    def run(*args: str, env: Mapping[str, str] | None = None) -> Outcome:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return run
