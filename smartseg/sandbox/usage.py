"""Product usage for the synthetic world: daily rollups per (workspace, user, day, feature).

Usage is not held in the `World`: it is derived from it (each person's `usage_level`, the company's
`usage_pattern`, `features`, `email_open_rate` and dates) one calendar month and one block of users
at a time, each with its own seeded RNG, so any day range comes out identical however it is asked
for and memory stays flat at 100,000 accounts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from smartseg.sandbox.world import FEATURES, World

__all__ = [
    "FEATURE_NAMES",
    "RAW_DAYS",
    "ROLLUP_SCHEMA",
    "USAGE_DAYS",
    "WRITE_SCHEMA",
    "Chunk",
    "UsageModel",
    "coded",
    "daily_rollups",
]

USAGE_DAYS = 180  # usage covers anchor-180 .. anchor-1
RAW_DAYS = 7  # the last 7 of them are exported as raw events, the rest as daily rollups
ROLLUP_SCHEMA = pa.schema(
    [
        ("workspace_id", pa.string()),
        ("user_email", pa.string()),
        ("day", pa.date32()),
        ("feature", pa.string()),
        ("events", pa.int64()),
        ("minutes", pa.float64()),
    ]
)

# The same columns as the writers hold them: text as dictionaries over the world's workspaces,
# emails and feature names. Parquet stores them as plain strings (its dictionary pages).
WRITE_SCHEMA = pa.schema(
    [
        ("workspace_id", pa.dictionary(pa.int32(), pa.string())),
        ("user_email", pa.dictionary(pa.int32(), pa.string())),
        ("day", pa.date32()),
        ("feature", pa.dictionary(pa.int32(), pa.string())),
        ("events", pa.int64()),
        ("minutes", pa.float64()),
    ]
)
FEATURE_NAMES: tuple[str, ...] = tuple(FEATURES)
_F = {name: i for i, name in enumerate(FEATURE_NAMES)}
_LOGIN, _SENT, _OPENED = _F["login"], _F["email_sent"], _F["email_opened"]
# Chance that a user of each level is active on a weekday; weekends see less of everyone but power.
_LEVEL_P = {"none": 0.0, "light": 0.12, "regular": 0.45, "daily": 0.92, "power": 0.98}
_WEEKEND = 0.6


def _per_feature(values: dict[str, float]) -> np.ndarray:
    return np.array([values[name] for name in FEATURE_NAMES], dtype=np.float64)


# Chance that a user who uses a feature touches it on an active day ("email_opened" is derived).
_FEATURE_P = _per_feature(
    {"login": 1.0, "dashboards": 0.55, "automation": 0.45, "executive_report": 0.25,
     "advanced_reports": 0.35, "sso": 0.3, "email_sent": 0.35, "email_opened": 0.0, "api": 0.7,
     "ai_insights": 0.3, "help_center": 0.15, "academy": 0.1}
)  # fmt: skip
# Mean events beyond the first on a day a feature is used, and mean seconds per event.
_EXTRA_EVENTS = _per_feature(
    {"login": 1.0, "dashboards": 2.0, "automation": 2.0, "executive_report": 0.5,
     "advanced_reports": 1.5, "sso": 0.3, "email_sent": 5.0, "email_opened": 0.0, "api": 8.0,
     "ai_insights": 2.0, "help_center": 2.0, "academy": 0.5}
)  # fmt: skip
_SECONDS = _per_feature(
    {"login": 20.0, "dashboards": 150.0, "automation": 60.0, "executive_report": 300.0,
     "advanced_reports": 200.0, "sso": 4.0, "email_sent": 25.0, "email_opened": 1.0, "api": 1.0,
     "ai_insights": 120.0, "help_center": 180.0, "academy": 600.0}
)  # fmt: skip
_BLOCK = 50_000  # users per chunk: bounds memory, and fixes the RNG streams


@dataclass(frozen=True, slots=True)
class Chunk:
    """Daily rollup rows as arrays; `user` indexes `UsageModel.emails`, `day` is a window index."""

    user: np.ndarray
    day: np.ndarray
    feature: np.ndarray
    events: np.ndarray
    seconds: np.ndarray

    def select(self, keep: np.ndarray) -> Chunk:
        """The rows where `keep` is true."""
        return Chunk(
            self.user[keep],
            self.day[keep],
            self.feature[keep],
            self.events[keep],
            self.seconds[keep],
        )


class UsageModel:
    """Per-user activity parameters derived once from a World; chunks of rows are drawn from it."""

    def __init__(self, world: World) -> None:
        self.seed = world.seed
        self.first_day = world.anchor - dt.timedelta(days=USAGE_DAYS)
        self.first_epoch = (self.first_day - dt.date(1970, 1, 1)).days
        users = [p for p in world.people if p.is_user and p.usage_level != "none"]
        companies = world.companies
        n, nf = len(users), len(FEATURE_NAMES)
        # Dictionaries, not repeated strings: the files are written from indexes into these.
        self.workspaces = pa.array([c.workspace_id for c in companies], pa.string())
        self.emails = pa.array([p.email for p in users], pa.string())
        self.features = pa.array(FEATURE_NAMES, pa.string())
        self.company = np.array([p.company for p in users], dtype=np.int64)
        span = np.array([self._span(c.start_date, c.churn_date) for c in companies], np.int64)
        pattern = np.array([c.usage_pattern for c in companies])[self.company]
        uses = np.zeros((len(companies), nf), dtype=bool)
        for c in companies:
            uses[c.idx, [_F[f] for f in c.features]] = True
        uses = uses[self.company]
        sponsor = np.array([p.role == "Executive Sponsor" for p in users], dtype=bool)
        # People come grouped by company, so a user's rank is its distance from the group start.
        starts = np.flatnonzero(np.r_[True, self.company[1:] != self.company[:-1]])
        rank = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))

        rng = np.random.default_rng([world.seed, 0x75736167])
        late = rng.integers(USAGE_DAYS - 30, USAGE_DAYS - 11, n)
        stop = rng.integers(USAGE_DAYS - 45, USAGE_DAYS - 30, n)
        include = rng.random((n, nf)) < 0.6
        dormant_end = rng.integers(USAGE_DAYS - 90, USAGE_DAYS - 34, len(companies))[self.company]

        power = pattern == "power"
        # A company's first user uses all its features, so a small company's features always
        # show up; the others pick about three in five of them.
        chosen = uses & (include | ((rank == 0) | power)[:, None])
        report = _F["executive_report"]
        chosen[:, report] = np.where(sponsor, uses[:, report], chosen[:, report])
        feat_p = np.where(
            chosen, np.where(power[:, None], np.maximum(_FEATURE_P, 0.8), _FEATURE_P), 0.0
        )
        feat_p[:, report] = np.where(sponsor & chosen[:, report], 0.75, feat_p[:, report])
        feat_p[:, _LOGIN] = 1.0
        level_p = np.array([_LEVEL_P[p.usage_level] for p in users])
        level_p = np.where(power, np.maximum(level_p, 0.98), level_p)
        self.level_p = np.where(pattern == "none", 0.0, level_p)
        self.weekend = np.where(power, 1.0, _WEEKEND)
        self.lam = np.where(power, 1.3, 1.0)
        rising, falling = pattern == "rising", pattern == "falling"
        self.before = np.where(rising, 0.4, 1.0)
        self.after = np.where(falling, 0.3, 1.0)
        start, end = span[self.company, 0], span[self.company, 1]
        self.start = np.where(rising & (rank % 2 == 1), np.maximum(start, late), start)
        end = np.where(falling & (rank % 5 < 3), np.minimum(end, stop), end)
        self.end = np.where(pattern == "dormant", np.minimum(end, dormant_end), end)
        self.open_rate = np.array([companies[p.company].email_open_rate for p in users])
        # Sparse (user, feature, chance) slots: most users touch three or four features, so
        # drawing only those is several times cheaper than drawing all of them.
        self.slot_user, self.slot_feature = np.nonzero(feat_p)
        self.slot_p = feat_p[self.slot_user, self.slot_feature]
        self.slot_start = np.searchsorted(self.slot_user, np.arange(n))
        self.slot_count = np.bincount(self.slot_user, minlength=n)

    def _span(self, start: dt.date | None, churn: dt.date | None) -> tuple[int, int]:
        """Window days [first, last) in which a company can use the product."""
        first = 0 if start is None else max(0, (start - self.first_day).days)
        last = USAGE_DAYS if churn is None else min(USAGE_DAYS, (churn - self.first_day).days)
        return first, last

    def months(self) -> list[tuple[dt.date, int, int]]:
        """The calendar months the window touches, as (first of month, first day, end day)."""
        out: list[tuple[dt.date, int, int]] = []
        d = 0
        while d < USAGE_DAYS:
            day = self.first_day + dt.timedelta(days=d)
            nxt = (day.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
            end = min(USAGE_DAYS, (nxt - self.first_day).days)
            out.append((day.replace(day=1), d, end))
            d = end
        return out

    def month_chunks(self, month: dt.date, d0: int, d1: int) -> Iterator[Chunk]:
        """Rows for window days [d0, d1) of one calendar month, one block of users at a time."""
        for block, lo in enumerate(range(0, len(self.level_p), _BLOCK)):
            rng = np.random.default_rng([self.seed, month.year, month.month, block])
            yield self._draw(rng, slice(lo, lo + _BLOCK), d0, d1)

    def _draw(self, rng: np.random.Generator, users: slice, d0: int, d1: int) -> Chunk:
        days = np.arange(d0, d1)
        weekend_day = (self.first_epoch + days + 3) % 7 >= 5  # 1970-01-01 was a Thursday
        p = self.level_p[users, None] * np.where(
            days >= USAGE_DAYS - 30, self.after[users, None], self.before[users, None]
        )
        p = p * np.where(weekend_day, self.weekend[users, None], 1.0)
        p = p * ((days >= self.start[users, None]) & (days < self.end[users, None]))
        ui, di = np.nonzero(rng.random(p.shape) < p)
        ui += users.start
        counts = self.slot_count[ui]
        cell = np.repeat(np.arange(len(ui)), counts)
        slot = np.repeat(self.slot_start[ui] - np.cumsum(counts) + counts, counts) + np.arange(
            len(cell)
        )
        hit = rng.random(len(slot)) < self.slot_p[slot]
        slot, cell = slot[hit], cell[hit]
        user, day = ui[cell], di[cell] + d0
        feature = self.slot_feature[slot]
        events = 1 + rng.poisson(_EXTRA_EVENTS[feature] * self.lam[user])
        sent = np.flatnonzero(feature == _SENT)
        opened = rng.binomial(events[sent], self.open_rate[user[sent]])
        has_open = opened > 0
        user = np.concatenate([user, user[sent][has_open]])
        day = np.concatenate([day, day[sent][has_open]])
        feature = np.concatenate([feature, np.full(int(has_open.sum()), _OPENED)])
        events = np.concatenate([events, opened[has_open]])
        # Every event lasts at least a second, so raw events can always be split out of a total.
        spread = rng.random(len(events)) + 0.5
        seconds = events + (events * (_SECONDS[feature] - 1.0) * spread).astype(np.int64)
        return Chunk(user, day, feature.astype(np.int8), events.astype(np.int64), seconds)

    def table(self, chunk: Chunk) -> pa.Table:
        """A chunk as a daily-rollup table, text columns dictionary-encoded (see WRITE_SCHEMA)."""

        return pa.table(
            {
                "workspace_id": coded(self.company[chunk.user], self.workspaces),
                "user_email": coded(chunk.user, self.emails),
                "day": pa.array((chunk.day + self.first_epoch).astype(np.int32)).cast(pa.date32()),
                "feature": coded(chunk.feature, self.features),
                "events": pa.array(chunk.events, pa.int64()),
                "minutes": pa.array(chunk.seconds / 60.0, pa.float64()),
            },
            schema=WRITE_SCHEMA,
        )


def coded(indexes: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
    """`values[indexes]` as a dictionary array over just the slice of `values` it uses.

    A block of users uses a contiguous run of emails and workspaces; carrying only that run keeps
    each Parquet row group's dictionary page small.
    """
    lo = int(indexes.min()) if len(indexes) else 0
    hi = int(indexes.max()) + 1 if len(indexes) else 0
    return pa.DictionaryArray.from_arrays(
        pa.array((indexes - lo).astype(np.int32)), values.slice(lo, hi - lo)
    )


def daily_rollups(world: World, first: dt.date, last: dt.date) -> pa.Table:
    """Daily rollups for days `first` .. `last` (inclusive, within the 180-day window)."""
    model = UsageModel(world)
    lo, hi = (first - model.first_day).days, (last - model.first_day).days + 1
    tables = [
        model.table(chunk.select((chunk.day >= lo) & (chunk.day < hi))).cast(ROLLUP_SCHEMA)
        for month, d0, d1 in model.months()
        if d0 < hi and d1 > lo
        for chunk in model.month_chunks(month, d0, d1)
    ]
    return pa.concat_tables(tables) if tables else ROLLUP_SCHEMA.empty_table()
