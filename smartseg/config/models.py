"""The top-level `Config` model: sources, identity matching, CRM targets, schedules, worker."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, PrivateAttr, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from smartseg.config.sources import ConfigModel, Sources
from smartseg.config.values import (
    CONFIG_PATH,
    ConfigPath,
    DatabaseUrl,
    Duration,
    TimeZoneName,
    context_of,
)

__all__ = [
    "Config",
    "HubSpotObjectTarget",
    "HubSpotTarget",
    "IdentityConfig",
    "SalesforceObjectTarget",
    "SalesforceTarget",
    "Schedule",
    "Targets",
    "WorkerConfig",
    "WriteRateLimit",
    "reference_problems",
]

SourceName = Literal["salesforce", "hubspot", "stripe"]


class IdentityConfig(ConfigModel):
    """How records from different systems become one customer."""

    account_id_fields: dict[SourceName, str] = Field(
        default_factory=dict, description="Per source, the field holding the shared account id."
    )
    match_domains: bool = Field(True, description="Fall back to matching by web/email domain.")


class WriteRateLimit(ConfigModel):
    """Client-side write pace, kept below the CRM's own limit."""

    per_second: float = Field(20, gt=0)


_PERMISSION_SET_NAME = re.compile(r"^[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)$")


class SalesforceObjectTarget(ConfigModel):
    """Where segment tags and computed fields land on one Salesforce object."""

    object: str = Field(description="sObject API name, e.g. Account.")
    tags_field: str | None = Field(None, description="Multi-select picklist of segment tags.")
    fields: dict[str, str] = Field(
        default_factory=dict, description="Salesforce field -> computed metric (e.g. mrr)."
    )


