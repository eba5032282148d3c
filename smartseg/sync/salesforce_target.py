"""Salesforce as a sync target: tags, computed fields and follow-up tasks written back to the org.

Every call goes through the connector's `SalesforceClient`, so it is counted, retried by the
error table (429, 5xx, dropped connections) and re-signed on an expired session, and through a
client-side pace of `rate_limit.per_second`. The call counts are the point of the design:

- record updates: sObject Collections, ⌈n/200⌉ calls with a result per record; above
  `bulk_threshold` records a Bulk API 2.0 ingest job (create, upload, close, poll, and one read
  of the failed rows when some failed), one job per 100 MB of CSV;
- tags read back: SOQL on `Id IN (...)`, 200 ids per call;
- picklist values: one Tooling query for the field's metadata, one update adding every missing
  value (none when nothing is missing);
- tasks: Collections upsert on smartseg's external-id key, 200 per call, so a key written twice
  is still one task;
- field-level security (`crm setup`): three queries, and creates only for what is missing
  (`salesforce_access.py`), since a field created through the Tooling API is hidden from
  everyone, the integration user included, until a permission set grants it.

A request that fails for good (after the retries) fails the outcomes of its own records and the
rest of the sync goes on; a configuration problem (unknown field, missing permission) raises,
because every later record would fail the same way and a person has to fix it.
"""

from __future__ import annotations

import copy
import csv
import io
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any, Literal, TypeVar

from simple_salesforce import exceptions as sf_errors
from simple_salesforce.api import Salesforce
from simple_salesforce.bulk2 import Operation, SFBulk2Handler, _Bulk2Client

from smartseg.config import SalesforceSource
from smartseg.config import SalesforceTarget as SalesforceTargetConfig
from smartseg.connectors.errors import Action, ConnectorError, Decision, Failure
from smartseg.connectors.http import CallCounter
from smartseg.connectors.retry import DEFAULT_POLICY, RetryPolicy
from smartseg.connectors.salesforce import SalesforceClient
from smartseg.errors import ConfigError
from smartseg.sync.salesforce_access import OwnedField, grant_access, refused
from smartseg.sync.targets import (
    FieldSpec,
    Level,
    RecordWrite,
    TaskOutcome,
    TaskWrite,
    WriteOutcome,
)

__all__ = ["RateLimiter", "SalesforceTarget", "is_salesforce_id"]

T = TypeVar("T")
log = logging.getLogger("smartseg.sync")

SOURCE = "salesforce"
COLLECTION_SIZE = 200  # records per sObject Collections call, the API's maximum
IDS_PER_QUERY = 200  # ~4 KB of ids per SOQL URL, far below the 16 KB request-line limit
MAX_BULK_JOB_BYTES = 100 * 1024 * 1024  # simple-salesforce refuses larger uploads per job
BULK_NULL = "#N/A"  # a Bulk CSV cell that sets the field to null (an empty cell leaves it alone)
JOB_WAIT_SECONDS = 2 * 60 * 60.0
_POLL_FIRST, _POLL_CAP = 0.5, 10.0
MAX_PICKLIST_VALUES = 1000  # Salesforce's cap on a custom picklist's values, active or not
TAGS_VISIBLE_LINES = 4
TASK_KEY_LENGTH = 80
SUBJECT_LENGTH = 255
DESCRIPTION_LENGTH = 32_000
# Salesforce requires a value set to create a picklist; smartseg adds its tags later
# (ensure_tag_values), so the field starts with this one inactive value, never offered to users.
PLACEHOLDER_VALUE = "smartseg-placeholder"
_DESCRIPTION = "Written by smartseg on every sync; edits made here are overwritten."

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_ID = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_CHECKSUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
# Per-record errors that every record would get: the config is wrong, not the record.
_CONFIG_CODES = frozenset({"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_TYPE"})
_TERMINAL = ("JobComplete", "Failed", "Aborted")

# Salesforce field types each smartseg field kind may be written into.
_COMPATIBLE = {
    "tags": frozenset({"multipicklist"}),
    "text": frozenset({"string", "textarea", "picklist", "email", "url", "phone"}),
    "number": frozenset({"double", "currency", "percent", "int", "long"}),
    "date": frozenset({"date"}),
}
_METADATA: dict[str, dict[str, Any]] = {
    "text": {"type": "Text", "length": 255},
    "number": {"type": "Number", "precision": 18, "scale": 2},
    "date": {"type": "Date"},
}
# Tooling API Metadata types each smartseg field kind may be written into (see _COMPATIBLE).
_METADATA_KINDS = {
    "tags": frozenset({"MultiselectPicklist"}),
    "text": frozenset({"Text", "TextArea", "LongTextArea", "Picklist", "Email", "Url", "Phone"}),
    "number": frozenset({"Number", "Currency", "Percent"}),
    "date": frozenset({"Date"}),
}
_MANUAL_FLS = (
    "targets.salesforce.permission_set is null, so smartseg leaves field-level security to you: "
    "grant the integration user read and edit access to the field (Setup > Object Manager > "
    "the field > Set Field-Level Security), or set permission_set to let `smartseg crm setup` "
    "grant it"
)
_SHAPES = {
    "tags": "MultiselectPicklist",
    "text": "Text(255)",
    "number": "Number(18,2)",
    "date": "Date",
}

