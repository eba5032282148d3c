"""Usage, NPS and activities from files (and usage from a warehouse query), as pull streams.

Each file is loaded once: its fingerprint (size, mtime, content hash) is saved in the stream's
state in the same transaction as its rows, so an unchanged file costs nothing next run, a changed
file is re-read and its rows replaced, and a run that stops half-way resumes at the first file
not yet committed. Raw event files are aggregated per file into daily rows, so one UTC day's
events must live in one file (the product's exports are split by day); a day split across two
files would keep only the later file's totals. A warehouse query is re-run on every pull and
upserted, which writes only what changed. Malformed rows are reported per row; the good rows of
the same file are stored. A file that cannot be read at all is reported by name, the other files
still load, and the stream ends failed so the run says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from smartseg.config.sources import (
    ActivitySource,
    FileInput,
    NpsSource,
    SqlQuery,
    UsageFile,
    UsageSource,
)
from smartseg.connectors.activity_files import ActivityFileError, read_activities
from smartseg.connectors.files import InputError, Reject, expand_paths, file_fingerprint
from smartseg.connectors.nps_files import NpsFileError, read_nps
from smartseg.connectors.stream import Page, ReadContext, RecordIssue, WriteResult
from smartseg.connectors.usage_files import UsageFileError, read_usage, read_usage_sql
from smartseg.store import upsert
from smartseg.store.models import Activity, NpsResponse, UsageDaily

__all__ = ["FileStream", "UsageSqlStream", "activity_streams", "nps_streams", "usage_streams"]

_USAGE_KEY = ["source", "account_key", "day", "feature", "user_key"]
_ERRORS: dict[str, type[InputError]] = {
    "usage": UsageFileError,
    "nps": NpsFileError,
    "activities": ActivityFileError,
}


def _issues(rejects: Sequence[Reject]) -> list[RecordIssue]:
    return [
        RecordIssue(
            f"{r.file.name if r.file else 'query'} row {r.row}", f"{r.reason} ({r.value!r})"
        )
        for r in rejects
    ]


def _nps_row(row: dict[str, Any]) -> dict[str, Any]:
    key, email = row.pop("account_key", None), row.get("email")
    return {
        **row,
        "account_ref": f"workspace:{key}" if key else None,
        "contact_ref": f"email:{email}" if email else None,
    }


@dataclass(frozen=True, slots=True)
class FileStream:
    """One configured file glob: usage (daily rollups or raw events), NPS answers or
    activities; `source` says which."""

    source: str
    spec: UsageFile | FileInput
    index: int
    account_key: str = "workspace_id"

    @property
    def name(self) -> str:
        return f"files[{self.index}]"

    @property
    def key(self) -> str:
        return f"{self.source}.{self.name}"

    def read(self, context: ReadContext) -> Iterator[Page]:
        loaded: dict[str, str] = dict(context.state.get("files", {}))
        unreadable: list[tuple[str, str]] = []  # (file name, why)
        for path in expand_paths(self.spec.path, error=_ERRORS[self.source]):
            fingerprint = file_fingerprint(path)
            if not context.full and loaded.get(str(path)) == fingerprint:
                continue
            try:
                for rows, rejects, last in self._chunks(
                    self.spec.model_copy(update={"path": path})
                ):
                    state = None
                    if last:  # the file counts as loaded only once its last rows commit
                        loaded[str(path)] = fingerprint
                        state = {"files": dict(loaded)}
                    yield Page(records=rows, state=state, issues=_issues(rejects))
            except InputError as exc:
                # One bad export must not hold back the others: it is reported, the rest load,
                # and it is read again next run (its fingerprint was not saved).
                unreadable.append((path.name, str(exc)))
                yield Page(records=[], issues=[RecordIssue(path.name, str(exc))])
        if len(unreadable) == 1:
            raise _ERRORS[self.source](unreadable[0][1])
        if unreadable:
            names = ", ".join(name for name, _ in unreadable[:10])
            more = ", ..." if len(unreadable) > 10 else ""
            raise _ERRORS[self.source](
                f"{len(unreadable)} files could not be read ({names}{more}); each is listed "
                "with its reason among the skipped records"
            )

    def _chunks(
        self, spec: UsageFile | FileInput
    ) -> Iterable[tuple[list[dict[str, Any]], Sequence[Reject], bool]]:
        if isinstance(spec, UsageFile):
            for chunk in read_usage(spec, account_key=self.account_key):
                yield chunk.rows, chunk.rejects, chunk.last
        elif self.source == "activities":
            for activities in read_activities(spec):
                yield activities.rows, activities.rejects, activities.last
        else:
            for nps in read_nps(spec):
                yield [_nps_row(dict(r)) for r in nps.rows], nps.rejects, nps.last

    def write(self, connection: Connection, page: Page) -> WriteResult:
        if self.source == "usage":
            return WriteResult(
                upserted=upsert(connection, UsageDaily, page.records, key=_USAGE_KEY)
            )
        if self.source == "activities":
            return WriteResult(
                upserted=upsert(connection, Activity, page.records, key=["source", "source_id"])
            )
        return WriteResult(
            upserted=upsert(connection, NpsResponse, page.records, key=["source", "source_id"])
        )


@dataclass(frozen=True, slots=True)
class UsageSqlStream:
    """Usage from one warehouse query, re-run on every pull."""

    spec: SqlQuery
    account_key: str
    source: str = "usage"
    name: str = "sql"

    @property
    def key(self) -> str:
        return f"{self.source}.{self.name}"

    def read(self, context: ReadContext) -> Iterator[Page]:
        for chunk in read_usage_sql(self.spec, account_key=self.account_key):
            yield Page(records=chunk.rows, issues=_issues(chunk.rejects))

    def write(self, connection: Connection, page: Page) -> WriteResult:
        return WriteResult(upserted=upsert(connection, UsageDaily, page.records, key=_USAGE_KEY))


def usage_streams(config: UsageSource) -> list[FileStream | UsageSqlStream]:
    streams: list[FileStream | UsageSqlStream] = [
        FileStream("usage", spec, i, config.account_key) for i, spec in enumerate(config.files)
    ]
    if config.sql is not None:
        streams.append(UsageSqlStream(config.sql, config.account_key))
    return streams


def nps_streams(config: NpsSource) -> list[FileStream]:
    return [FileStream("nps", spec, i) for i, spec in enumerate(config.files)]


def activity_streams(config: ActivitySource) -> list[FileStream]:
    return [FileStream("activities", spec, i) for i, spec in enumerate(config.files)]
