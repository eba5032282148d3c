"""Progress lines on stderr: a benchmark's stdout carries its figures only."""

from __future__ import annotations

import sys
import time

__all__ = ["log"]


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
