"""Write the shipped config pointed at a running sandbox (for `smartseg demo` and the tests).

The shipped `config/` already names the sandbox's default ports and files; a sandbox on other
ports or another data folder needs those filled in, plus the development secrets written where
the config reads them. Everything else (segments, playbooks, field maps) is the shipped file.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

from smartseg.config import STARTER_DIR
from smartseg.sandbox import credentials
from smartseg.sandbox.app import SandboxInfo

__all__ = ["write_sandbox_config"]


def write_sandbox_config(
    directory: Path, info: SandboxInfo, *, database_url: str | None = None
) -> Path:
    """Copy the starter config into `directory`, aim it at `info`, return smartseg.yaml's path."""
    directory.mkdir(parents=True, exist_ok=True)
    for sub in ("segments", "playbooks"):
        source = STARTER_DIR / sub
        if source.is_dir():
            shutil.copytree(source, directory / sub, dirs_exist_ok=True)
    document: dict[str, Any] = yaml.safe_load((STARTER_DIR / "smartseg.yaml").read_text())
    sources = document["sources"]
    sources["salesforce"].update(
        instance_url=info.salesforce, login_url=info.salesforce, ca_file=info.ca_file
    )
    sources["hubspot"]["base_url"] = info.hubspot
    sources["stripe"]["api_base"] = info.stripe
    for name in ("usage", "nps", "activities"):
        for spec in sources.get(name, {}).get("files", []):
            spec["path"] = spec["path"].replace("../sandbox-data", info.data_dir)
    if database_url is not None:
        document["database_url"] = database_url
    secrets = directory / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "salesforce_client_secret").write_text(credentials.SALESFORCE_CLIENT_SECRET)
    (secrets / "hubspot_token").write_text(credentials.HUBSPOT_TOKEN)
    (secrets / "stripe_api_key").write_text(credentials.STRIPE_API_KEY)
    path = directory / "smartseg.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
