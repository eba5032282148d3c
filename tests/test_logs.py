"""Logging: one handler, plain or JSON lines, and no secret ever reaches the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartseg.config import ConfigError, load_config
from smartseg.logs import redact, register_secret, setup_logging

SF_SECRET = "sf-secret-from-env-9f8e7d6c"


@pytest.fixture
def restore_root() -> Iterator[None]:
    """Leave the root logger as the test found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


@pytest.fixture
def loaded_secret(tmp_path: Path) -> str:
    """Load a config whose Salesforce secret comes from the environment; return the secret."""
    path = tmp_path / "smartseg.yaml"
    path.write_text(
        "sources:\n"
        "  salesforce:\n"
        "    instance_url: https://127.0.0.1:8443\n"
        "    auth:\n"
        "      flow: client_credentials\n"
        "      client_id: smartseg-sandbox\n"
        "      client_secret: {env: SMARTSEG_SF_CLIENT_SECRET}\n"
    )
    load_config(path, env={"SMARTSEG_SF_CLIENT_SECRET": SF_SECRET})
    return SF_SECRET


def capture(fmt: str) -> io.StringIO:
    stream = io.StringIO()
    setup_logging("DEBUG", fmt, stream=stream)
    return stream


@pytest.mark.usefixtures("restore_root")
@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_loaded_secret_never_reaches_a_log_line(fmt: str, loaded_secret: str) -> None:
    stream = capture(fmt)
    log = logging.getLogger("smartseg.test")
    log.info("login with %s", loaded_secret, extra={"detail": f"secret={loaded_secret}"})
    output = stream.getvalue()
    assert "login with [REDACTED]" in output
    assert loaded_secret not in output


@pytest.mark.usefixtures("restore_root")
@pytest.mark.parametrize("fmt", ["plain", "json"])
def test_loaded_secret_never_reaches_logged_exception_text(fmt: str, loaded_secret: str) -> None:
    stream = capture(fmt)
    try:
        raise RuntimeError(f"token endpoint rejected {loaded_secret}")
    except RuntimeError:
        logging.getLogger("smartseg.test").exception("pull failed")
    output = stream.getvalue()
    assert "RuntimeError: token endpoint rejected [REDACTED]" in output
    assert loaded_secret not in output


@pytest.mark.usefixtures("restore_root")
def test_loaded_secret_never_reaches_a_config_error(tmp_path: Path, loaded_secret: str) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(f"timezone: {loaded_secret}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == (
        f"{path}, line 1, key timezone: expected an IANA time zone like UTC or Europe/Berlin, "
        "got '[REDACTED]'."
    )


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("session 00D5g000004XyZ1!AQ8AQJ3kP2x.9sdfLKJ_0LKmnb2", "AQ8AQJ3kP2x"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload", "eyJhbGciOiJIUzI1NiJ9"),
        ("stripe key sk_live_51HxAbCdEfGhIjKl", "51HxAbCdEfGhIjKl"),
        ("stripe key sk_test_4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc"),
        ("restricted rk_live_0123456789abcdef", "0123456789abcdef"),
        ("hubspot pat-na1-11111111-2222-3333-4444-555555555555", "11111111-2222"),
        ("GET /login?user=me&password=hunter22&x=1", "hunter22"),
        ("GET /crm?token=abc123def456", "abc123def456"),
        ("secret=s3cr3tv4lue rest", "s3cr3tv4lue"),
        ("call with api_key=AKIAxyz987", "AKIAxyz987"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
        ("headers {'Authorization': 'OAuth 00Dtoken', 'Accept': 'json'}", "00Dtoken"),
        ('{"access_token": "ya29.a0Af", "instance_url": "https://x"}', "ya29.a0Af"),
        ('{"client_secret": "abc\\"def", "id": 1}', "abc"),
        ('{"private_key": "-----BEGIN KEY-----"}', "BEGIN KEY"),
        ("postgresql://smartseg:pgpass99@db:5432/smartseg", "pgpass99"),
    ],
)
def test_redactor_masks_credential_shapes(text: str, token: str) -> None:
    masked = redact(text)
    assert token not in masked
    assert "[REDACTED]" in masked


def test_redactor_leaves_ordinary_text_alone() -> None:
    text = 'segment key=gold_renewal entered by 42 accounts; {"task_key": "k1"}'
    assert redact(text) == text


def test_short_registered_secrets_are_ignored() -> None:
    register_secret("abc12")
    assert redact("abc12 stays") == "abc12 stays"


@pytest.mark.usefixtures("restore_root")
def test_extra_fields_named_like_credentials_are_masked() -> None:
    stream = capture("json")
    logging.getLogger("smartseg.test").info(
        "refreshed", extra={"access_token": "opaque-value-1", "url": "https://h/?apikey=zz9988"}
    )
    event = json.loads(stream.getvalue())
    assert event["access_token"] == "[REDACTED]"
    assert event["url"] == "https://h/?apikey=[REDACTED]"


@pytest.mark.usefixtures("restore_root")
def test_setup_logging_twice_keeps_one_handler() -> None:
    root = logging.getLogger()
    first, second = io.StringIO(), io.StringIO()
    setup_logging("INFO", "plain", stream=first)
    after_first = len(root.handlers)
    setup_logging("DEBUG", "json", stream=second)
    logging.getLogger("smartseg.test").debug("once")
    assert len(root.handlers) == after_first
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1
    assert root.level == logging.DEBUG


@pytest.mark.usefixtures("restore_root")
def test_json_lines_parse_as_json() -> None:
    stream = capture("json")
    log = logging.getLogger("smartseg.pull")
    log.info("pulled %d rows", 120, extra={"source": "hubspot", "stream": "companies"})
    log.warning("slow response")
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [e["msg"] for e in events] == ["pulled 120 rows", "slow response"]
    assert events[0]["level"] == "INFO"
    assert events[0]["logger"] == "smartseg.pull"
    assert events[0]["source"] == "hubspot"
    assert events[0]["ts"].endswith("+00:00")


@pytest.mark.usefixtures("restore_root")
def test_plain_lines_read_time_level_logger_message() -> None:
    stream = capture("plain")
    logging.getLogger("smartseg.sync").info("wrote %d records", 3, extra={"crm": "salesforce"})
    line = stream.getvalue().strip()
    timestamp, level, logger, message = line.split(" ", 3)
    assert timestamp.endswith("+00:00")
    assert (level, logger, message) == ("INFO", "smartseg.sync", "wrote 3 records crm=salesforce")


@pytest.mark.usefixtures("restore_root")
def test_log_format_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMARTSEG_LOG_FORMAT", "json")
    stream = io.StringIO()
    setup_logging(stream=stream)
    logging.getLogger("smartseg").warning("hello")
    assert json.loads(stream.getvalue())["msg"] == "hello"


def test_unknown_log_level_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="log level 'LOUD' is not one of DEBUG"):
        setup_logging("LOUD", "plain", stream=io.StringIO())