Value = str | float | None


def is_salesforce_id(value: str) -> bool:
    """True for a well-formed 15- or 18-character record id (an 18-character one with the right
    checksum), the only record text smartseg ever puts into SOQL."""
    if not _ID.match(value):
        return False
    return len(value) == 15 or _to_18(value[:15]) == value


def _to_18(id15: str) -> str:
    """The case-safe 18-character form: one checksum character per 5 characters' upper-case bits."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, c in enumerate(id15[start : start + 5]) if c.isupper())
        suffix += _CHECKSUM[bits]
    return id15 + suffix


class RateLimiter:
    """At most `per_second` calls a second: each call starts no sooner than 1/per_second after
    the one before. Slots are reserved under a lock and slept outside it, so threads sharing
    one limiter queue up instead of bursting."""

    def __init__(
        self,
        per_second: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if per_second <= 0:
            raise ValueError(f"per_second must be above zero, not {per_second}")
        self.interval = 1.0 / per_second
        self._clock = clock
        self._sleep = sleep
        self._next = -math.inf
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Block until the next call may start."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


class SalesforceTarget:
    """The `CrmTarget` for Salesforce, over the connection of `sources.salesforce`."""

    name = "salesforce"

    def __init__(
        self,
        source: SalesforceSource,
        target: SalesforceTargetConfig,
        calls: CallCounter,
        *,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.target = target
        self._counter = calls
        self._client = SalesforceClient(source, calls, policy=policy, sleep=sleep)
        self._sleep = sleep or time.sleep
        self._limiter = RateLimiter(target.rate_limit.per_second, clock=clock, sleep=self._sleep)

    # CrmTarget ----------------------------------------------------------------------------------

    def calls(self) -> int:
        """Salesforce calls counted so far, sign-ins and retried attempts included."""
        return self._counter.get(SOURCE)

    def ensure_fields(
        self, level: Level, fields: Sequence[FieldSpec], *, create: bool
    ) -> list[str]:
        """Check the fields on the level's object with one describe; with `create`, add the
        missing ones through the Tooling API (one call each), else raise a ConfigError."""
        sobject = self._object(level)
        for spec in fields:
            _check_name(spec.name, f"targets.salesforce.objects.{level}")
        existing = self._describe_fields(sobject)
        lines: list[str] = []
        missing: list[FieldSpec] = []
        for spec in fields:
            found = existing.get(spec.name.lower())
            if found is None:
                missing.append(spec)
                continue
            if str(found.get("type")) not in _COMPATIBLE[spec.kind]:
                raise ConfigError(
                    f"Salesforce field {sobject}.{spec.name} is a {found.get('type')} field, "
                    f"but smartseg writes {spec.kind} into it; use a {_SHAPES[spec.kind]} field",
                    key=f"targets.salesforce.objects.{level}",
                )
            lines.append(f"{sobject}.{spec.name}: exists")
        if missing and not create:
            names = ", ".join(f"{sobject}.{spec.name}" for spec in missing)
            raise ConfigError(
                f"Salesforce is missing smartseg's fields {names}; run `smartseg crm setup` "
                "to create them",
                key=f"targets.salesforce.objects.{level}",
            )
        for spec in missing:
            if not spec.name.endswith("__c"):
                raise ConfigError(
                    f"Salesforce has no field {sobject}.{spec.name}, and only custom fields "
                    "(ending in __c) can be created",
                    key=f"targets.salesforce.objects.{level}",
                )
            if self._create_field(sobject, spec.name, _field_metadata(spec)):
                lines.append(f"{sobject}.{spec.name}: created ({_SHAPES[spec.kind]})")
                continue
            # It exists but is hidden from the integration user: check it, ensure_access grants it.
            metadata = self._field_metadata(sobject, spec.name, key="targets.salesforce")[1]
            if metadata.get("type") not in _METADATA_KINDS[spec.kind]:
                raise ConfigError(
                    f"Salesforce field {sobject}.{spec.name} is a {metadata.get('type')} field, "
                    f"but smartseg writes {spec.kind} into it; use a {_SHAPES[spec.kind]} field",
                    key=f"targets.salesforce.objects.{level}",
                )
            lines.append(f"{sobject}.{spec.name}: exists, not yet visible to the integration user")
        return lines

    def ensure_task_key(self, *, create: bool) -> list[str]:
        """Check Task has the key field as a unique external id (upserts need one); create it
        as Text(80) External ID Unique when missing and `create`, else raise a ConfigError."""
        field = self.target.task_key_field
        _check_name(field, "targets.salesforce.task_key_field")
        found = self._describe_fields("Task").get(field.lower())
        if found is not None:
            if not found.get("externalId"):
                raise ConfigError(
                    f"Salesforce field Task.{field} exists but is not an External ID, so tasks "
                    "cannot be upserted by it; mark it External ID and Unique",
                    key="targets.salesforce.task_key_field",
                )
            return [f"Task.{field}: exists"]
        if not create:
            raise ConfigError(
                f"Salesforce is missing smartseg's task key field Task.{field}; run "
                "`smartseg crm setup` to create it",
                key="targets.salesforce.task_key_field",
            )
        metadata = {
            "label": "Smartseg Key",
            "type": "Text",
            "length": TASK_KEY_LENGTH,
            "externalId": True,
            "unique": True,
            "caseSensitive": False,
            "description": "smartseg's idempotency key: one task per key.",
        }
        # Task and Event custom fields are defined once, on Activity.
        if self._create_field("Activity", field, metadata):
            return [f"Task.{field}: created (Text({TASK_KEY_LENGTH}) External ID Unique)"]
        hidden = self._field_metadata("Activity", field, key="targets.salesforce.task_key_field")
        if not hidden[1].get("externalId"):
            raise ConfigError(
                f"Salesforce field Task.{field} exists but is not an External ID, so tasks "
                "cannot be upserted by it; mark it External ID and Unique",
                key="targets.salesforce.task_key_field",
            )
        return [f"Task.{field}: exists, not yet visible to the integration user"]

    def ensure_access(self) -> list[str]:
        """Grant field-level security on every field smartseg writes (tags, computed fields, the
        task key) through `targets.salesforce.permission_set`, and read access to the sets of
        `grant_read_to`; nothing at all when permission_set is null (the org manages FLS)."""
        name = self.target.permission_set
        if name is None:
            return []
        fields = self._owned_fields()
        try:
            return grant_access(_SetupCalls(self, fields), name, self.target.grant_read_to, fields)
        except ConnectorError as exc:
            code, _, message = exc.decision.message.partition(": ")
            if "INSUFFICIENT_ACCESS" in exc.decision.message:
                raise refused(code, message, fields) from exc
            raise

    def ensure_tag_values(self, level: Level, field: str, values: Iterable[str]) -> list[str]:
        """Make every value a selectable option of the tags picklist: one Tooling query for the
        field's metadata, then one update adding the missing values and reactivating inactive
        ones (no update when none is missing). Returns the values added or reactivated."""
        wanted = _tag_values(values)
        if not wanted:
            return []
        sobject = self._object(level)
        _check_name(field, f"targets.salesforce.objects.{level}.tags_field")
        tooling_id, metadata = self._field_metadata(sobject, field)
        value_set = metadata.get("valueSet") or {}
        definition = value_set.get("valueSetDefinition") or {}
        options: list[dict[str, Any]] = list(definition.get("value") or [])
        if metadata.get("type") not in ("MultiselectPicklist", "Picklist"):
            raise ConfigError(
                f"Salesforce field {sobject}.{field} is not a picklist ({metadata.get('type')}); "
                "segment tags need a multi-select picklist",
                key=f"targets.salesforce.objects.{level}.tags_field",
            )
        by_name = {str(o.get("fullName", "")).casefold(): o for o in options}
        added = [v for v in wanted if v.casefold() not in by_name]
        revived = [
            v for v in wanted if by_name.get(v.casefold(), {}).get("isActive", True) is False
        ]
        if not added and not revived:
            return []
        if len(options) + len(added) > MAX_PICKLIST_VALUES:
            raise ConfigError(
                f"Salesforce field {sobject}.{field} would have {len(options) + len(added)} "
                f"values; Salesforce allows {MAX_PICKLIST_VALUES}. Delete unused values in Setup",
                key=f"targets.salesforce.objects.{level}.tags_field",
            )
        updated = copy.deepcopy(metadata)
        revive = {v.casefold() for v in revived}
        new_options: list[dict[str, Any]] = [dict(o) for o in options]
        for option in new_options:
            if str(option.get("fullName", "")).casefold() in revive:
                option["isActive"] = True
        new_options += [
            {
                "fullName": v,
                "label": v,
                "default": False,
                "isActive": True,
                "color": None,
                "description": None,
            }
            for v in added
        ]
        updated["valueSet"] = {
            **value_set,
            "valueSetDefinition": {**definition, "value": new_options},
        }
        self._restful(
            f"tooling/sobjects/CustomField/{tooling_id}",
            "CustomField",
            method="PATCH",
            json={"FullName": f"{sobject}.{field}", "Metadata": updated},
        )
        log.info("salesforce %s.%s: added %d picklist values", sobject, field, len(added + revived))
        return added + revived

    def read_tags(self, level: Level, field: str, record_ids: Sequence[str]) -> dict[str, str]:
        """The tags field of each record, 200 ids per SOQL query, keyed by the id as given.
        Ids that are not Salesforce ids are never sent (and logged); records that do not
        exist or are deleted are absent from the result."""
        sobject = self._object(level)
        _check_name(field, f"targets.salesforce.objects.{level}.tags_field")
        wanted: dict[str, list[str]] = {}  # 18-character id -> ids as the caller gave them
        for record_id in record_ids:
            if not is_salesforce_id(record_id):
                log.warning("salesforce %s: %r is not a record id; not read", sobject, record_id)
                continue
            wanted.setdefault(_to_18(record_id[:15]), []).append(record_id)
        found: dict[str, str] = {}
        ids = list(wanted)
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start : start + IDS_PER_QUERY]
            listed = ", ".join(f"'{i}'" for i in chunk)  # validated ids only
            soql = f"SELECT Id, {field} FROM {sobject} WHERE Id IN ({listed})"
            for record in self._all_records(soql, sobject):
                # The API answers with the field's own spelling, whatever the config's case.
                value = next((v for k, v in record.items() if k.lower() == field.lower()), None)
                for given in wanted.get(_to_18(str(record["Id"])[:15]), []):
                    found[given] = str(value or "")
        return found

    def update(self, level: Level, writes: Sequence[RecordWrite]) -> list[WriteOutcome]:
        """Write the values, None (or '') clearing a field; one outcome per write, in order.
        Up to `bulk_threshold` records go through sObject Collections (200 per call), more
        through Bulk API 2.0 (one ingest job per 100 MB of CSV). Writes to one record are merged."""
        sobject = self._object(level)
        merged: dict[str, dict[str, Value]] = {}
        refused: dict[str, WriteOutcome] = {}
        for write in writes:
            values = merged.setdefault(write.record_id, {})
            for name, value in write.values.items():
                _check_name(name, f"targets.salesforce.objects.{level}.fields")
                if isinstance(value, float) and not math.isfinite(value):
                    refused[write.record_id] = WriteOutcome(
                        write.record_id, False, f"{name}: {value} is not a number Salesforce stores"
                    )
                values[name] = None if value == "" else value
        items = {k: v for k, v in merged.items() if k not in refused}
        if len(items) > self.target.bulk_threshold:
            log.info("salesforce %s: %d records over bulk_threshold %d: Bulk API 2.0",
                     sobject, len(items), self.target.bulk_threshold)  # fmt: skip
            outcomes = self._bulk_update(sobject, items)
        else:
            outcomes = self._collections_update(sobject, items)
        outcomes.update(refused)
        return [outcomes[write.record_id] for write in writes]

    def upsert_tasks(self, tasks: Sequence[TaskWrite]) -> list[TaskOutcome]:
        """Create or update tasks by key through Collections upsert, 200 per call; the same key
        given twice (keys compare case-insensitively, as Salesforce's do) is sent once, last
        version wins. One outcome per task, in order."""
        field = self.target.task_key_field
        _check_name(field, "targets.salesforce.task_key_field")
        latest: dict[str, TaskWrite] = {}
        for task in tasks:
            latest[task.key.casefold()] = task
        unique = list(latest.values())
        results: dict[str, TaskOutcome] = {}
        for start in range(0, len(unique), COLLECTION_SIZE):
            chunk = unique[start : start + COLLECTION_SIZE]
            body = {"allOrNone": False, "records": [_task_record(t, field) for t in chunk]}
            try:
                response = self._restful(
                    f"composite/sobjects/Task/{field}", "Task", method="PATCH", json=body
                )
            except ConnectorError as exc:
                if exc.decision.failure is Failure.CONFIG:
                    raise
                for task in chunk:
                    results[task.key.casefold()] = TaskOutcome(task.key, False, error=str(exc))
                continue
            for task, result in zip(chunk, _results(response, len(chunk)), strict=True):
                error = _save_errors("Task", result, self._fls_hint())
                results[task.key.casefold()] = TaskOutcome(
                    task.key,
                    error is None,
                    task_id=str(result["id"]) if error is None and result.get("id") else None,
                    error=error,
                )
        return [replace(results[task.key.casefold()], key=task.key) for task in tasks]

    # Collections and Bulk ----------------------------------------------------------------------

    def _collections_update(
        self, sobject: str, items: Mapping[str, Mapping[str, Value]]
    ) -> dict[str, WriteOutcome]:
        outcomes: dict[str, WriteOutcome] = {}
        ids = list(items)
        for start in range(0, len(ids), COLLECTION_SIZE):
            chunk = ids[start : start + COLLECTION_SIZE]
            records = [{"attributes": {"type": sobject}, "Id": i, **items[i]} for i in chunk]
            body = {"allOrNone": False, "records": records}
            try:
                response = self._restful("composite/sobjects", sobject, method="PATCH", json=body)
            except ConnectorError as exc:
                if exc.decision.failure is Failure.CONFIG:
                    raise
                outcomes.update({i: WriteOutcome(i, False, str(exc)) for i in chunk})
                continue
            for record_id, result in zip(chunk, _results(response, len(chunk)), strict=True):
                error = _save_errors(sobject, result, self._fls_hint())
                outcomes[record_id] = WriteOutcome(record_id, error is None, error)
        return outcomes

    def _bulk_update(
        self, sobject: str, items: Mapping[str, Mapping[str, Value]]
    ) -> dict[str, WriteOutcome]:
        columns = ["Id", *sorted({name for values in items.values() for name in values})]
        outcomes: dict[str, WriteOutcome] = {}
        for ids, data in _bulk_files(columns, items):
            outcomes.update(self._bulk_job(sobject, ids, data))
        return outcomes

    def _bulk_job(self, sobject: str, ids: list[str], data: str) -> dict[str, WriteOutcome]:
        """One ingest update job: create, upload, close, poll, then read the failed rows."""

        def jobs() -> _Bulk2Client:
            # Rebuilt for every call so a re-signed session is picked up.
            sf = self._sf()
            handler = SFBulk2Handler(sf.session_id, sf.bulk2_url, session=sf.session)
            return _Bulk2Client(sobject, handler.bulk2_url, handler.headers, handler.session)

        def failed_all(message: str) -> dict[str, WriteOutcome]:
            return {i: WriteOutcome(i, False, message) for i in ids}

        try:
            job_id = str(self._call(lambda: jobs().create_job(Operation.update), sobject)["id"])
        except ConnectorError as exc:
            if exc.decision.failure is Failure.CONFIG:
                raise
            return failed_all(str(exc))
        try:
            self._call(_once(lambda: jobs().upload_job_data(job_id, data)), sobject)
            self._call(_once(lambda: jobs().close_job(job_id)), sobject)
            info = self._wait(sobject, job_id, jobs)
        except ConnectorError as exc:
            self._abort(sobject, job_id, jobs)
            if exc.decision.failure is Failure.CONFIG:
                raise
            return failed_all(str(exc))
        state = str(info.get("state"))
        if state != "JobComplete":
            reason = str(info.get("errorMessage") or "no reason given")
            if "Field name not found" in reason:
                raise _config_error(
                    sobject, f"Bulk API job {job_id} failed: {reason}", self._fls_hint()
                )
            return failed_all(f"Bulk API job {job_id} ended {state}: {reason}")
        errors: dict[str, str] = {}
        try:
            if int(info.get("numberRecordsFailed") or 0) > 0:
                text = self._call(
                    lambda: jobs().get_ingest_results(job_id, "failedResults"), sobject
                )
                errors.update(_failed_rows(text))
            if int(info.get("numberRecordsProcessed") or 0) < len(ids):
                text = self._call(
                    lambda: jobs().get_ingest_results(job_id, "unprocessedrecords"), sobject
                )
                reader = csv.DictReader(io.StringIO(text, newline=""))
                errors.update({r["Id"]: "not processed by the Bulk API job" for r in reader})
        except ConnectorError as exc:
            if exc.decision.failure is Failure.CONFIG:
                raise
            return failed_all(f"Bulk API job {job_id} ended but its results were not read: {exc}")
        for error in errors.values():
            if error.partition(":")[0] in _CONFIG_CODES:
                raise _config_error(sobject, error, self._fls_hint())
        return {i: WriteOutcome(i, i not in errors, errors.get(i)) for i in ids}

    def _wait(self, sobject: str, job_id: str, jobs: Callable[[], _Bulk2Client]) -> dict[str, Any]:
        """Poll the job until it ends, backing off up to `_POLL_CAP` seconds between polls."""
        waited, delay = 0.0, _POLL_FIRST
        while True:
            info = dict(self._call(lambda: jobs().get_job(job_id, False), sobject))
            if info.get("state") in _TERMINAL:
                return info
            if waited >= JOB_WAIT_SECONDS:
                raise ConnectorError(SOURCE, sobject, Decision(
                    Action.FAIL, Failure.TRANSIENT,
                    f"Bulk API job {job_id} still {info.get('state')} after "
                    f"{waited / 60:.0f} minutes; the next run writes these records again",
                ))  # fmt: skip
            self._sleep(delay)
            waited += delay
            delay = min(_POLL_CAP, delay * 2)

    def _abort(self, sobject: str, job_id: str, jobs: Callable[[], _Bulk2Client]) -> None:
        """Best effort: a job left open would be processed by nobody and linger for a day."""
        try:
            self._call(lambda: jobs().abort_job(job_id, False), sobject)
        except ConnectorError as exc:
            log.info("salesforce %s: could not abort Bulk API job %s: %s", sobject, job_id, exc)

    # Tooling and describe -----------------------------------------------------------------------

    def _describe_fields(self, sobject: str) -> dict[str, dict[str, Any]]:
        """The object's fields visible to the integration user, by lower-cased name."""
        described = self._call(lambda: getattr(self._sf(), sobject).describe(), sobject)
        return {str(f["name"]).lower(): dict(f) for f in described.get("fields", [])}

    def _field_metadata(
        self, sobject: str, field: str, *, key: str = "targets.salesforce.objects"
    ) -> tuple[str, dict[str, Any]]:
        """The CustomField's Tooling id and Metadata, from one Tooling query (which, unlike
        describe, sees fields the integration user has no field-level security on)."""
        if not field.endswith("__c"):
            raise ConfigError(
                f"{sobject}.{field} is not a custom field; smartseg's tags field must be one",
                key=key,
            )
        namespace, _, developer = field.removesuffix("__c").rpartition("__")
        where = f"TableEnumOrId = '{sobject}' AND DeveloperName = '{developer}'"
        if namespace:
            where += f" AND NamespacePrefix = '{namespace}'"
        soql = f"SELECT Id, Metadata FROM CustomField WHERE {where}"
        response = self._restful("tooling/query", "CustomField", params={"q": soql})
        records = (response or {}).get("records") or []
        if not records:
            raise ConfigError(
                f"Salesforce is missing smartseg's field {sobject}.{field}; run "
                "`smartseg crm setup` to create it",
                key=key,
            )
        return str(records[0]["Id"]), dict(records[0].get("Metadata") or {})

    def _create_field(self, sobject: str, field: str, metadata: Mapping[str, Any]) -> bool:
        """Create the field; False when it exists already, hidden from the integration user
        (describe did not list it), which ensure_access will grant."""
        body = {"FullName": f"{sobject}.{field}", "Metadata": dict(metadata)}
        try:
            self._restful("tooling/sobjects/CustomField", "CustomField", method="POST", json=body)
        except ConnectorError as exc:
            if not exc.decision.message.startswith("DUPLICATE_DEVELOPER_NAME"):
                raise
            if self.target.permission_set is None:
                raise ConfigError(
                    f"Salesforce field {sobject}.{field} exists but the integration user cannot "
                    f"see it; {_MANUAL_FLS}",
                    key="targets.salesforce",
                ) from exc
            return False
        log.info("salesforce: created field %s.%s", sobject, field)
        return True

    def _owned_fields(self) -> list[OwnedField]:
        """Every field smartseg writes, by the names FieldPermissions use."""
        fields = [
            OwnedField(spec.object, name)
            for spec in self.target.objects.values()
            for name in ([spec.tags_field] if spec.tags_field else []) + list(spec.fields)
        ]
        return [*dict.fromkeys(fields), OwnedField("Task", self.target.task_key_field)]

    def _fls_hint(self) -> str:
        """What to do when Salesforce does not know one of smartseg's fields."""
        if self.target.permission_set is None:
            return _MANUAL_FLS
        return (
            "run `smartseg crm setup`, which creates smartseg's fields and grants the integration "
            f"user access to them through permission set {self.target.permission_set}"
        )

    def _all_records(self, soql: str, stream: str) -> list[dict[str, Any]]:
        """Every record of a query, following its pages (at most 2,000 a page)."""
        response = self._query(soql, stream)
        records = list(response.get("records", []))
        while not response.get("done", True) and response.get("nextRecordsUrl"):
            response = self._query_more(str(response["nextRecordsUrl"]), stream)
            records += response.get("records", [])
        return [dict(r) for r in records]

    # Plumbing -----------------------------------------------------------------------------------

    def _object(self, level: Level) -> str:
        target = self.target.objects.get(level)
        if target is None:
            raise ConfigError(
                f"no Salesforce object is configured for {level} records",
                key=f"targets.salesforce.objects.{level}",
            )
        _check_name(target.object, f"targets.salesforce.objects.{level}.object")
        return target.object

    def _sf(self) -> Salesforce:
        return self._client.sf

    def _restful(self, path: str, stream: str, **kwargs: Any) -> Any:
        """A REST call on the instance's API base (composite, tooling) as one paced call."""
        return self._call(lambda: self._sf().restful(path, **kwargs), stream)

    def _query(self, soql: str, stream: str) -> dict[str, Any]:
        return dict(self._call(lambda: self._sf().query(soql), stream))

    def _query_more(self, locator: str, stream: str) -> dict[str, Any]:
        return dict(
            self._call(lambda: self._sf().query_more(locator, identifier_is_url=True), stream)
        )

    def _call(self, fn: Callable[[], T], stream: str) -> T:
        """One API call: paced, then run through the retry table (each attempt paced too)."""

        def paced() -> T:
            self._limiter.wait()
            try:
                return fn()
            except sf_errors.SalesforceMalformedRequest as exc:
                content: list[Any] = exc.content if isinstance(exc.content, list) else []
                code = str(content[0].get("errorCode", "")) if content else ""
                if code == "INVALID_FIELD":
                    # Most often a field of smartseg's the integration user has no FLS on.
                    raise _config_error(stream, f"{code}: {content[0].get('message', '')}",
                                        self._fls_hint()) from exc  # fmt: skip
                raise

        return self._client.run(paced, stream)


class _SetupCalls:
    """`SetupApi` (salesforce_access.py) over the target's counted, paced and retried calls."""

    def __init__(self, target: SalesforceTarget, fields: Sequence[OwnedField]) -> None:
        self._target = target
        self._fields = fields

    def records(self, soql: str, stream: str) -> list[dict[str, Any]]:
        return self._target._all_records(soql, stream)

    def save(
        self, method: Literal["POST", "PATCH"], records: Sequence[Mapping[str, Any]], stream: str
    ) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(records), COLLECTION_SIZE):
            chunk = list(records[start : start + COLLECTION_SIZE])
            body = {"allOrNone": False, "records": chunk}
            response = self._target._restful("composite/sobjects", stream, method=method, json=body)
            for result in _results(response, len(chunk)):
                if result.get("success"):
                    ids.append(str(result.get("id") or ""))
                    continue
                error = dict((result.get("errors") or [{}])[0])
                code, message = str(error.get("statusCode") or ""), str(error.get("message") or "")
                if code.startswith("INSUFFICIENT_ACCESS"):
                    raise refused(code, message, self._fields)
                raise ConfigError(
                    f"Salesforce refused a {stream} record ({code}: {message}); fix it in "
                    "Setup and run `smartseg crm setup` again",
                    key="targets.salesforce.permission_set",
                )
        return ids

    def user_id(self) -> str:
        user = self._target._client.user_id()  # retried and counted by the client
        if not is_salesforce_id(user):
            raise ConfigError(
                f"Salesforce named the integration user {user!r}, which is not a record id",
                key="sources.salesforce.auth",
            )
        return user


