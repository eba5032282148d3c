"""The random companies' history: CSM activities, support tickets, NPS answers and deals.

Everything falls in the last 180 days before the anchor and inside the company's life (after its
start, before its churn), except open renewals and trial deals, which close on their future date.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from smartseg.sandbox.draft import Draft, arr
from smartseg.sandbox.world import FEATURES, Activity, Company, Nps, Opportunity, Ticket

__all__ = ["NPS_COMMENTS", "SUBJECTS", "add_deals", "add_history"]

_WINDOW = 180
_DAY = 86_400
SUBJECTS = {
    "email": "Follow-up: {topic}",
    "call": "Check-in call: {topic}",
    "meeting": "Working session: {topic}",
    "qbr": "Quarterly business review",
}
_TOPICS = (
    "onboarding plan",
    "dashboard setup",
    "automation rollout",
    "renewal",
    "adoption",
    "executive report",
    "integration",
    "training",
)
_DURATION = {"email": 0, "call": 30, "meeting": 45, "qbr": 90}
_TICKET_FEATURES = tuple(f for f in FEATURES if f not in ("login", "email_opened"))
NPS_COMMENTS = {
    "promoter": ("Dashboards save us hours every week.", "Great support team.", ""),
    "passive": ("Does the job.", "Reporting could be faster.", ""),
    "detractor": ("Too expensive for what we use.", "Automation keeps breaking.", "Hard to learn."),
}


class _Frame:
    """Per-company arrays for vectorized draws: life span in the window and contact range."""

    def __init__(self, draft: Draft, companies: list[Company]) -> None:
        first_person: dict[int, int] = {}
        count: dict[int, int] = {}
        for person in draft.people:
            first_person.setdefault(person.company, person.idx)
            count[person.company] = count.get(person.company, 0) + 1
        self.companies = companies
        self.idx = np.array([c.idx for c in companies], dtype=np.int64)
        start_ago = [
            _WINDOW if c.start_date is None else (draft.anchor - c.start_date).days
            for c in companies
        ]
        churn_ago = [
            0 if c.churn_date is None else (draft.anchor - c.churn_date).days for c in companies
        ]
        self.lo = np.array(churn_ago, dtype=np.int64) * _DAY + 1
        self.hi = np.minimum(_WINDOW, np.array(start_ago, dtype=np.int64)) * _DAY
        self.first = np.array([first_person.get(c.idx, 0) for c in companies], dtype=np.int64)
        self.staff = np.array([count.get(c.idx, 0) for c in companies], dtype=np.int64)
        self.alive = (self.lo < self.hi) & (self.staff > 0)
        self.prospect = np.array([c.status == "Prospect" for c in companies], dtype=bool)

    def rows(self, rng: np.random.Generator, mean: np.ndarray) -> tuple[np.ndarray, ...]:
        """Poisson(mean) rows per live company: (company position, seconds ago, person idx)."""
        counts = np.where(self.alive, rng.poisson(mean), 0)
        at = np.repeat(np.arange(len(self.companies)), counts)
        ago = self.lo[at] + (rng.random(len(at)) * (self.hi[at] - self.lo[at])).astype(np.int64)
        who = self.first[at] + (rng.random(len(at)) * self.staff[at]).astype(np.int64)
        return at, ago, who


def add_history(draft: Draft, companies: list[Company]) -> None:
    """Draw activities, tickets, NPS answers and opportunities for random `companies`."""
    frame = _Frame(draft, companies)
    _activities(draft, frame)
    _tickets(draft, frame)
    _nps(draft, frame)
    add_deals(draft, companies)


def add_deals(draft: Draft, companies: list[Company]) -> None:
    """Opportunities for `companies`: the won first deal, renewals, upsells, churn's loss."""
    for company in companies:
        _deals(draft, draft.rng, company)


def _activities(draft: Draft, frame: _Frame) -> None:
    """About six CSM touches per customer in the window (one AE email per prospect)."""
    rng = draft.rng
    at, ago, who = frame.rows(rng, np.where(frame.prospect, 1.0, 6.0))
    kinds = np.array(("email", "call", "meeting", "qbr"))[
        rng.choice(4, len(at), p=(0.45, 0.25, 0.2, 0.1))
    ].tolist()
    cancel = (rng.random(len(at)) < 0.12).tolist()
    topic = rng.integers(0, len(_TOPICS), len(at)).tolist()
    base = len(draft.activities)
    for n, (c, a, w, kind, x, t) in enumerate(
        zip(at.tolist(), ago.tolist(), who.tolist(), kinds, cancel, topic, strict=True)
    ):
        company = frame.companies[c]
        owner = company.owner_rep if company.csm_rep is None else company.csm_rep
        status = "cancelled" if x and kind != "email" else "completed"
        draft.activities.append(
            Activity(
                base + n,
                company.idx,
                w,
                kind,
                status,
                draft.at(a),
                _DURATION[kind],
                owner,
                SUBJECTS[kind].format(topic=_TOPICS[t]),
            )
        )


