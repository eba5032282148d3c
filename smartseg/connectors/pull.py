"""`smartseg pull`: build the configured sources' streams and run them through the loop."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence

from sqlalchemy.engine import Connection, Engine

from smartseg.config import Config
from smartseg.connectors.http import CallCounter
from smartseg.connectors.hubspot import HubSpotClient, hubspot_streams
from smartseg.connectors.identity import link
from smartseg.connectors.retry import DEFAULT_POLICY, RetryPolicy
from smartseg.connectors.runner import Progress, PullResult, pull
from smartseg.connectors.salesforce import SalesforceClient, salesforce_streams
from smartseg.connectors.stream import Stream
from smartseg.connectors.stripe_source import StripeClient, stripe_streams
from smartseg.connectors.usage import activity_streams, nps_streams, usage_streams
from smartseg.errors import ConfigError

__all__ = ["AVAILABLE_SOURCES", "run_pull"]

# Sources with a connector, in pull order: the CRM of record first, so others can link to it.
AVAILABLE_SOURCES = ("salesforce", "hubspot", "stripe", "usage", "nps", "activities")


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
    if "hubspot" in wanted and config.sources.hubspot is not None:
        hubspot = config.sources.hubspot
        hubspot_client = HubSpotClient(hubspot, calls, policy=policy, sleep=sleep)
        # HubSpot is the CRM of record only when no Salesforce is configured.
        primary = "salesforce" not in enabled
        streams.extend(hubspot_streams(hubspot, hubspot_client, clock, primary=primary))
    if "stripe" in wanted and config.sources.stripe is not None:
        stripe_config = config.sources.stripe
        stripe_client = StripeClient(stripe_config, calls, policy=policy, sleep=sleep)
        streams.extend(stripe_streams(stripe_config, stripe_client, clock))
    if "usage" in wanted and config.sources.usage is not None:
        streams.extend(usage_streams(config.sources.usage))
    if "nps" in wanted and config.sources.nps is not None:
        streams.extend(nps_streams(config.sources.nps))
    if "activities" in wanted and config.sources.activities is not None:
        streams.extend(activity_streams(config.sources.activities))
    stripe_source = config.sources.stripe
    seats_from_quantity = bool(
        stripe_source and stripe_source.enabled and stripe_source.seats_from_quantity
    )

    def after(connection: Connection) -> int:
        return link(
            connection,
            match_domains=config.identity.match_domains,
            seats_from_quantity=seats_from_quantity,
        )

    return pull(
        engine, streams, calls=calls, clock=clock, overlap=overlap, full=full, after=after,
        progress=progress,
    )  # fmt: skip
