"""A fake HubSpot CRM API that hubspot-api-client 12 runs against unmodified.

`HubSpotServer(world)` serves `/crm/v3/objects`, search, batch, properties and owners, and the v4
associations API, with HubSpot's limits and error shapes. `load.py` documents the id scheme.
"""

from __future__ import annotations

from .catalog import OBJECT_TYPES
from .load import OWNER_ID_BASE
from .server import HubSpotServer

__all__ = ["OBJECT_TYPES", "OWNER_ID_BASE", "HubSpotServer"]
