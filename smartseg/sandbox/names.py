"""Name pools for the synthetic world: people, companies, domains and email addresses.

Faker's generator methods cost microseconds per call, too slow for 100,000 accounts; its provider
word lists are read once here and sampled with the generator's own seeded RNG instead.
"""

from __future__ import annotations

import functools
import re

import numpy as np
from faker.providers.company.en_US import Provider as _CompanyWords
from faker.providers.person.en_US import Provider as _PersonWords

__all__ = ["PERSONAL_DOMAINS", "NamePools", "company_identity", "person_email"]

PERSONAL_DOMAINS: tuple[str, ...] = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com")

# Words that read like a B2B company's second name ("Hansen Analytics").
_TRADES = (
    "Analytics", "Systems", "Logistics", "Health", "Labs", "Capital", "Foods", "Energy", "Works",
    "Media", "Networks", "Partners", "Robotics", "Solutions", "Studios", "Supply", "Ventures",
    "Dynamics", "Learning", "Motors", "Pharma", "Retail", "Security", "Software", "Textiles",
)  # fmt: skip
_SUFFIXES = ("Inc", "LLC", "Group", "Ltd", "Co", "")
_TLDS = ("com", "io", "co", "net")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_LEGAL_FORM = re.compile(r" (Inc|LLC|Group|Ltd|Co)\b")


class NamePools:
    """Name lists read once from Faker's providers, sampled with a caller's seeded RNG."""

    def __init__(self) -> None:
        self.first_names = np.array(
            sorted(set(_PersonWords.first_names_female) | set(_PersonWords.first_names_male))
        )
        self.last_names = np.array(sorted(_PersonWords.last_names))
        self.nouns = np.array(sorted({w.capitalize() for w in _CompanyWords.catch_phrase_words[2]}))

    def people(self, rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
        """Draw `n` (first name, last name) pairs."""
        first = self.first_names[rng.integers(0, len(self.first_names), n)]
        last = self.last_names[rng.integers(0, len(self.last_names), n)]
        return first.tolist(), last.tolist()

    def companies(self, rng: np.random.Generator, n: int) -> list[str]:
        """Draw `n` company names such as "Hansen Analytics Inc" or "Vector Works"."""
        heads = np.where(
            rng.random(n) < 0.6,
            self.last_names[rng.integers(0, len(self.last_names), n)],
            self.nouns[rng.integers(0, len(self.nouns), n)],
        )
        trades = np.array(_TRADES)[rng.integers(0, len(_TRADES), n)]
        suffixes = np.array(_SUFFIXES)[rng.integers(0, len(_SUFFIXES), n)]
        return [f"{h} {t} {s}".rstrip() for h, t, s in zip(heads, trades, suffixes, strict=True)]


def company_identity(names: list[str], tld_draws: list[int]) -> tuple[list[str], list[str]]:
    """Make company names and their domains unique: a repeated name gets a number ("Acme 2")."""
    seen: dict[str, int] = {}
    taken: set[str] = set()
    unique_names: list[str] = []
    domains: list[str] = []
    for name, tld in zip(names, tld_draws, strict=True):
        count = seen.get(name, 0) + 1
        seen[name] = count
        unique = name if count == 1 else f"{name} {count}"
        slug = _NON_ALNUM.sub("-", _LEGAL_FORM.sub("", unique).lower()).strip("-")
        domain = f"{slug}.{_TLDS[tld % len(_TLDS)]}"
        # "Acme Inc" and "Acme LLC" share a slug; a number keeps their domains apart.
        n = 1
        while domain in taken:
            n += 1
            domain = f"{slug}{n}.{_TLDS[tld % len(_TLDS)]}"
        taken.add(domain)
        unique_names.append(unique)
        domains.append(domain)
    return unique_names, domains


@functools.cache
def _slug(name: str) -> str:
    return _NON_ALNUM.sub("", name.lower())


def person_email(first: str, last: str, domain: str, taken: set[str], personal_tag: int) -> str:
    """A work address first.last@domain, or a personal one when `domain` is a webmail domain.

    Personal addresses carry the person's number so two Jane Does at gmail.com stay distinct;
    work addresses get a digit only when a colleague already holds the plain form.
    """
    local = _slug(first) + "." + _slug(last)
    if domain in PERSONAL_DOMAINS:
        return f"{local}{personal_tag}@{domain}"
    email = f"{local}@{domain}"
    n = 1
    while email in taken:
        n += 1
        email = f"{local}{n}@{domain}"
    taken.add(email)
    return email
