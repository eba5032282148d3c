"""Config loading: the starter loads, secrets resolve, values parse. Every kind of mistake, and
the message naming its file, line, key and fix, is in tests/badinput/test_config_files.py."""

from __future__ import annotations

import shutil
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from smartseg.config import (
    STARTER_DIR,
    Config,
    ConfigError,
    SalesforceClientCredentials,
    UnresolvedSecret,
    load_config,
    parse_duration,
)

SF_SECRET = "sf-client-secret-0123456789"
HS_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
ENV = {"HS_TOKEN": HS_TOKEN}


def write(folder: Path, text: str, name: str = "smartseg.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(path: Path, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=ENV if env is None else env)
    return caught.value


@pytest.fixture
def starter(tmp_path: Path) -> Path:
    """The starter config copied into tmp_path/config, with its secret files written."""
    config_dir = tmp_path / "config"
    (config_dir / "secrets").mkdir(parents=True)
    shutil.copy(STARTER_DIR / "smartseg.yaml", config_dir / "smartseg.yaml")
    (config_dir / "secrets/salesforce_client_secret").write_text(f"  {SF_SECRET}\n")
    (config_dir / "secrets/hubspot_token").write_text(HS_TOKEN + "\n")
    (config_dir / "secrets/stripe_api_key").write_text("sk_test_0123456789abcdef\n")
    return config_dir / "smartseg.yaml"


def test_starter_config_loads_with_its_secret_files(starter: Path) -> None:
    config = load_config(starter, env={})
    salesforce = config.sources.salesforce
    assert salesforce is not None
    assert isinstance(salesforce.auth, SalesforceClientCredentials)
    assert salesforce.instance_url == "https://127.0.0.1:8443"
    assert salesforce.overlap == timedelta(minutes=5)
    assert salesforce.field_map["account"]["renewal_date"] == "Renewal_Date__c"
    assert config.sources.enabled_names() == ("salesforce", "hubspot", "stripe", "usage", "nps")
    assert config.schedules["pipeline"].interval == timedelta(minutes=15)
    assert config.path == starter


def test_secret_file_contents_are_stripped(starter: Path) -> None:
    config = load_config(starter, env={})
    assert config.sources.salesforce is not None
    auth = config.sources.salesforce.auth
    assert isinstance(auth, SalesforceClientCredentials)
    assert auth.client_secret.get_secret_value() == SF_SECRET


def test_relative_paths_resolve_against_the_config_folder(starter: Path) -> None:
    config = load_config(starter, env={})
    root = starter.parent.parent
    assert config.config_dir == starter.parent
    assert config.segments_dir == starter.parent / "segments"
    assert config.sources.salesforce is not None
    assert config.sources.salesforce.ca_file == root / "sandbox-data/sandbox-ca.pem"
    assert config.sources.usage.files[0].path == root / "sandbox-data/usage/daily/*.parquet"


def test_config_path_defaults_to_smartseg_config_env(starter: Path) -> None:
    config = load_config(env={"SMARTSEG_CONFIG": str(starter)})
    assert config.path == starter


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30), ("5m", 300), ("2h", 7200), ("7d", 604800), (45, 45)],
)
def test_durations_parse_into_timedeltas(text: str | int, expected: int) -> None:
    assert parse_duration(text) == timedelta(seconds=expected)


def test_env_var_secret_resolves_into_a_secret_str(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  stripe:\n    api_key: {env: STRIPE_KEY}\n")
    config = load_config(path, env={"STRIPE_KEY": " sk_test_abcdef123456 "})
    assert config.sources.stripe is not None
    assert config.sources.stripe.api_key.get_secret_value() == "sk_test_abcdef123456"
    assert "sk_test" not in repr(config)


def test_disabled_source_needs_no_secret(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        sources:
          stripe:
            enabled: false
            api_key: {env: NOT_SET_ANYWHERE}
        """,
    )
    config = load_config(path, env={})
    assert config.sources.stripe is not None
    assert isinstance(config.sources.stripe.api_key, UnresolvedSecret)
    with pytest.raises(ConfigError, match="belongs to a disabled source"):
        config.sources.stripe.api_key.get_secret_value()


def test_database_url_env_wins_over_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "database_url: sqlite:///file.db\n")
    config = load_config(path, env={"SMARTSEG_DATABASE_URL": "sqlite:///env.db"})
    assert config.database_url == "sqlite:///env.db"
    assert config.path == path


def test_env_secret_never_appears_in_a_config_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        sources:
          salesforce:
            instance_url: https://127.0.0.1:8443
            auth:
              flow: client_credentials
              client_secret: {env: SF_SECRET}
              client_id: [not, text]
        """,
    )
    error = load_error(path, env={"SF_SECRET": SF_SECRET})
    assert error.key == "sources.salesforce.auth.client_id"
    assert SF_SECRET not in str(error)
    assert SF_SECRET not in repr(error.args)


def test_loaded_config_is_frozen(starter: Path) -> None:
    config = load_config(starter, env={})
    with pytest.raises(ValidationError):
        config.timezone = "Europe/Berlin"  # type: ignore[misc]


def test_config_built_in_code_needs_no_file() -> None:
    config = Config()
    assert config.path is None
    assert config.sources.enabled_names() == ("usage", "nps")
