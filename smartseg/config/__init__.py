"""Configuration: load config/smartseg.yaml into frozen, validated models with secrets resolved."""

from __future__ import annotations

from pathlib import Path

from smartseg.config.loader import DEFAULT_CONFIG_PATH, load_config
from smartseg.config.models import (
    Config,
    HubSpotObjectTarget,
    HubSpotTarget,
    IdentityConfig,
    SalesforceObjectTarget,
    SalesforceTarget,
    Schedule,
    Targets,
    WorkerConfig,
    WriteRateLimit,
)
from smartseg.config.secrets import UnresolvedSecret
from smartseg.config.sources import (
    FileInput,
    HubSpotRateLimit,
    HubSpotSource,
    NpsSource,
    SalesforceAuth,
    SalesforceClientCredentials,
    SalesforcePassword,
    SalesforceSession,
    SalesforceSource,
    Sources,
    SqlQuery,
    StripeSource,
    UsageFile,
    UsageSource,
)
from smartseg.config.values import parse_duration
from smartseg.errors import ConfigError

STARTER_DIR = Path(__file__).parent / "starter"

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "STARTER_DIR",
    "Config",
    "ConfigError",
    "FileInput",
    "HubSpotObjectTarget",
    "HubSpotRateLimit",
    "HubSpotSource",
    "HubSpotTarget",
    "IdentityConfig",
    "NpsSource",
    "SalesforceAuth",
    "SalesforceClientCredentials",
    "SalesforceObjectTarget",
    "SalesforcePassword",
    "SalesforceSession",
    "SalesforceSource",
    "SalesforceTarget",
    "Schedule",
    "Sources",
    "SqlQuery",
    "StripeSource",
    "Targets",
    "UnresolvedSecret",
    "UsageFile",
    "UsageSource",
    "WorkerConfig",
    "WriteRateLimit",
    "load_config",
    "parse_duration",
]
