"""A fake Stripe API for tests, the demo and benchmarks: `StripeServer`, seeded from a World."""

from __future__ import annotations

from smartseg.sandbox.stripe_api.objects import API_VERSION
from smartseg.sandbox.stripe_api.server import StripeServer

__all__ = ["API_VERSION", "StripeServer"]
