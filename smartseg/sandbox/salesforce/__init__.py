"""A fake Salesforce org (REST, SOQL, sObject Collections, Tooling CustomField, Bulk 2.0)."""

from __future__ import annotations

from smartseg.sandbox.salesforce.server import SalesforceServer

__all__ = ["SalesforceServer"]
