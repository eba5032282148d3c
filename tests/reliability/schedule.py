"""A fault schedule drawn from a seed: every kind of fault the sandbox can inject, on all three
servers, limited so that repeating the pipeline eventually gets through.

Each seed gets every kind at least once: 429 (sometimes with a Retry-After longer than smartseg
will wait), 500 and 503 (sometimes an outage long enough to exhaust the retries), dropped
connections on a page being read and on a batch being written (the server applies the write,
then the response is cut: the classic duplicate trap), slow responses, expired Salesforce
sessions (and, for some seeds, a revoked HubSpot token, which needs an operator to fix it), and
partial batch failures. Every rule has a `times` limit, so the faults run out and a later run
goes through; how many runs that takes is part of what is tested.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from smartseg.connectors.retry import DEFAULT_POLICY
from smartseg.sandbox.http import FaultRule

__all__ = ["SERVERS", "Route", "Schedule", "draw_schedule"]

SERVERS = ("salesforce", "hubspot", "stripe")


@dataclass(frozen=True, slots=True)
class Route:
    """A (method, path glob) pair on one server, what kind of call it is, and about how many
    such requests one run makes (a rule waiting for more than that would rarely fire)."""

    server: str
    method: str
    path: str
    kind: str  # "read" (a page or a lookup), "write" (a batch write) or "login"
    per_run: int


_SF = "/services/data/{version}"
ROUTES = (
    Route("salesforce", "GET", f"{_SF}/query*", "read", 20),
    Route("salesforce", "GET", f"{_SF}/sobjects/*/describe", "read", 2),
    Route("salesforce", "PATCH", f"{_SF}/composite/sobjects", "write", 2),
    Route("salesforce", "PATCH", f"{_SF}/composite/sobjects/{{sobject}}/{{field}}", "write", 1),
    Route("salesforce", "POST", "/services/oauth2/token", "login", 2),
    Route("hubspot", "GET", "/crm/v3/objects/{objectType}", "read", 10),
    Route("hubspot", "POST", "/crm/v3/objects/{objectType}/search", "read", 8),
    Route("hubspot", "POST", "/crm/v3/objects/{objectType}/batch/read", "read", 3),
    Route("hubspot", "GET", "/crm/v3/owners", "read", 1),
    Route("hubspot", "POST", "/crm/v3/objects/{objectType}/batch/update", "write", 3),
    Route("hubspot", "POST", "/crm/v3/objects/{objectType}/batch/upsert", "write", 1),
    Route("hubspot", "POST", "/crm/v4/associations/*/batch/create", "write", 1),
    Route("stripe", "GET", "/v1/*", "read", 6),
)
# Batch routes whose handlers fail single items when a "partial" rule fires.
_PARTIAL = [r for r in ROUTES if r.kind == "write"]


@dataclass(frozen=True, slots=True)
class Schedule:
    """The rules per server, the seeds for their probability draws, and a readable summary."""

    seed: int
    rules: dict[str, list[FaultRule]]
    revokes_hubspot_token: bool

    def describe(self) -> str:
        parts = []
        for server in SERVERS:
            for r in self.rules[server]:
                how = f"p={r.probability:.2f}" if r.probability < 1 else "always"
                extra = {"429": f" retry_after={r.retry_after:g}", "slow": f" delay={r.delay:.2f}"}
                parts.append(f"{server}.{r.kind} {r.method} {r.path} {how} after={r.after} "
                             f"times={r.times}{extra.get(r.kind, '')}")  # fmt: skip
        return "; ".join(parts)

    def fired(self) -> dict[str, int]:
        """How often each kind fired so far, over all servers."""
        out: dict[str, int] = {}
        for rules in self.rules.values():
            for rule in rules:
                out[rule.kind] = out.get(rule.kind, 0) + rule.fired
        return out


def draw_schedule(seed: int) -> Schedule:
    """The schedule of `seed`: the same seed always gives the same rules."""
    rng = random.Random(seed)
    rules: dict[str, list[FaultRule]] = {server: [] for server in SERVERS}

    def add(kind: str, route: Route, **options: float | int | None) -> None:
        # Fire within the first run or two, in the middle of the route's requests or not.
        options.setdefault("after", rng.randint(0, route.per_run - 1))
        rules[route.server].append(FaultRule(kind, method=route.method, path=route.path,
                                             **options))  # type: ignore[arg-type]  # fmt: skip

    def pick(kind: str | None = None, server: str | None = None) -> Route:
        return rng.choice(
            [r for r in ROUTES if (kind is None or r.kind == kind) and server in (None, r.server)]
        )

    # Rate limits: mostly a short Retry-After, once in a while one longer than smartseg waits.
    for _ in range(rng.randint(1, 3)):
        long_wait = rng.random() < 0.15
        add("429", pick(), probability=rng.uniform(0.1, 0.6), times=1 if long_wait else
            rng.randint(1, 3), retry_after=DEFAULT_POLICY.max_retry_after * 5 if long_wait
            else rng.choice([0.01, 0.5, 2.0, 30.0]))  # fmt: skip
    # Server errors: scattered ones the retries absorb...
    for kind in ("500", "503"):
        add(kind, pick(), probability=rng.uniform(0.1, 0.5), times=rng.randint(1, 3))
    # ...and sometimes an outage of one route that outlasts every retry of one call.
    if rng.random() < 0.5:
        add(rng.choice(["500", "503"]), pick(), times=DEFAULT_POLICY.attempts)
    # Dropped connections: a page cut in half, and a batch applied whose answer is cut.
    add("drop", pick("read"), probability=rng.uniform(0.3, 1.0), times=rng.randint(1, 2))
    add("drop", pick("write"), probability=rng.uniform(0.5, 1.0), times=rng.randint(1, 2))
    # Slow answers (kept short: the retry waits are no-ops in tests, these are real).
    for _ in range(rng.randint(1, 2)):
        add("slow", pick(), probability=rng.uniform(0.1, 0.5), times=rng.randint(1, 4),
            delay=rng.uniform(0.01, 0.08))  # fmt: skip
    # An expired Salesforce session: smartseg signs in again by itself.
    add("expire", pick(server="salesforce"), times=rng.randint(1, 2))
    # A revoked HubSpot private-app token: nothing works until someone puts a valid one back.
    revoke = rng.random() < 0.3
    if revoke:
        add("expire", pick(server="hubspot"), times=1)
    # Partial batch failures: some items of a batch refused, the rest applied.
    for _ in range(rng.randint(1, 2)):
        add("partial", rng.choice(_PARTIAL), probability=rng.uniform(0.05, 0.3),
            times=rng.randint(1, 8))  # fmt: skip
    for server_rules in rules.values():
        rng.shuffle(server_rules)  # which rule a request meets first is part of the draw
    return Schedule(seed, rules, revoke)
