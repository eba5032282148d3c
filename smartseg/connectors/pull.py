"""`smartseg pull`: build the configured sources' streams and run them through the loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy.engine import Engine

from smartseg.config import Config
from smartseg.connectors.http import CallCounter
from smartseg.connectors.identity import link
from smartseg.connectors.retry import DEFAULT_POLICY, RetryPolicy
from smartseg.connectors.runner import Progress, PullResult, pull
from smartseg.connectors.salesforce import SalesforceClient, salesforce_streams
from smartseg.connectors.stream import Stream
from smartseg.errors import ConfigError

__all__ = ["AVAILABLE_SOURCES", "run_pull"]

# Sources with a connector, in pull order: the CRM of record first, so others can link to it.
AVAILABLE_SOURCES = ("salesforce",)


def run_pull(
    engine: Engine,
    config: Config,
    *,
    clock: Callable[[], dt.datetime],
    sources: Sequence[str] = (),
    full: bool = False,
    progress: Progress | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    sleep: Callable[[float], None] | None = None,
) -> PullResult:
    """Pull `sources` (default: every enabled source that has a connector) into the store."""
    enabled = config.sources.enabled_names()
    unknown = [s for s in sources if s not in AVAILABLE_SOURCES]
    if unknown:
        raise ConfigError(
            f"no connector for {', '.join(unknown)}; sources that can be pulled: "
            f"{', '.join(AVAILABLE_SOURCES)}",
            key="pull",
        )
    disabled = [s for s in sources if s not in enabled]
    if disabled:
        raise ConfigError(
            f"{', '.join(disabled)} is not configured or not enabled under sources",
            file=config.path,
            key="sources",
        )
    wanted = [s for s in AVAILABLE_SOURCES if s in (sources or enabled)]
    calls = CallCounter()
    streams: list[Stream] = []
    overlap = dt.timedelta(minutes=5)
    if "salesforce" in wanted and config.sources.salesforce is not None:
        salesforce = config.sources.salesforce
        client = SalesforceClient(salesforce, calls, policy=policy, sleep=sleep)
        streams.extend(salesforce_streams(salesforce, client, clock))
        overlap = salesforce.overlap
    return pull(
        engine, streams, calls=calls, clock=clock, overlap=overlap, full=full, after=link,
        progress=progress,
    )  # fmt: skip
