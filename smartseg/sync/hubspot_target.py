"""HubSpot as a sync target: segment tags, computed properties and follow-up tasks.

Every write goes through the batch endpoints (100 inputs per call) over the pull's
`HubSpotClient`, so calls are counted, paced by the burst limiter and retried on 429s, 5xxs and
dropped connections. Writes are also paced by `targets.hubspot.rate_limit.per_second`.

What fails comes back per record: a 207 names the inputs HubSpot refused (each input carries its
record id or task key as `objectWriteTraceId`, which HubSpot echoes in the error), and a batch
whose request still fails after the retries fails all of its records with the error text.
Configuration problems raise instead: a refused token or scope (401/403), an unknown object type,
a property that does not exist (`smartseg crm setup` creates smartseg's own).

Tasks are upserted by a unique task property holding smartseg's key (HubSpot has no external id
for tasks), so the same key never makes two tasks. Batch upsert takes no associations, so newly
created tasks are linked to their company and contact afterwards with v4 batch association
creates; only new tasks are linked, which keeps a rerun with unchanged tasks at one call per 100.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiPost,
    PublicAssociationMultiPost,
    PublicObjectId,
)
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
)
from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyUpdate

from smartseg.config import HubSpotSource
from smartseg.config import HubSpotTarget as HubSpotTargetConfig
from smartseg.connectors.errors import Action, ConnectorError, Decision, Failure
from smartseg.connectors.http import CallCounter
from smartseg.connectors.hubspot import HubSpotClient, RateLimiter
from smartseg.connectors.retry import DEFAULT_POLICY, RetryPolicy
from smartseg.errors import ConfigError
from smartseg.sync.targets import (
    FieldKind,
    FieldSpec,
    Level,
    RecordWrite,
    TaskOutcome,
    TaskWrite,
    WriteOutcome,
)

__all__ = ["BATCH", "HubSpotTarget", "write_limiter"]

SOURCE = "hubspot"
BATCH = 100  # inputs per batch read, update and upsert call
ASSOCIATION_BATCH = 100  # inputs per v4 batch association create
TASKS = "tasks"
TASK_TO_COMPANY = 192  # HUBSPOT_DEFINED association type ids
TASK_TO_CONTACT = 204
SETUP_HINT = "run `smartseg crm setup` to create smartseg's properties"

# A new tags property needs one option; this hidden one keeps forms and filters clean.
PLACEHOLDER_OPTION = OptionInput(
    label="(smartseg placeholder)",
    value="smartseg_placeholder",
    display_order=0,
    hidden=True,
    description="Created with the property; smartseg never writes it.",
)

_ENTRIES: dict[Level, Literal["company", "contact"]] = {"account": "company", "contact": "contact"}
# (type, fieldType) of the properties smartseg creates, per field kind.
_SHAPES: dict[FieldKind, tuple[str, str]] = {
    "tags": ("enumeration", "checkbox"),
    "text": ("string", "text"),
    "number": ("number", "number"),
    "date": ("date", "date"),
}
# Property types an existing property may have for each kind.
_ACCEPTED: dict[FieldKind, frozenset[str]] = {
    "tags": frozenset({"enumeration"}),
    "text": frozenset({"string"}),
    "number": frozenset({"number"}),
    "date": frozenset({"date", "datetime"}),
}
_GROUPS = {"companies": "companyinformation", "contacts": "contactinformation",
           TASKS: "taskinformation"}  # fmt: skip
_PRIORITIES = {"High": "HIGH", "Normal": "MEDIUM", "Low": "LOW"}

T = TypeVar("T")


def write_limiter(
    per_second: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> RateLimiter:
    """A limiter admitting `per_second` writes per second on average (fractions allowed)."""
    per_window = max(1, int(per_second))
    return RateLimiter(per_window, per_window / per_second, per_second, clock=clock, sleep=sleep)


@dataclass(frozen=True, slots=True)
class _ItemError:
    """One input HubSpot refused in a batch: which input (trace id or ids) and why."""

    keys: frozenset[str]
    message: str


class HubSpotTarget:
    """The `CrmTarget` for HubSpot; see the module docstring for how it spends calls."""

    name = "hubspot"

    def __init__(
        self,
        source: HubSpotSource,
        target: HubSpotTargetConfig,
        calls: CallCounter,
        *,
        sleep: Callable[[float], None] | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        client: HubSpotClient | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        """`sleep` is for retry waits (tests pass a no-op); `client` may be shared with a pull;
        `limiter` replaces the write pace built from `target.rate_limit.per_second`."""
        self.target = target
        self._calls = calls
        self._client = client or HubSpotClient(source, calls, policy=policy, sleep=sleep)
        self._timeout = source.timeout.total_seconds()
        self._writes = limiter or write_limiter(target.rate_limit.per_second)

    def calls(self) -> int:
        """API calls made so far through the shared counter (pulls on it included)."""
        return self._calls.get(SOURCE)

    # Properties ---------------------------------------------------------------------------------

    def ensure_fields(
        self, level: Level, fields: Sequence[FieldSpec], *, create: bool
    ) -> list[str]:
        """Check `fields` exist on the level's object (one call), creating missing ones (one call
        each) when `create`; otherwise a ConfigError names them. One line per field."""
        object_type = self._object_type(level)
        return self._ensure(object_type, fields, create=create, unique=False)

    def ensure_task_key(self, *, create: bool) -> list[str]:
        """The same for the unique text property on tasks that holds smartseg's key."""
        key = FieldSpec(self.target.task_key_property, "text", "Smartseg key")
        return self._ensure(TASKS, [key], create=create, unique=True)

    def ensure_access(self) -> list[str]:
        """Nothing to grant: a private app's CRM scopes cover every property, smartseg's too."""
        return []

    def ensure_tag_values(self, level: Level, field: str, values: Iterable[str]) -> list[str]:
        """Add the values missing from the tags property's options: one read, then one update
        with every missing value (none if nothing is missing). Existing options, hand-added
        ones included, are kept. Returns the values added."""
        wanted = list(dict.fromkeys(v for v in values if v))
        if not wanted:
            return []
        bad = [v for v in wanted if ";" in v]
        if bad:
            raise ConfigError(f"tag values cannot contain ';' (HubSpot's separator): {bad}")
        object_type = self._object_type(level)
        prop = self._property(object_type, field)
        if prop is None:
            raise ConfigError(
                f"HubSpot {object_type} has no property {field!r}; {SETUP_HINT}",
                key=self._key(level),
            )
        if prop.type != "enumeration":
            raise ConfigError(
                f"HubSpot {object_type}.{field} is a {prop.type} property, not a multiple "
                "checkbox (enumeration); point tags_property at one",
                key=self._key(level),
            )
        current = list(prop.options or [])
        have = {o.value for o in current}
        missing = [v for v in wanted if v not in have]
        if not missing:
            return []
        # The update replaces the whole option list, so it carries every existing option.
        start = max((o.display_order or 0 for o in current), default=-1) + 1
        options = [
            OptionInput(label=o.label, value=o.value, display_order=o.display_order,
                        hidden=bool(o.hidden), description=o.description or "")
            for o in current
        ] + [
            OptionInput(label=v, value=v, display_order=start + i, hidden=False)
            for i, v in enumerate(missing)
        ]  # fmt: skip
        api = self._client.api("properties", "core_api")
        self._request(
            object_type, api.update, object_type, field, PropertyUpdate(options=options), write=True
        )
        return missing

    # Records ------------------------------------------------------------------------------------

    def read_tags(self, level: Level, field: str, record_ids: Sequence[str]) -> dict[str, str]:
        """The raw tags value per record, 100 ids per call. Records HubSpot does not find read as
        '' (their write then fails with HubSpot's message). A failed read raises: merging onto
        an unknown value would drop tags."""
        object_type = self._object_type(level)
        ids = list(dict.fromkeys(record_ids))
        found: dict[str, str] = dict.fromkeys(ids, "")
        api = self._client.api("objects", "batch_api")
        for chunk in _chunks(ids, BATCH):
            body = BatchReadInputSimplePublicObjectId(
                inputs=[SimplePublicObjectId(id=i) for i in chunk], properties=[field]
            )
            response = self._request(object_type, api.read, object_type, body)
            for result in response.results or []:
                found[str(result.id)] = (result.properties or {}).get(field) or ""
        return found

    def update(self, level: Level, writes: Sequence[RecordWrite]) -> list[WriteOutcome]:
        """Write the values, 100 records per call, one outcome per write (in order).

        Writes to the same record are merged (later values win): HubSpot refuses a batch that
        names a record twice. None clears a property.
        """
        object_type = self._object_type(level)
        merged: dict[str, dict[str, str]] = {}
        for write in writes:
            merged.setdefault(write.record_id, {}).update(
                {name: _text(value) for name, value in write.values.items()}
            )
        outcomes: dict[str, WriteOutcome] = {}
        api = self._client.api("objects", "batch_api")
        for chunk in _chunks(list(merged), BATCH):
            body = BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    SimplePublicObjectBatchInput(
                        id=record_id, object_write_trace_id=record_id,
                        properties=merged[record_id],
                    )
                    for record_id in chunk
                ]
            )  # fmt: skip
            try:
                response = self._request(object_type, api.update, object_type, body, write=True)
            except ConnectorError as exc:
                message = self._batch_failure(exc, object_type)
                outcomes.update({r: WriteOutcome(r, False, message) for r in chunk})
                continue
            done = {str(r.object_write_trace_id or r.id) for r in response.results or []}
            errors = self._item_errors(response, object_type)
            for record_id in chunk:
                if record_id in done:
                    outcomes[record_id] = WriteOutcome(record_id, True)
                else:
                    outcomes[record_id] = WriteOutcome(record_id, False, _why(record_id, errors))
        return [outcomes[w.record_id] for w in writes]

    # Tasks --------------------------------------------------------------------------------------

    def upsert_tasks(self, tasks: Sequence[TaskWrite]) -> list[TaskOutcome]:
        """Create or update tasks by key, 100 per call, then link the new ones to their company
        and contact (v4 batch creates, 100 links per call). One outcome per task, in order; a
        key given twice is written once, with its last version."""
        key_property = self.target.task_key_property
        latest: dict[str, TaskWrite] = {t.key: t for t in tasks}
        outcomes: dict[str, TaskOutcome] = {}
        to_link: list[tuple[str, TaskWrite]] = []
        api = self._client.api("objects", "batch_api")
        for chunk in _chunks(list(latest), BATCH):
            body = BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[
                    SimplePublicObjectBatchInputUpsert(
                        id_property=key_property, id=key, object_write_trace_id=key,
                        properties=self._task_properties(latest[key]),
                    )
                    for key in chunk
                ]
            )  # fmt: skip
            attempts = 0

            def upsert(*args: Any, **kwargs: Any) -> Any:
                nonlocal attempts
                attempts += 1
                return api.upsert(*args, **kwargs)

            try:
                response = self._request(TASKS, upsert, TASKS, body, write=True)
            except ConnectorError as exc:
                message = self._batch_failure(exc, TASKS)
                outcomes.update({k: TaskOutcome(k, False, error=message) for k in chunk})
                continue
            errors = self._item_errors(response, TASKS)
            for result in response.results or []:
                key = result.object_write_trace_id or (result.properties or {}).get(key_property)
                if key not in latest:
                    continue  # not an input of ours; its input then fails as unanswered
                outcomes[key] = TaskOutcome(key, True, task_id=str(result.id))
                # A retried upsert may have created the task on an attempt whose answer was
                # lost; the retry then reports it as existing, so link all of that batch. The
                # same goes for a task an earlier run saved but did not link (a failed link, a
                # crash between the calls): creating an association that exists is a no-op.
                if result.new or attempts > 1 or latest[key].retry:
                    to_link.append((str(result.id), latest[key]))
            for key in chunk:
                if key not in outcomes:
                    outcomes[key] = TaskOutcome(key, False, error=_why(key, errors))
        self._link(to_link, outcomes)
        return [outcomes[t.key] for t in tasks]

    def _task_properties(self, task: TaskWrite) -> dict[str, str]:
        if task.completed and not task.body:
            # Closing: only the status changes; the notes a CSM wrote stay.
            return {"hs_task_status": "COMPLETED", self.target.task_key_property: task.key}
        due = dt.datetime.combine(task.due, dt.time(), dt.UTC)
        props = {
            "hs_task_subject": task.subject,
            "hs_task_body": task.body,
            "hs_timestamp": due.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "hs_task_priority": _PRIORITIES[task.priority],
            "hs_task_status": "COMPLETED" if task.completed else "NOT_STARTED",
            "hs_task_type": "TODO",
            self.target.task_key_property: task.key,
        }
        if task.owner_id is not None:
            props["hubspot_owner_id"] = task.owner_id
        return props

    def _link(self, created: list[tuple[str, TaskWrite]], outcomes: dict[str, TaskOutcome]) -> None:
        """Associate new tasks with their company and contact; a failed link fails the task's
        outcome (it keeps its id) so the operator sees it."""
        api = self._client.api("associations", "batch_api")
        for to_type, type_id, pairs in (
            ("companies", TASK_TO_COMPANY,
             [(tid, t.account_record_id, t.key) for tid, t in created if t.account_record_id]),
            ("contacts", TASK_TO_CONTACT,
             [(tid, t.contact_record_id, t.key) for tid, t in created if t.contact_record_id]),
        ):  # fmt: skip
            spec = [AssociationSpec(association_category="HUBSPOT_DEFINED",
                                    association_type_id=type_id)]  # fmt: skip
            for chunk in _chunks(pairs, ASSOCIATION_BATCH):
                body = BatchInputPublicAssociationMultiPost(
                    inputs=[
                        PublicAssociationMultiPost(
                            _from=PublicObjectId(id=task_id), to=PublicObjectId(id=to_id),
                            types=spec,
                        )
                        for task_id, to_id, _ in chunk
                    ]
                )  # fmt: skip
                try:
                    response = self._request(TASKS, api.create, TASKS, to_type, body, write=True)
                except ConnectorError as exc:
                    message = self._batch_failure(exc, TASKS)
                    failed = {(task_id, to_id): message for task_id, to_id, _ in chunk}
                else:
                    failed = _failed_links(response, chunk, self._item_errors(response, TASKS))
                for task_id, to_id, key in chunk:
                    if (task_id, to_id) in failed:
                        error = f"saved, but linking it to {to_type} {to_id} failed: "
                        error += failed[task_id, to_id]
                        earlier = outcomes[key].error
                        outcomes[key] = TaskOutcome(
                            key, False, task_id=task_id,
                            error=f"{earlier}; {error}" if earlier else error,
                        )  # fmt: skip

    # Plumbing -----------------------------------------------------------------------------------

    def _object_type(self, level: Level) -> str:
        entry = self.target.objects.get(_ENTRIES[level])
        if entry is None:
            raise ConfigError(
                f"no HubSpot object is configured for the {level} level", key=self._key(level)
            )
        return str(entry.object)

    def _key(self, level: Level) -> str:
        return f"targets.hubspot.objects.{_ENTRIES[level]}"

    def _request(
        self, stream: str, method: Callable[..., Any], *args: Any, write: bool = False
    ) -> Any:
        """`method(*args)`, one SDK request through the client (counted, burst-limited, retried);
        writes are also held to the configured writes per second, on every attempt."""

        def attempt() -> Any:
            if write:
                self._writes.acquire()
            return method(*args, _request_timeout=self._timeout)

        return self._client.call(attempt, stream)

    def _property(self, object_type: str, name: str) -> Any | None:
        """One property definition, or None when HubSpot has no such property."""
        api = self._client.api("properties", "core_api")
        try:
            return self._request("properties", api.get_by_name, object_type, name)
        except ConnectorError as exc:
            if exc.decision.status == 404:
                return None
            raise

    def _ensure(
        self, object_type: str, fields: Sequence[FieldSpec], *, create: bool, unique: bool
    ) -> list[str]:
        if not fields:
            return []
        api = self._client.api("properties", "core_api")
        listing = self._request("properties", api.get_all, object_type)
        existing = {p.name: p for p in listing.results or []}
        lines, missing, wrong = [], [], []
        for field in fields:
            prop = existing.get(field.name)
            if prop is None:
                missing.append(field)
            elif prop.type not in _ACCEPTED[field.kind]:
                wrong.append(f"{field.name} is {prop.type}, expected {_SHAPES[field.kind][0]}")
            elif field.kind == "tags" and prop.field_type != "checkbox":
                wrong.append(f"{field.name} is a {prop.field_type}, not a multiple checkbox")
            elif unique and not prop.has_unique_value:
                wrong.append(f"{field.name} does not require unique values")
            else:
                lines.append(f"{object_type}.{field.name}: exists")
        if wrong:
            raise ConfigError(
                f"HubSpot {object_type} properties do not fit smartseg: {'; '.join(wrong)}; "
                "delete them in HubSpot or configure other names"
            )
        if missing and not create:
            names = ", ".join(f.name for f in missing)
            raise ConfigError(f"HubSpot {object_type} lacks the properties {names}; {SETUP_HINT}")
        for field in missing:
            kind, field_type = _SHAPES[field.kind]
            spec = PropertyCreate(
                name=field.name, label=field.label, type=kind, field_type=field_type,
                group_name=_GROUPS.get(object_type, f"{object_type.rstrip('s')}information"),
                has_unique_value=unique,
                options=[PLACEHOLDER_OPTION] if field.kind == "tags" else None,
            )  # fmt: skip
            try:
                self._request("properties", api.create, object_type, spec, write=True)
            except ConnectorError as exc:
                if exc.decision.status != 409:  # 409: created meanwhile, e.g. by hand
                    raise
            lines.append(f"{object_type}.{field.name}: created ({kind}/{field_type})")
        return lines

    def _batch_failure(self, exc: ConnectorError, object_type: str) -> str:
        """The text every record of a failed batch gets; raises for configuration problems."""
        if exc.decision.failure is Failure.CONFIG:
            raise exc
        body = _body(exc.__cause__)
        codes = {str(e.get("code")) for e in body.get("errors") or [] if isinstance(e, dict)}
        message = str(body.get("message") or "")
        names = (body.get("context") or {}).get("propertyName") or []
        self._check_properties(object_type, codes, names, message, exc.decision.status)
        if message.startswith("Unable to infer object type"):
            raise _config_error(object_type, f"{message}; check targets.hubspot.objects")
        return exc.decision.message

    def _item_errors(self, response: Any, object_type: str) -> list[_ItemError]:
        """The per-input errors of a 207; an unknown property among them raises."""
        found = []
        for error in getattr(response, "errors", None) or []:
            context = error.context or {}
            details = error.errors or []
            codes = frozenset(str(d.code) for d in details if d.code)
            names = tuple(n for d in details for n in (d.context or {}).get("propertyName", []))
            self._check_properties(object_type, codes, list(names), error.message or "", None)
            keys = frozenset(
                str(k)
                for name in ("objectWriteTraceId", "ids", "id")
                for k in context.get(name, [])
            )
            detail = "; ".join(d.message for d in details if d.message)
            found.append(_ItemError(keys, detail or error.message or "refused"))
        return found

    def _check_properties(
        self,
        object_type: str,
        codes: Iterable[str],
        names: Sequence[str],
        message: str,
        status: int | None,
    ) -> None:
        """Raise a configuration error when HubSpot says a written property does not exist."""
        if "PROPERTY_DOESNT_EXIST" in set(codes):
            shown = ", ".join(dict.fromkeys(names)) or message
            raise _config_error(
                object_type, f"HubSpot {object_type} has no property {shown}; {SETUP_HINT}", status
            )