def _tickets(draft: Draft, frame: _Frame) -> None:
    """About 1.2 support tickets per non-prospect company in the window."""
    rng = draft.rng
    at, ago, who = frame.rows(rng, np.where(frame.prospect, 0.0, 1.2))
    n = len(at)
    kinds = np.array(("Bug", "Question", "Feature Request"))[
        rng.choice(3, n, p=(0.45, 0.4, 0.15))
    ].tolist()
    severity = np.array(("Critical", "High", "Medium", "Low"))[
        rng.choice(4, n, p=(0.05, 0.2, 0.45, 0.3))
    ].tolist()
    feature = np.array(_TICKET_FEATURES)[rng.integers(0, len(_TICKET_FEATURES), n)].tolist()
    took = rng.integers(3600, 14 * _DAY, n).tolist()
    base = len(draft.tickets)
    for k, (c, a, w, kind, sev, feat, t) in enumerate(
        zip(at.tolist(), ago.tolist(), who.tolist(), kinds, severity, feature, took, strict=True)
    ):
        closed = draft.at(a - t) if t < a else None
        status = "Closed" if closed else ("Working" if t % 2 else "New")
        draft.tickets.append(
            Ticket(
                base + k,
                int(frame.idx[c]),
                w,
                kind,
                sev if kind == "Bug" else "Low",
                status,
                feat,
                f"{kind} about {feat.replace('_', ' ')}",
                draft.at(a),
                closed,
            )
        )


def _nps(draft: Draft, frame: _Frame) -> None:
    """About a third of customers' contacts answer once; the CSM's sentiment leans the scores."""
    rng = draft.rng
    eligible = frame.alive & ~frame.prospect
    at = np.repeat(np.arange(len(frame.companies)), np.where(eligible, frame.staff, 0))
    offset = np.arange(len(at)) - np.repeat(
        np.cumsum(frame.staff[eligible]) - frame.staff[eligible], frame.staff[eligible]
    )
    person = frame.first[at] + offset
    answer, bucket, score, when = rng.random((4, len(at)))
    keep = answer < 0.33
    lean = {"Green": (0.05, 0.3), "Yellow": (0.25, 0.7), "Red": (0.6, 0.9)}
    for c, p, b, x, w in zip(
        at[keep].tolist(),
        person[keep].tolist(),
        bucket[keep].tolist(),
        score[keep].tolist(),
        when[keep].tolist(),
        strict=True,
    ):
        company = frame.companies[c]
        detractor, passive = lean[company.csm_sentiment or "Yellow"]
        if b < detractor:
            kind, value = "detractor", int(x * 7)
        elif b < passive:
            kind, value = "passive", 7 + int(x * 2)
        else:
            kind, value = "promoter", 9 + int(x * 2)
        comments = NPS_COMMENTS[kind]
        ago = int(frame.lo[c] + w * (frame.hi[c] - frame.lo[c]))
        draft.nps.append(
            Nps(p, company.idx, value, draft.at(ago), comments[int(x * 10) % len(comments)])
        )


def _deals(draft: Draft, rng: np.random.Generator, company: Company) -> None:
    """The won first deal, a past renewal, an open renewal, sometimes an upsell; churn's loss."""
    if company.start_date is None:
        return
    value = round(max(arr(company), company.seats * 600.0), 2)

    def add(kind: str, stage: str, close: dt.date, amount: float) -> None:
        name = f"{company.name} - {kind} {close.year}-{close.month:02d}"
        draft.opportunities.append(
            Opportunity(
                len(draft.opportunities),
                company.idx,
                name,
                kind,
                stage,
                amount,
                close,
                company.owner_rep,
            )
        )

    if company.status in ("Trial", "Pilot"):
        add("New Business", "Negotiation", company.trial_end_date or draft.anchor, value)
        return
    add("New Business", "Closed Won", company.start_date, value)
    tenure = (draft.anchor - company.start_date).days
    if company.contract_type == "Annual" and tenure > 365:
        add("Renewal", "Closed Won", draft.day(-(tenure % 365)), value)
    renewal = company.renewal_date
    if renewal and company.contract_type == "Annual" and (renewal - draft.anchor).days <= 120:
        add("Renewal", "Negotiation", renewal, value)
    if company.churn_date:
        add("Renewal", "Closed Lost", company.churn_date, value)
    elif rng.random() < 0.15 and tenure > 30:
        won = rng.random() < 0.6
        close = draft.day(-int(rng.integers(1, min(tenure, 360))))
        add("Upsell", "Closed Won" if won else "Closed Lost", close, round(value * 0.3, 2))
