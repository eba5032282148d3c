"""Config loading: the starter loads, and every kind of mistake names file, line, key and fix."""

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


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    error = load_error(tmp_path / "smartseg.yaml")
    assert str(error).startswith(f"{tmp_path / 'smartseg.yaml'}: config file does not exist")
    assert "smartseg init" in str(error)
    assert error.exit_code == 2


def test_bad_indentation_reports_line_and_column(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        sources:
          hubspot:
            base_url: http://127.0.0.1:8444
              access_token: {env: HS_TOKEN}
        """,
    )
    error = load_error(path)
    assert (error.line, error.column) == (4, 19)
    assert str(error).startswith(f"{path}, line 4, column 19: invalid YAML: mapping values")


def test_unclosed_quote_points_at_the_opening_quote(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        timezone: "UTC
        sources:
          hubspot:
            base_url: "http://127.0.0.1:8444"
        """,
    )
    error = load_error(path)
    assert (error.line, error.column) == (1, 11)
    assert "quoted value starting here is not closed" in str(error)


def test_unknown_key_suggests_the_closest_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        timezone: UTC
        sources:
          hubpsot:
            enabled: false
        """,
    )
    error = load_error(path)
    assert str(error) == (
        f"{path}, line 3, key sources.hubpsot: unknown key 'hubpsot'; did you mean 'hubspot'? "
        "Allowed keys: activities, hubspot, nps, salesforce, stripe, usage."
    )


def test_wrong_type_names_key_line_and_expectation(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        sources:
          hubspot:
            base_url: http://127.0.0.1:8444
            access_token: {env: HS_TOKEN}
            rate_limit:
              burst: ten
        """,
    )
    error = load_error(path)
    assert str(error) == (
        f"{path}, line 6, key sources.hubspot.rate_limit.burst: expected an integer, got 'ten'."
    )
    assert error.expected == "an integer"


def test_bad_duration_says_what_a_duration_looks_like(tmp_path: Path) -> None:
    path = write(tmp_path, "worker:\n  lease_ttl: ten minutes\n")
    error = load_error(path)
    assert error.line == 2
    assert error.key == "worker.lease_ttl"
    assert "expected a duration like 30s, 5m, 2h or 7d" in str(error)
    assert "got 'ten minutes'" in str(error)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("30s", 30), ("5m", 300), ("2h", 7200), ("7d", 604800), (45, 45)],
)
def test_durations_parse_into_timedeltas(text: str | int, expected: int) -> None:
    assert parse_duration(text) == timedelta(seconds=expected)


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "timezone: UTC\nworker: {}\ntimezone: Europe/Berlin\n")
    error = load_error(path)
    assert str(error) == (
        f"{path}, line 3, column 1: duplicate key 'timezone': first on line 1, again on line 3; "
        "keep one."
    )


def test_empty_file_is_a_clear_error(tmp_path: Path) -> None:
    path = write(tmp_path, "# only a comment\n")
    assert "the file is empty; expected a mapping of settings" in str(load_error(path))


def test_top_level_list_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "- sources\n- targets\n")
    error = load_error(path)
    assert "expected a mapping of settings at the top level" in str(error)
    assert "got a list" in str(error)


def test_binary_junk_is_not_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "smartseg.yaml"
    path.write_bytes(b"timezone: UTC\n\x89PNG\r\n\x1a\n\x00\xff\xfe")
    error = load_error(path)
    assert error.line == 2
    assert "not a UTF-8 text file (byte 0x89 at offset 14)" in str(error)


def test_oversized_file_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "smartseg.yaml"
    path.write_bytes(b"# " + b"x" * (5 * 1024 * 1024) + b"\n")
    assert "a config file may be at most 5 MiB" in str(load_error(path))


def test_inline_secret_is_refused_without_echoing_it(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        sources:
          stripe:
            api_key: {SF_SECRET}
        """,
    )
    error = load_error(path)
    assert str(error) == (
        f"{path}, line 3, key sources.stripe.api_key: secrets are not allowed inline in config; "
        "use {env: NAME} or {file: PATH} for api_key."
    )


def test_missing_env_var_secret_names_the_variable(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        sources:
          salesforce:
            instance_url: https://127.0.0.1:8443
            auth:
              flow: client_credentials
              client_id: smartseg-sandbox
              client_secret: {env: SMARTSEG_SF_CLIENT_SECRET}
        """,
    )
    error = load_error(path, env={})
    assert str(error) == (
        f"{path}, line 7, key sources.salesforce.auth.client_secret: environment variable "
        "SMARTSEG_SF_CLIENT_SECRET is not set. Set it, or point client_secret at a file with "
        "{file: PATH}."
    )


def test_env_var_secret_resolves_into_a_secret_str(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  stripe:\n    api_key: {env: STRIPE_KEY}\n")
    config = load_config(path, env={"STRIPE_KEY": " sk_test_abcdef123456 "})
    assert config.sources.stripe is not None
    assert config.sources.stripe.api_key.get_secret_value() == "sk_test_abcdef123456"
    assert "sk_test" not in repr(config)


def test_missing_secret_file_names_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  stripe:\n    api_key: {file: secrets/stripe_api_key}\n")
    error = load_error(path)
    assert error.line == 3
    assert error.key == "sources.stripe.api_key"
    assert f"secret file secrets/stripe_api_key does not exist (looked for {tmp_path}" in str(error)


def test_empty_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("\n  \n")
    path = write(tmp_path, "sources:\n  stripe:\n    api_key: {file: key}\n")
    assert f"secret file {tmp_path / 'key'} is empty" in str(load_error(path))


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


def test_error_counts_the_further_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        timezone: Mars/Olympus
        worker:
          health_port: lots
          lease_ttl: forever
        """,
    )
    error = load_error(path)
    assert error.line == 1
    assert error.more == 2
    assert str(error).endswith("got 'Mars/Olympus' (2 more problems in this file).")


def test_unknown_auth_flow_lists_the_flows(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        sources:
          salesforce:
            instance_url: https://127.0.0.1:8443
            auth: {flow: oauth, client_id: x}
        """,
    )
    error = load_error(path)
    assert error.key == "sources.salesforce.auth.flow"
    assert "expected one of 'client_credentials', 'password', 'session', got 'oauth'" in str(error)


def test_missing_required_key_points_at_its_parent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        sources:
          salesforce:
            auth: {flow: session, session_id: {env: SF_SID}}
        """,
    )
    error = load_error(path, env={"SF_SID": "00Dxx0000001gPL!session"})
    assert (
        str(error)
        == f"{path}, line 2, key sources.salesforce.instance_url: required key is missing."
    )


def test_url_must_have_a_scheme_and_host(tmp_path: Path) -> None:
    path = write(tmp_path, "sources:\n  hubspot:\n    base_url: 127.0.0.1:8444\n")
    error = load_error(path)
    assert error.key == "sources.hubspot.base_url"
    assert "expected a URL like https://host" in str(error)


def test_schedule_needs_exactly_one_trigger(tmp_path: Path) -> None:
    path = write(tmp_path, "schedules:\n  pipeline: {cron: '0 6 * * *', interval: 15m}\n")
    error = load_error(path)
    assert error.key == "schedules.pipeline"
    assert "expected one of 'cron', 'interval'" in str(error)


def test_target_needs_its_source_enabled(tmp_path: Path) -> None:
    path = write(tmp_path, "targets:\n  hubspot:\n    objects: {}\n")
    error = load_error(path)
    assert error.line == 2
    assert error.key == "targets.hubspot.enabled"
    assert "needs sources.hubspot configured and enabled" in str(error)


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