# Helpers ----------------------------------------------------------------------------------------


def _check_name(name: str, key: str) -> None:
    """API names go into SOQL and URLs: letters, digits and underscores only."""
    if not _IDENTIFIER.match(name):
        raise ConfigError(f"{name!r} is not a Salesforce API name", key=key)


def _config_error(sobject: str, message: str, hint: str) -> ConnectorError:
    return ConnectorError(SOURCE, sobject, Decision(
        Action.FAIL, Failure.CONFIG,
        f"{message}; check the field names in targets.salesforce, or {hint}",
    ))  # fmt: skip


def _tag_values(values: Iterable[str]) -> list[str]:
    """The distinct values, trimmed; ones Salesforce cannot hold as picklist values raise."""
    wanted: dict[str, str] = {}
    for raw in values:
        value = raw.strip()
        if not value or len(value) > 255 or ";" in value:
            raise ConfigError(
                f"segment tag {raw!r} cannot be a Salesforce picklist value (1 to 255 "
                "characters, no ';')",
                key="segments",
            )
        wanted.setdefault(value.casefold(), value)
    return list(wanted.values())


def _field_metadata(spec: FieldSpec) -> dict[str, Any]:
    """Tooling API Metadata creating a field of the spec's kind."""
    metadata: dict[str, Any] = {"label": spec.label, "description": _DESCRIPTION}
    if spec.kind == "tags":
        metadata.update(
            type="MultiselectPicklist",
            visibleLines=TAGS_VISIBLE_LINES,
            valueSet={
                "restricted": True,
                "valueSetDefinition": {
                    "sorted": False,
                    "value": [
                        {
                            "fullName": PLACEHOLDER_VALUE,
                            "label": PLACEHOLDER_VALUE,
                            "default": False,
                            "isActive": False,
                        }
                    ],
                },
            },
        )
    else:
        metadata.update(_METADATA[spec.kind])
    return metadata


