"""The whole sandbox: one synthetic world served by fake Salesforce, HubSpot and Stripe APIs,
plus the product's usage and NPS exports on disk.

`Sandbox` is what `smartseg sandbox`, `smartseg demo`, the tests and the benchmarks start. Ports
default to the ones the starter config expects; port 0 picks free ones.
"""

from __future__ import annotations

import datetime as dt
import errno
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from smartseg.sandbox import credentials
from smartseg.sandbox.exports import Exports, write_exports
from smartseg.sandbox.generator import generate
from smartseg.sandbox.http import ApiServer, FaultRule, Faults, make_tls, parse_fault_spec
from smartseg.sandbox.hubspot.server import HubSpotServer
from smartseg.sandbox.salesforce.server import SalesforceServer
from smartseg.sandbox.stripe_api.server import StripeServer
from smartseg.sandbox.world import World

__all__ = ["DEFAULT_PORTS", "Sandbox", "SandboxError", "SandboxInfo"]

DEFAULT_PORTS = {"salesforce": 8443, "hubspot": 8444, "stripe": 12111}


class SandboxError(Exception):
    """The sandbox could not start (a port in use, a bad fault spec)."""


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    """What a client needs to reach the sandbox (the JSON line `smartseg sandbox` prints)."""

    salesforce: str
    hubspot: str
    stripe: str
    ca_file: str
    data_dir: str
    salesforce_session_id: str
    hubspot_token: str
    stripe_api_key: str
    accounts: int
    seed: int
    anchor: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Sandbox:
    """Start with `start()` (or as a context manager); `stop()` closes every server."""

    host: str = "127.0.0.1"
    salesforce_port: int = DEFAULT_PORTS["salesforce"]
    hubspot_port: int = DEFAULT_PORTS["hubspot"]
    stripe_port: int = DEFAULT_PORTS["stripe"]
    accounts: int = 200
    seed: int = 7
    anchor: dt.date | None = None
    data_dir: Path = Path("sandbox-data")
    faults: str = ""
    hubspot_burst: int = 100
    world: World | None = field(default=None, init=False)
    exports: Exports | None = field(default=None, init=False)
    salesforce: SalesforceServer | None = field(default=None, init=False)
    hubspot: HubSpotServer | None = field(default=None, init=False)
    stripe: StripeServer | None = field(default=None, init=False)

    def start(self) -> SandboxInfo:
        """Generate the world, write the exports, start the three servers; say how to reach them."""
        rules = self._fault_rules()
        self.data_dir = self.data_dir.resolve()
        self.world = generate(seed=self.seed, accounts=self.accounts, anchor=self.anchor)
        self.exports = write_exports(self.world, self.data_dir)
        tls = make_tls(self.data_dir, hosts=("127.0.0.1", "localhost", "::1", self.host))
        salesforce = SalesforceServer(
            self.world,
            host=self.host,
            port=self.salesforce_port,
            tls=tls,
            faults=rules["salesforce"],
        )
        hubspot = HubSpotServer(
            host=self.host,
            port=self.hubspot_port,
            faults=rules["hubspot"],
            burst_limit=self.hubspot_burst,
        )
        hubspot.load(self.world, salesforce_id=salesforce.salesforce_id)
        stripe = StripeServer(
            self.world,
            host=self.host,
            port=self.stripe_port,
            faults=rules["stripe"],
            salesforce_id=salesforce.salesforce_id,
        )
        servers: tuple[ApiServer, ...] = (salesforce, hubspot, stripe)
        started: list[ApiServer] = []
        try:
            for server in servers:
                _start(server)
                started.append(server)
        except BaseException:
            for running in started:
                running.stop()
            raise
        self.salesforce, self.hubspot, self.stripe = salesforce, hubspot, stripe
        return self.info()

    def info(self) -> SandboxInfo:
        assert self.salesforce and self.hubspot and self.stripe and self.world, (
            "sandbox not started"
        )
        return SandboxInfo(
            salesforce=self.salesforce.url,
            hubspot=self.hubspot.url,
            stripe=self.stripe.url,
            ca_file=str(self.data_dir / "sandbox-ca.pem"),
            data_dir=str(self.data_dir),
            salesforce_session_id=credentials.SALESFORCE_SESSION_ID,
            hubspot_token=credentials.HUBSPOT_TOKEN,
            stripe_api_key=credentials.STRIPE_API_KEY,
            accounts=self.accounts,
            seed=self.seed,
            anchor=self.world.anchor.isoformat(),
        )

    def stop(self) -> None:
        for server in (self.salesforce, self.hubspot, self.stripe):
            if server is not None:
                server.stop()
        self.salesforce = self.hubspot = self.stripe = None

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self, stop: threading.Event) -> None:
        """Block until `stop` is set (the CLI sets it on SIGINT/SIGTERM), then stop the servers."""
        try:
            stop.wait()
        finally:
            self.stop()

    def _fault_rules(self) -> dict[str, Faults]:
        try:
            parsed = parse_fault_spec(self.faults)
        except ValueError as exc:
            raise SandboxError(f"--faults: {exc}") from None
        unknown = set(parsed) - {*DEFAULT_PORTS, "*"}
        if unknown:
            raise SandboxError(
                f"--faults names unknown server(s) {', '.join(sorted(unknown))}; "
                "use salesforce, hubspot, stripe or *"
            )
        shared: list[FaultRule] = parsed.get("*", [])
        return {
            name: Faults([*parsed.get(name, []), *_copies(shared)], seed=self.seed)
            for name in DEFAULT_PORTS
        }


def _copies(rules: list[FaultRule]) -> list[FaultRule]:
    # Each server counts its own requests against a shared rule.
    return [
        FaultRule(**{k: v for k, v in asdict(r).items() if k not in ("seen", "fired")})
        for r in rules
    ]


def _start(server: ApiServer) -> None:
    try:
        server.start()
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise SandboxError(
                f"port {server.requested_port} for the {server.name} sandbox is in use; "
                f"stop what holds it or pass --{server.name}-port (0 picks a free port)"
            ) from None
        raise SandboxError(
            f"cannot start the {server.name} sandbox on {server.host}: {exc}"
        ) from None