def _config_error(object_type: str, message: str, status: int | None = None) -> ConnectorError:
    return ConnectorError(
        SOURCE, object_type, Decision(Action.FAIL, Failure.CONFIG, message, status=status)
    )


def _failed_links(
    response: Any, chunk: Sequence[tuple[str, str, str]], errors: list[_ItemError]
) -> dict[tuple[str, str], str]:
    """(task id, target id) -> error for the links a batch association create did not make."""
    if response is None:  # a status the SDK does not map (issue #448): no per-link detail
        return {}
    made = {
        (str(r.from_object_id), str(r.to_object_id))
        for r in getattr(response, "results", None) or []
    }
    failed = {}
    for task_id, to_id, _ in chunk:
        if (task_id, to_id) not in made:
            mine = [e.message for e in errors if task_id in e.keys or to_id in e.keys]
            failed[task_id, to_id] = "; ".join(mine) or _why(task_id, errors)
    return failed


def _why(key: str, errors: list[_ItemError]) -> str:
    """HubSpot's message for the input `key`, or every unattributed message if none names it."""
    mine = [e.message for e in errors if key in e.keys]
    if mine:
        return "; ".join(mine)
    loose = [e.message for e in errors if not e.keys]
    return "; ".join(loose) or "HubSpot returned no result for this input"


def _body(exc: BaseException | None) -> dict[str, Any]:
    raw = getattr(exc, "body", None)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    try:
        parsed = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _text(value: str | float | None) -> str:
    """A property value as HubSpot takes it: '' clears, whole floats lose their '.0'."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
