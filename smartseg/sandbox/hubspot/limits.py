"""HubSpot's request limits: a rolling burst window, a per-second search window and a daily cap.

These are always on, as in production, so a client that does not pace itself meets 429s in every
test, not only when a fault is switched on.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import deque
from collections.abc import Callable

__all__ = ["DailyCounter", "RollingWindow"]


class RollingWindow:
    """At most `limit` admitted requests in any `window` seconds."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()

    def admit(self) -> bool:
        """Count one request if the window has room; False (not counted) if it is full."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if len(self._times) >= self.limit:
                return False
            self._times.append(now)
            return True

    def remaining(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return max(0, self.limit - len(self._times))

    def reset(self) -> None:
        with self._lock:
            self._times.clear()


class DailyCounter:
    """Requests per UTC day against a daily allowance."""

    def __init__(self, limit: int, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._day: dt.date | None = None
        self._used = 0
        self._lock = threading.Lock()

    def _roll(self) -> None:
        today = dt.datetime.fromtimestamp(self._clock(), dt.UTC).date()
        if today != self._day:
            self._day, self._used = today, 0

    def admit(self) -> bool:
        with self._lock:
            self._roll()
            if self._used >= self.limit:
                return False
            self._used += 1
            return True

    def remaining(self) -> int:
        with self._lock:
            self._roll()
            return max(0, self.limit - self._used)

    def reset(self) -> None:
        with self._lock:
            self._used = 0