class SalesforceTarget(ConfigModel):
    """Writing back to Salesforce, over the connection of sources.salesforce."""

    enabled: bool = True
    objects: dict[Literal["account", "contact"], SalesforceObjectTarget] = Field(
        default_factory=dict
    )
    task_key_field: str = Field(
        "Smartseg_Key__c", description="Task field holding smartseg's idempotency key."
    )
    bulk_threshold: int = Field(5000, ge=0, description="Larger changes go through Bulk 2.0.")
    rate_limit: WriteRateLimit = WriteRateLimit()
    permission_set: str | None = Field(
        "smartseg_fields",
        description="API name of the permission set through which `crm setup` grants the "
        "integration user read and edit access to smartseg's fields; null to grant it by hand.",
    )
    grant_read_to: tuple[str, ...] = Field(
        (),
        description="Existing permission sets (API names) given read access to smartseg's "
        "fields, so the people holding them see the fields.",
    )

    @field_validator("permission_set", "grant_read_to")
    @classmethod
    def _api_names(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        # They go into SOQL: letters, digits and single underscores, as Salesforce requires.
        for name in (value,) if isinstance(value, str) else value or ():
            if not _PERMISSION_SET_NAME.match(name):
                raise PydanticCustomError(
                    "api_name",
                    "'{name}' is not a permission set API name (letters, digits and single "
                    "underscores, starting with a letter)",
                    {"name": name},
                )
        return value

    @model_validator(mode="after")
    def _grant_needs_own_set(self) -> SalesforceTarget:
        if self.grant_read_to and self.permission_set is None:
            raise PydanticCustomError(
                "grant_read_to",
                "grant_read_to needs permission_set: with permission_set null smartseg "
                "manages no field-level security; grant read access by hand instead",
            )
        return self


class HubSpotObjectTarget(ConfigModel):
    """Where segment tags and computed properties land on one HubSpot object."""

    object: str = Field(description="CRM object type, e.g. companies.")
    tags_property: str | None = Field(None, description="Enumeration property of segment tags.")
    properties: dict[str, str] = Field(
        default_factory=dict, description="HubSpot property -> computed metric."
    )


class HubSpotTarget(ConfigModel):
    """Writing back to HubSpot, over the connection of sources.hubspot."""

    enabled: bool = True
    objects: dict[Literal["company", "contact"], HubSpotObjectTarget] = Field(default_factory=dict)
    task_key_property: str = Field(
        "smartseg_key", description="Task property holding smartseg's idempotency key."
    )
    rate_limit: WriteRateLimit = WriteRateLimit(per_second=8)


class Targets(ConfigModel):
    """CRMs smartseg writes segment tags, fields and tasks into."""

    salesforce: SalesforceTarget | None = None
    hubspot: HubSpotTarget | None = None


class Schedule(ConfigModel):
    """When a job runs: exactly one of a crontab line or a fixed interval."""

    cron: str | None = Field(None, description='Crontab line, e.g. "0 6 * * 1-5".')
    interval: Duration | None = Field(None, description="Fixed interval, e.g. 15m.")

    @field_validator("cron")
    @classmethod
    def _valid_crontab(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise PydanticCustomError(
                "cron",
                "expected {expected} ({reason})",
                {"expected": 'a crontab line like "0 6 * * 1-5"', "reason": str(exc)},
            ) from None
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Schedule:
        if (self.cron is None) == (self.interval is None):
            raise PydanticCustomError(
                "schedule", "expected {expected}", {"expected": "one of 'cron', 'interval'"}
            )
        if self.interval is not None and self.interval <= timedelta(0):
            raise PydanticCustomError(
                "schedule", "expected {expected}", {"expected": "an interval above zero"}
            )
        return self


class WorkerConfig(ConfigModel):
    """The long-running service: health endpoint, missed runs, job leases."""

    health_host: str = "127.0.0.1"
    health_port: int = Field(9464, ge=0, le=65535, description="/healthz and /metrics port.")
    misfire_grace: Duration = Field(
        timedelta(minutes=5), description="A run this late still runs; later ones are skipped."
    )
    lease_ttl: Duration = Field(
        timedelta(minutes=10), description="How long a replica holds a job before others retry."
    )


class Config(ConfigModel):
    """All of smartseg's settings, as loaded from config/smartseg.yaml (see `load_config`)."""

    database_url: DatabaseUrl = Field(
        "sqlite:///smartseg.db",
        description="SQLAlchemy URL; SMARTSEG_DATABASE_URL wins. SQLite paths are cwd-relative.",
    )
    timezone: TimeZoneName = Field("UTC", description="Zone for dates and schedules.")
    sources: Sources = Sources()
    identity: IdentityConfig = IdentityConfig()
    targets: Targets = Targets()
    segments_dir: ConfigPath = Field(Path("segments"), validate_default=True)
    playbooks_dir: ConfigPath = Field(Path("playbooks"), validate_default=True)
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    worker: WorkerConfig = WorkerConfig()

    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _remember_path(self, info: ValidationInfo) -> Config:
        path = context_of(info).get(CONFIG_PATH)
        self._path = Path(path) if path is not None else None
        return self

    @property
    def path(self) -> Path | None:
        """The file this config was loaded from (None when built in code)."""
        return self._path

    @property
    def config_dir(self) -> Path:
        """The folder relative paths in the config are resolved against."""
        return self._path.absolute().parent if self._path is not None else Path.cwd()

    @property
    def tz(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)


def reference_problems(config: Config) -> list[tuple[tuple[str, ...], str]]:
    """Cross-section checks pydantic cannot place on one key: (key path, message) pairs."""
    problems: list[tuple[tuple[str, ...], str]] = []
    targets: dict[str, SalesforceTarget | HubSpotTarget | None] = {
        "salesforce": config.targets.salesforce,
        "hubspot": config.targets.hubspot,
    }
    for name, target in targets.items():
        source = getattr(config.sources, name)
        if target is not None and target.enabled and (source is None or not source.enabled):
            problems.append(
                (
                    ("targets", name, "enabled"),
                    f"writing to {name} needs sources.{name} configured and enabled (writes "
                    f"use its connection); enable it or set targets.{name}.enabled: false",
                )
            )
    return problems
