"""Config models for the data sources smartseg pulls from: Salesforce, HubSpot, Stripe, files."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from smartseg.config.secrets import OptionalSecret, Secret, secrets_only_when_enabled
from smartseg.config.values import ConfigPath, Duration, HttpUrl

__all__ = [
    "ActivitySource",
    "ConfigModel",
    "FileInput",
    "HubSpotRateLimit",
    "HubSpotSource",
    "NpsSource",
    "SalesforceAuth",
    "SalesforceClientCredentials",
    "SalesforcePassword",
    "SalesforceSession",
    "SalesforceSource",
    "Source",
    "Sources",
    "SqlQuery",
    "StripeSource",
    "UsageFile",
    "UsageSource",
]


class ConfigModel(BaseModel):
    """Base of every config model: unknown keys are errors and loaded values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(ConfigModel):
    """A data source that can be switched off; a disabled source's secrets are not read."""

    enabled: bool = Field(True, description="Pull from this source; false skips it entirely.")

    @model_validator(mode="wrap")
    @classmethod
    def _secrets_only_when_enabled(cls, data: Any, handler: Any, info: Any) -> Any:
        return secrets_only_when_enabled(data, handler, info)


# --- Salesforce ---------------------------------------------------------------------------


class SalesforceClientCredentials(ConfigModel):
    """OAuth client-credentials flow of a connected app (the usual server-to-server setup)."""

    flow: Literal["client_credentials"]
    client_id: str = Field(description="Connected app consumer key (not secret).")
    client_secret: Secret = Field(description="Connected app consumer secret.")


class SalesforcePassword(ConfigModel):
    """Username-password login; with client_id/client_secret it uses the OAuth password grant."""

    flow: Literal["password"]
    username: str
    password: Secret
    security_token: OptionalSecret = Field(None, description="Needed outside trusted IP ranges.")
    client_id: str | None = Field(None, description="Consumer key for the OAuth password grant.")
    client_secret: OptionalSecret = None


class SalesforceSession(ConfigModel):
    """An existing session id; it cannot be refreshed, so runs fail once it expires."""

    flow: Literal["session"]
    session_id: Secret


SalesforceAuth = Annotated[
    SalesforceClientCredentials | SalesforcePassword | SalesforceSession,
    Field(discriminator="flow"),
]

_API_VERSION_RE = re.compile(r"^\d{2,3}\.0$")


class SalesforceSource(Source):
    """Salesforce REST/Bulk API 2.0 connection and what to pull."""

    instance_url: HttpUrl = Field(description="API host, e.g. https://acme.my.salesforce.com.")
    login_url: HttpUrl = Field(
        "https://login.salesforce.com", description="Host of the OAuth token endpoint."
    )
    api_version: str = Field("59.0", description="REST API version, e.g. 59.0.")
    ca_file: ConfigPath | None = Field(None, description="Extra CA bundle to trust (sandbox).")
    auth: SalesforceAuth
    objects: tuple[str, ...] = (
        "Account",
        "Contact",
        "Opportunity",
        "Case",
        "Task",
        "Event",
        "User",
    )
    bulk_threshold: int = Field(50_000, ge=0, description="First pulls larger use Bulk API 2.0.")
    overlap: Duration = Field(timedelta(minutes=5), description="Re-read window on incremental.")
    field_map: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Canonical object -> {canonical field: SF field}."
    )
    custom_fields: dict[str, tuple[str, ...]] = Field(
        default_factory=dict, description="Extra fields per object, kept in the JSON column."
    )
    timeout: Duration = timedelta(seconds=30)

    @field_validator("api_version", mode="before")
    @classmethod
    def _version_text(cls, value: object) -> object:
        # Unquoted `59.0` in YAML is a float; accept it as the version it obviously is.
        if isinstance(value, int | float) and not isinstance(value, bool):
            return f"{float(value):.1f}"
        return value

    @field_validator("api_version")
    @classmethod
    def _version_shape(cls, value: str) -> str:
        if not _API_VERSION_RE.match(value):
            raise PydanticCustomError(
                "api_version", "expected {expected}", {"expected": 'a version like "59.0"'}
            )
        return value


# --- HubSpot ------------------------------------------------------------------------------


class HubSpotRateLimit(ConfigModel):
    """Client-side limits, set below HubSpot's so smartseg never trips the real ones."""

    burst: int = Field(90, gt=0, description="Requests allowed per window.")
    window: Duration = timedelta(seconds=10)
    search_per_second: float = Field(4, gt=0, description="Search API calls per second.")


class HubSpotSource(Source):
    """HubSpot CRM v3 connection (private app token) and what to pull."""

    base_url: HttpUrl = "https://api.hubapi.com"
    access_token: Secret = Field(description="Private app access token.")
    objects: tuple[str, ...] = (
        "companies",
        "contacts",
        "deals",
        "tickets",
        "calls",
        "meetings",
        "emails",
        "owners",
    )
    link_property: str = Field(
        "salesforce_account_id", description="Company property holding the Salesforce id."
    )
    field_map: dict[str, dict[str, str]] = Field(default_factory=dict)
    custom_fields: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    rate_limit: HubSpotRateLimit = HubSpotRateLimit()
    timeout: Duration = timedelta(seconds=30)


# --- Stripe -------------------------------------------------------------------------------


class StripeSource(Source):
    """Stripe billing: customers, subscriptions, invoices, events."""

    api_base: HttpUrl = "https://api.stripe.com"
    api_key: Secret = Field(description="Secret or restricted (read-only) API key.")
    link_metadata_key: str = Field(
        "sf_account_id", description="Customer metadata key holding the Salesforce account id."
    )
    seats_from_quantity: bool = Field(True, description="Subscription quantity is the seat count.")
    timeout: Duration = timedelta(seconds=30)


# --- Files and SQL ------------------------------------------------------------------------


class FileInput(ConfigModel):
    """A file or glob of files, relative to the config file's folder."""

    path: ConfigPath = Field(description="File or glob pattern, e.g. usage/*.parquet.")
    format: Literal["csv", "parquet"]


class UsageFile(FileInput):
    """Product usage files: raw events or per-day rollups."""

    kind: Literal["daily", "events"]


class SqlQuery(ConfigModel):
    """A warehouse query; its URL usually carries credentials, so it is a secret."""

    url: Secret = Field(description="SQLAlchemy URL of the warehouse.")
    query: str = Field(min_length=1)


class UsageSource(Source):
    """Product usage from files and/or one SQL query."""

    files: tuple[UsageFile, ...] = ()
    sql: SqlQuery | None = None
    account_key: str = Field("workspace_id", description="How usage rows name the account.")


class NpsSource(Source):
    """NPS survey responses from files."""

    files: tuple[FileInput, ...] = ()


class ActivitySource(Source):
    """Activities (emails, calls, meetings, QBRs) from files."""

    files: tuple[FileInput, ...] = ()


class Sources(ConfigModel):
    """Every source smartseg can pull from; a missing section means "not used"."""

    salesforce: SalesforceSource | None = None
    hubspot: HubSpotSource | None = None
    stripe: StripeSource | None = None
    usage: UsageSource = UsageSource()
    nps: NpsSource = NpsSource()
    activities: ActivitySource | None = None

    def enabled_names(self) -> tuple[str, ...]:
        """Names of the configured, enabled sources, in pull order."""
        sources = {name: getattr(self, name) for name in type(self).model_fields}
        return tuple(name for name, src in sources.items() if src is not None and src.enabled)
