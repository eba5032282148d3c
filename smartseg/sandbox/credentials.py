"""The sandbox's well-known development credentials.

They open nothing but the local sandbox; `smartseg init` writes them into the starter config's
secret files so a new user's first run needs no setup. Never use them for a real system.
"""

from __future__ import annotations

__all__ = [
    "HUBSPOT_TOKEN",
    "SALESFORCE_CLIENT_ID",
    "SALESFORCE_CLIENT_SECRET",
    "SALESFORCE_PASSWORD",
    "SALESFORCE_SECURITY_TOKEN",
    "SALESFORCE_SESSION_ID",
    "SALESFORCE_USERNAME",
    "STRIPE_API_KEY",
]

SALESFORCE_CLIENT_ID = "smartseg-sandbox"
SALESFORCE_CLIENT_SECRET = "sandbox-client-secret-0d5e7f"
SALESFORCE_USERNAME = "integration@smartseg.sandbox"
SALESFORCE_PASSWORD = "sandbox-password-7c1a"
SALESFORCE_SECURITY_TOKEN = "sandboxtoken9a2"
SALESFORCE_SESSION_ID = "00D5g000004SANDBOX!sandbox-session-3b9f"  # org id ! token
HUBSPOT_TOKEN = "pat-na1-00000000-0000-4000-8000-sandbox0token"
STRIPE_API_KEY = "sk_test_sandbox_smartseg_4eC39HqLyjWDarjtT1zdp7dc"