def _task_record(task: TaskWrite, key_field: str) -> dict[str, Any]:
    if task.completed and not task.body:
        # Closing: only the status changes; the comments a CSM wrote stay.
        return {"attributes": {"type": "Task"}, key_field: task.key, "Status": "Completed"}
    record: dict[str, Any] = {
        "attributes": {"type": "Task"},
        key_field: task.key,
        "Subject": task.subject[:SUBJECT_LENGTH],
        "Description": task.body[:DESCRIPTION_LENGTH],
        "ActivityDate": task.due.isoformat(),
        "Priority": task.priority,
        "Status": "Completed" if task.completed else "Not Started",
    }
    if task.owner_id is not None:
        record["OwnerId"] = task.owner_id
    if task.account_record_id is not None:
        record["WhatId"] = task.account_record_id
    if task.contact_record_id is not None:
        record["WhoId"] = task.contact_record_id
    return record


def _results(response: Any, expected: int) -> list[dict[str, Any]]:
    """The per-record results of a Collections call, padded if the API returned fewer."""
    items = [dict(r) for r in response] if isinstance(response, list) else []
    missing = {"success": False, "errors": [{"statusCode": "", "message": "no result returned"}]}
    return (items + [missing] * expected)[:expected]


def _save_errors(sobject: str, result: Mapping[str, Any], hint: str) -> str | None:
    """None for a successful SaveResult, else its errors as 'CODE: message' joined by '; '.
    An error every record would share (an unknown or read-only field) raises instead."""
    if result.get("success"):
        return None
    parts = []
    for error in result.get("errors") or []:
        code, message = str(error.get("statusCode") or ""), str(error.get("message") or "")
        if code in _CONFIG_CODES:
            raise _config_error(sobject, f"{code}: {message}", hint)
        parts.append(f"{code}: {message}" if code else message)
    return "; ".join(parts) or "failed without an error message"


