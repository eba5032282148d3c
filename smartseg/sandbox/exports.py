"""The files the product and the survey tool export: usage rollups, raw events and NPS answers.

Usage is streamed one calendar month and one block of users at a time (see `usage.py`), so writing
a 100,000-account world keeps memory flat. Rollups cover the days older than a week; the last
week is raw events only, and those aggregate exactly to the rollups the same days would have had.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from smartseg.sandbox.usage import (
    RAW_DAYS,
    USAGE_DAYS,
    WRITE_SCHEMA,
    Chunk,
    UsageModel,
    coded,
)
from smartseg.sandbox.world import World

__all__ = ["EVENT_SCHEMA", "Exports", "write_exports"]

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.int64()),
        ("workspace_id", pa.dictionary(pa.int32(), pa.string())),
        ("user_email", pa.dictionary(pa.int32(), pa.string())),
        ("timestamp", pa.dictionary(pa.int32(), pa.string())),
        ("feature", pa.dictionary(pa.int32(), pa.string())),
        ("duration_seconds", pa.int64()),
    ]
)
_OFFICE_SECONDS = 12 * 3600
_README = """\
Synthetic exports for the smartseg sandbox (seed {seed}, as of {anchor}; times are UTC).
usage/daily/usage-YYYY-MM.parquet: daily rollups, one row per (workspace_id, user_email, day,
  feature) with events (count) and minutes (time spent); days {first} .. {last_rollup}.
usage/events/events-YYYY-MM-DD.csv: raw product events for {first_raw} .. {last}, one row each:
  event_id (YYYYMMDD then an 8-digit number), workspace_id, user_email, timestamp (ISO 8601),
  feature, duration_seconds.
  A day is either in the rollups or in the raw events, never both; rolled up, raw events give
  events = count and minutes = sum(duration_seconds) / 60.
nps/nps_responses.csv: survey answers: response_id, email, workspace_id, score (0-10),
  responded_at (ISO 8601), comment. workspace_id is the product's account id (CRMs carry it).
"""


@dataclass(frozen=True, slots=True)
class Exports:
    """The paths `write_exports` wrote."""

    data_dir: Path
    readme: Path
    daily: tuple[Path, ...]
    events: tuple[Path, ...]
    nps: Path
    rollup_rows: int
    event_rows: int


def write_exports(world: World, data_dir: Path) -> Exports:
    """Write usage rollups, raw events, NPS answers and a README under `data_dir`."""
    model = UsageModel(world)
    daily_dir, events_dir, nps_dir = (
        data_dir / "usage/daily",
        data_dir / "usage/events",
        data_dir / "nps",
    )
    for folder in (daily_dir, events_dir, nps_dir):
        folder.mkdir(parents=True, exist_ok=True)
    raw_from = USAGE_DAYS - RAW_DAYS
    raw_days = [model.first_day + dt.timedelta(days=d) for d in range(raw_from, USAGE_DAYS)]
    event_paths = tuple(events_dir / f"events-{day.isoformat()}.csv" for day in raw_days)
    next_id = [0] * RAW_DAYS
    clocks = [_clock(day) for day in raw_days]
    daily: list[Path] = []
    rollup_rows = 0
    with contextlib.ExitStack() as files:
        writers = [
            files.enter_context(pacsv.CSVWriter(str(path), EVENT_SCHEMA)) for path in event_paths
        ]
        for month, d0, d1 in model.months():
            rollup = None
            if d0 < raw_from:
                path = daily_dir / f"usage-{month:%Y-%m}.parquet"
                daily.append(path)
                # Without the Arrow schema stored, readers see plain strings, not dictionaries.
                rollup = files.enter_context(
                    pq.ParquetWriter(str(path), WRITE_SCHEMA, store_schema=False)
                )
            for block, chunk in enumerate(model.month_chunks(month, d0, d1)):
                if rollup is not None:
                    table = model.table(chunk.select(chunk.day < raw_from))
                    rollup.write_table(table)
                    rollup_rows += table.num_rows
                for d in range(max(d0, raw_from), d1):
                    k = d - raw_from
                    rng = np.random.default_rng([world.seed, model.first_epoch + d, block])
                    day = chunk.select(chunk.day == d)
                    rows = _raw_events(model, day, raw_days[k], clocks[k], rng, next_id[k])
                    writers[k].write_table(rows)
                    next_id[k] += rows.num_rows
            if rollup is not None:
                rollup.close()  # a month at a time keeps memory flat
    readme = data_dir / "README.txt"
    readme.write_text(
        _README.format(
            seed=world.seed,
            anchor=world.anchor,
            first=model.first_day,
            last_rollup=raw_days[0] - dt.timedelta(days=1),
            first_raw=raw_days[0],
            last=raw_days[-1],
        )
    )
    nps = nps_dir / "nps_responses.csv"
    _write_nps(world, nps)
    return Exports(data_dir, readme, tuple(daily), event_paths, nps, rollup_rows, sum(next_id))


def _raw_events(
    model: UsageModel,
    day: Chunk,
    date: dt.date,
    clock: pa.Array,
    rng: np.random.Generator,
    first_id: int,
) -> pa.Table:
    """Split one day's rollup rows into single events whose durations sum to each row's seconds."""
    row = np.repeat(np.arange(len(day.events)), day.events)
    weight = rng.random(len(row))
    share = weight / np.bincount(row, weight, minlength=len(day.events))[row]
    duration = 1 + np.floor(share * (day.seconds - day.events)[row]).astype(np.int64)
    # Flooring loses a few seconds per row; its first event takes them back, so sums stay exact.
    first = np.cumsum(day.events) - day.events
    spread = np.bincount(row, duration, minlength=len(day.events)).astype(np.int64)
    duration[first] += day.seconds - spread
    # Office hours, 07:00 to 19:00 UTC, in order within the day.
    when = rng.integers(0, _OFFICE_SECONDS, len(row))
    order = np.argsort(when, kind="stable")
    row, duration, when = row[order], duration[order], when[order]
    users = day.user[row]
    # Ids are unique across days: the date's digits, then the event's number within the day.
    first_event = int(f"{date:%Y%m%d}") * 100_000_000 + first_id
    return pa.table(
        {
            "event_id": pa.array(np.arange(first_event, first_event + len(row)), pa.int64()),
            "workspace_id": coded(model.company[users], model.workspaces),
            "user_email": coded(users, model.emails),
            "timestamp": coded(when, clock),
            "feature": coded(day.feature[row], model.features),
            "duration_seconds": pa.array(duration, pa.int64()),
        }
    )


def _clock(date: dt.date) -> pa.Array:
    """Every second of the day's office hours as ISO 8601 text (formatting per event is slow)."""
    start = np.datetime64(dt.datetime.combine(date, dt.time(7)), "s")
    return pa.array(np.datetime_as_string(start + np.arange(_OFFICE_SECONDS), timezone="UTC"))


def _write_nps(world: World, path: Path) -> None:
    """The survey tool's export: one row per answer, newest last."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh, lineterminator="\n")
        out.writerow(["response_id", "email", "workspace_id", "score", "responded_at", "comment"])
        for n, answer in enumerate(sorted(world.nps, key=lambda a: (a.responded_at, a.person))):
            out.writerow(
                [
                    f"nps_{n + 1:07d}",
                    world.people[answer.person].email,
                    world.companies[answer.company].workspace_id,
                    answer.score,
                    answer.responded_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    answer.comment,
                ]
            )
