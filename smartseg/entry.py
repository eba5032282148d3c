"""The `smartseg` command's entry point: note a SIGTERM that comes while the CLI is importing.

Importing the CLI (typer, SQLAlchemy, pydantic, the three SDKs, APScheduler) takes 2-3 s on a
small machine. A SIGTERM in that time, as when an orchestrator stops a replica that is still
starting, used to meet the default action and end the process with 143, before `smartseg run`
had installed the handler that makes it stop cleanly. So this module, which imports nothing
heavy, installs a handler first that only notes the signal:

- `smartseg run` asks `stop_requested()` once it can act on it, and stops with exit 0 without
  starting anything (the service installs its own handler from then on);
- every other command calls `release()` as soon as it is known: the default action is back, and
  a SIGTERM noted while starting is delivered then, so a one-shot command ends as a SIGTERM
  always ended it, before it did any work.

Run in-process (tests call `smartseg.worker.cli.main`), nothing here is installed and both
functions do nothing.
"""

from __future__ import annotations

import os
import signal
from types import FrameType

__all__ = ["main", "release", "stop_requested"]

_noted: list[int] = []


def _note(signum: int, frame: FrameType | None) -> None:
    _noted.append(signum)


def main() -> int:
    """Console entry point: note SIGTERM first, then import and run the CLI."""
    signal.signal(signal.SIGTERM, _note)
    from smartseg.worker.cli import main as cli_main

    return cli_main()


def stop_requested() -> bool:
    """True when a SIGTERM came since the process started (for `smartseg run`)."""
    return bool(_noted)


def release() -> None:
    """Give SIGTERM its default action back and deliver one that came while starting."""
    if signal.getsignal(signal.SIGTERM) is _note:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if _noted:
            _noted.clear()
            os.kill(os.getpid(), signal.SIGTERM)
