"""The mutable lists a `World` is assembled from, and the shared vocabulary of the generator.

Both the archetypes and the random population append to one `Draft`, so indexes, emails and
domains stay unique across the two.
"""

from __future__ import annotations

import datetime as dt

import numpy as np

from smartseg.sandbox.names import NamePools, company_identity, person_email
from smartseg.sandbox.world import Activity, Company, Nps, Opportunity, Person, Rep, Ticket, World

__all__ = ["PRICES", "Draft", "arr"]

# List price per seat per billing interval, in cents: annual contracts get two months free.
PRICES: dict[tuple[str, str], int] = {
    ("Gold", "year"): 120_000,
    ("Silver", "year"): 60_000,
    ("Bronze", "year"): 30_000,
    ("Gold", "month"): 12_000,
    ("Silver", "month"): 6_000,
    ("Bronze", "month"): 3_000,
    ("Free", "month"): 0,
    ("Free", "year"): 0,
}
_WEEKDAYS = tuple(dt.timedelta(days=d, hours=d) for d in range(7))
REP_DOMAIN = "northwind-saas.com"  # the vendor whose CRM this is; reps work there


def arr(company: Company) -> float:
    """Annual recurring revenue in dollars as Stripe's subscription implies it (0 if none)."""
    if company.unit_amount_cents is None or company.billing_interval is None:
        return 0.0
    per_year = 12 if company.billing_interval == "month" else 1
    discount = 1 - (company.discount_percent or 0.0) / 100
    return company.seats * company.unit_amount_cents * per_year * discount / 100


class Draft:
    """Lists being filled for one World, with the seeded RNG and name pools they draw from."""

    def __init__(self, seed: int, anchor: dt.date, accounts: int) -> None:
        self.seed = seed
        self.anchor = anchor
        self.anchor_time = dt.datetime.combine(anchor, dt.time(), tzinfo=dt.UTC)
        self.rng = np.random.default_rng(seed)
        self.pools = NamePools()
        self.reps: list[Rep] = []
        self.companies: list[Company] = []
        self.people: list[Person] = []
        self.opportunities: list[Opportunity] = []
        self.activities: list[Activity] = []
        self.tickets: list[Ticket] = []
        self.nps: list[Nps] = []
        self.emails: set[str] = set()
        self._add_reps(accounts)
        self.company_names, self.company_domains = company_identity(
            self.pools.companies(self.rng, accounts), self.rng.integers(0, 4, accounts).tolist()
        )
        self.csms = [r.idx for r in self.reps if r.role == "CSM" and r.active]
        self.aes = [r.idx for r in self.reps if r.role == "AE" and r.active]

    def _add_reps(self, accounts: int) -> None:
        """CSMs carry about 40 accounts and AEs 60; every twelfth rep has left (inactive)."""
        roles = ["CSM"] * max(3, accounts // 40) + ["AE"] * max(2, accounts // 60)
        first, last = self.pools.people(self.rng, len(roles))
        for i, (role, given, family) in enumerate(zip(roles, first, last, strict=True)):
            email = person_email(given, family, REP_DOMAIN, self.emails, i)
            self.reps.append(Rep(i, given, family, email, role, active=i % 12 != 11))

    def day(self, offset: int) -> dt.date:
        """The date `offset` days after the anchor (negative: before it)."""
        return self.anchor + dt.timedelta(days=offset)

    def at(self, seconds_ago: int) -> dt.datetime:
        """The UTC time `seconds_ago` seconds before the anchor's midnight."""
        return self.anchor_time - dt.timedelta(seconds=seconds_ago)

    def person(
        self,
        company: Company,
        first: str,
        last: str,
        role: str,
        title: str,
        domain: str,
        is_user: bool,
        level: str,
        lifecycle: str,
        email_opt_out: bool = False,
    ) -> Person:
        """Append a contact of `company` with a unique email and return it.

        The contact entered the CRM within a week of its company, which is always a week or more
        before the anchor.
        """
        idx = len(self.people)
        person = Person(
            idx,
            company.idx,
            first,
            last,
            person_email(first, last, domain, self.emails, idx),
            title,
            role,
            is_user,
            level if is_user else "none",
            lifecycle,
            email_opt_out,
            0,
            company.in_salesforce,
            company.in_hubspot,
            company.created_at + _WEEKDAYS[idx % 7],
        )
        self.people.append(person)
        return person

    def world(self) -> World:
        """The finished World."""
        return World(
            self.seed,
            self.anchor,
            self.reps,
            self.companies,
            self.people,
            self.opportunities,
            self.activities,
            self.tickets,
            self.nps,
        )
