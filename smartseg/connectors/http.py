"""HTTP plumbing shared by the connectors: sessions that trust the configured CA and count calls."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path
from typing import Any

import requests

__all__ = ["CallCounter", "PinnedSession"]


class CallCounter:
    """API calls per source, as a run row reports them; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, source: str, n: int = 1) -> None:
        with self._lock:
            self._counts[source] += n

    def get(self, source: str) -> int:
        with self._lock:
            return self._counts[source]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class PinnedSession(requests.Session):
    """A requests session with a default timeout, an explicit CA, and a call counter.

    requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override `Session.verify`, so a CA file
    named in config would silently be ignored on machines that set them; here the session's own
    setting always wins. Every attempt is counted, failed ones included: they cost API quota too.
    """

    def __init__(
        self,
        *,
        source: str,
        counter: CallCounter,
        timeout: float,
        ca_file: Path | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.counter = counter
        self.timeout = timeout
        self.verify = str(ca_file) if ca_file else True
        self.last_retry_after: str | None = None

    def merge_environment_settings(
        self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> Any:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = verify if verify is not None else self.verify
        return settings

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", self.timeout)
        self.counter.add(self.source)
        response = super().request(method, url, *args, **kwargs)
        # SDK exceptions (simple-salesforce) drop the headers; keep the server's wait here.
        self.last_retry_after = response.headers.get("Retry-After")
        return response