def _once(fn: Callable[[], T]) -> Callable[[], T | None]:
    """A Bulk step that must not be repeated: when a retry finds it already done (the first
    attempt's answer was lost), that counts as done; polling then shows the job's real state."""
    attempts = 0

    def run() -> T | None:
        nonlocal attempts
        attempts += 1
        try:
            return fn()
        except sf_errors.SalesforceMalformedRequest as exc:
            content: list[Any] = exc.content if isinstance(exc.content, list) else []
            code = str(content[0].get("errorCode", "")) if content else ""
            if attempts > 1 and code in ("INVALIDJOBSTATE", "BULK_API_ERROR"):
                return None
            raise

    return run


def _cell(values: Mapping[str, Value], column: str) -> str:
    """A Bulk CSV cell: empty leaves the field alone, #N/A clears it, numbers in plain notation."""
    if column not in values:
        return ""
    value = values[column]
    if value is None:
        return BULK_NULL
    if isinstance(value, float):
        return format(Decimal(repr(value)), "f")
    return str(value)


def _bulk_files(
    columns: list[str], items: Mapping[str, Mapping[str, Value]]
) -> Iterator[tuple[list[str], str]]:
    """CSV uploads of at most MAX_BULK_JOB_BYTES each, with the record ids each one holds."""
    header = _csv_line(columns)
    ids: list[str] = []
    lines = [header]
    size = len(header.encode())
    for record_id, values in items.items():
        line = _csv_line([record_id, *(_cell(values, c) for c in columns[1:])])
        length = len(line.encode())
        if ids and size + length > MAX_BULK_JOB_BYTES:
            yield ids, "".join(lines)
            ids, lines, size = [], [header], len(header.encode())
        ids.append(record_id)
        lines.append(line)
        size += length
    if ids:
        yield ids, "".join(lines)


def _csv_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


def _failed_rows(text: str) -> dict[str, str]:
    """Record id -> sf__Error from a failedResults CSV (the uploaded Id column names the row)."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return {
        str(row.get("Id") or row.get("sf__Id") or ""): str(row.get("sf__Error") or "").removesuffix(
            " --"
        )
        for row in reader
    }
