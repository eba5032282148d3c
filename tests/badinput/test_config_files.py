"""Malformed config, rule and playbook files through the real CLI: one case per mistake.

Each case writes its files into a config folder, runs one command on it and pins the exit code
(2 for a file a person must fix, 1 for a database that is not ready yet), the message fragment
naming the file, line and key, and that no traceback is printed. `{dir}` in a message is the
config folder. Config files are capped at 5 MiB (`MAX_CONFIG_BYTES`): anything larger is refused
from its size alone, before a byte is read, so a wrong file never hangs a run or fills memory.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from smartseg.config.yamlfile import MAX_CONFIG_BYTES

from .conftest import Cli

HS_TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"
GOLD = "segments:\n  - {key: gold, name: Gold, when: \"edition = 'Gold'\"}\n"
PLAYBOOK = """playbooks:
  - key: demo
    name: Demo
    segment: gold
    task: {subject: "Call {account.name}", body: "Why: {why}", due_in: 2d, priority: High}
"""
ENORMOUS = 50 * 1024 * 1024


@dataclass(frozen=True)
class Sparse:
    """A file of `size` bytes written without writing them (a hole), so 50 MB costs nothing."""

    size: int


Content = str | bytes | Sparse


@dataclass(frozen=True)
class Case:
    """Files to write (relative to the config folder), the command, and what a person sees.

    `config` is the file passed to --config; smartseg.yaml defaults to a SQLite store in the
    working folder when a case does not write its own.
    """

    id: str
    files: Mapping[str, Content]
    command: tuple[str, ...]
    message: str
    code: int = 2
    config: str = "smartseg.yaml"
    env: Mapping[str, str] = field(default_factory=dict)


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


CONFIG = [
    Case(
        "missing-config-file",
        {},
        ("status",),
        "{dir}/absent.yaml: config file does not exist. Run `smartseg init` to create a starter "
        "config, or point SMARTSEG_CONFIG at your smartseg.yaml.",
        config="absent.yaml",
    ),
    Case(
        "config-is-a-folder",
        {"smartseg.yaml/keep": ""},
        ("segments", "check"),
        "{dir}/smartseg.yaml: config file is a folder, not a file.",
    ),
    Case(
        "yaml-bad-indentation",
        {
            "smartseg.yaml": _yaml("""
                sources:
                  hubspot:
                    base_url: http://127.0.0.1:8444
                      access_token: {env: HS_TOKEN}
                """)
        },
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 4, column 19: invalid YAML: mapping values are not allowed here",
    ),
    Case(
        "yaml-unclosed-flow-list",
        {"smartseg.yaml": "sources:\n  usage: {files: [\n"},
        ("pull",),
        "{dir}/smartseg.yaml, line 3, column 1: invalid YAML: expected the node content, but "
        "found '<stream end>' (while parsing a flow node on line 3).",
    ),
    Case(
        "yaml-tab-indentation",
        {"smartseg.yaml": "sources:\n\tusage: {}\n"},
        ("evaluate",),
        "{dir}/smartseg.yaml, line 2, column 1: invalid YAML: found character '\\t' that cannot "
        "start any token.",
    ),
    Case(
        "yaml-unclosed-quote",
        {
            "smartseg.yaml": 'timezone: "UTC\nsources:\n  hubspot:\n'
            '    base_url: "http://127.0.0.1:8444"\n'
        },
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 1, column 11: invalid YAML: a quoted value starting here is "
        "not closed on its line; is a quote missing?",
    ),
    Case(
        "yaml-nested-too-deeply",
        {"smartseg.yaml": "sources: " + "[" * 500 + "]" * 500 + "\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml: invalid YAML: lists or mappings are nested too deeply to read.",
    ),
    Case(
        "yaml-python-tag",
        {"smartseg.yaml": "timezone: !!python/object/apply:os.system ['echo pwned']\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 1, column 11: could not determine a constructor for the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system'.",
    ),
    Case(
        "unknown-key-did-you-mean",
        {"smartseg.yaml": "timezone: UTC\nsources:\n  hubpsot:\n    enabled: false\n"},
        ("status",),
        "{dir}/smartseg.yaml, line 3, key sources.hubpsot: unknown key 'hubpsot'; did you mean "
        "'hubspot'? Allowed keys: activities, hubspot, nps, salesforce, stripe, usage.",
    ),
    Case(
        "unknown-top-level-key",
        {"smartseg.yaml": "timezne: UTC\n"},
        ("evaluate",),
        "{dir}/smartseg.yaml, line 1, key timezne: unknown key 'timezne'; did you mean 'timezone'?",
    ),
    Case(
        "wrong-type-integer",
        {
            "smartseg.yaml": _yaml("""
                sources:
                  hubspot:
                    base_url: http://127.0.0.1:8444
                    access_token: {env: HS_TOKEN}
                    rate_limit:
                      burst: ten
                """)
        },
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 6, key sources.hubspot.rate_limit.burst: expected an integer, "
        "got 'ten'.",
        env={"HS_TOKEN": HS_TOKEN},
    ),
    Case(
        "wrong-type-list-for-port",
        {"smartseg.yaml": "worker:\n  health_port: [9464]\n"},
        ("evaluate",),
        "{dir}/smartseg.yaml, line 2, key worker.health_port: expected an integer, got a list.",
    ),
    Case(
        "wrong-type-duration",
        {"smartseg.yaml": "worker:\n  lease_ttl: ten minutes\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 2, key worker.lease_ttl: expected a duration like 30s, 5m, 2h "
        "or 7d (or whole seconds), got 'ten minutes'.",
    ),
    Case(
        "more-problems-are-counted",
        {
            "smartseg.yaml": _yaml("""
                timezone: Mars/Olympus
                worker:
                  health_port: lots
                  lease_ttl: forever
                """)
        },
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 1, key timezone: expected an IANA time zone like UTC or "
        "Europe/Berlin, got 'Mars/Olympus' (2 more problems in this file).",
    ),
    Case(
        "missing-required-key",
        {
            "smartseg.yaml": "sources:\n  salesforce:\n    auth: {flow: session, session_id: "
            "{env: SF_SID}}\n"
        },
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 2, key sources.salesforce.instance_url: required key is "
        "missing.",
        env={"SF_SID": "00Dxx0000001gPL!session"},
    ),
    Case(
        "unknown-auth-flow",
        {
            "smartseg.yaml": _yaml("""
                sources:
                  salesforce:
                    instance_url: https://127.0.0.1:8443
                    auth: {flow: oauth, client_id: x}
                """)
        },
        ("pull",),
        "{dir}/smartseg.yaml, line 4, key sources.salesforce.auth.flow: expected one of "
        "'client_credentials', 'password', 'session', got 'oauth'.",
    ),
    Case(
        "url-without-scheme",
        {"smartseg.yaml": "sources:\n  hubspot:\n    base_url: 127.0.0.1:8444\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 3, key sources.hubspot.base_url: expected a URL like "
        "https://host or http://127.0.0.1:8444, got '127.0.0.1:8444'",
    ),
    Case(
        "cron-value-out-of-range",
        {"smartseg.yaml": "schedules:\n  pipeline: {cron: '61 * * * *'}\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 2, key schedules.pipeline.cron: expected a crontab line like "
        "\"0 6 * * 1-5\", got '61 * * * *' (Error validating expression '61': the last value "
        "(61) is higher than the maximum value (59)).",
    ),
    Case(
        "cron-not-a-crontab",
        {"smartseg.yaml": "schedules:\n  nightly: {cron: every day at 6}\n"},
        ("evaluate",),
        "{dir}/smartseg.yaml, line 2, key schedules.nightly.cron: expected a crontab line like "
        "\"0 6 * * 1-5\", got 'every day at 6' (Wrong number of fields; got 4, expected 5).",
    ),
    Case(
        "schedule-with-two-triggers",
        {"smartseg.yaml": "schedules:\n  pipeline: {cron: '0 6 * * *', interval: 15m}\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 2, key schedules.pipeline: expected one of 'cron', "
        "'interval', got a mapping.",
    ),
    Case(
        "target-without-its-source",
        {"smartseg.yaml": "targets:\n  hubspot:\n    objects: {}\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 2, key targets.hubspot.enabled: writing to hubspot needs "
        "sources.hubspot configured and enabled",
    ),
    Case(
        "database-url-not-a-url",
        {"smartseg.yaml": "database_url: not a url\n"},
        ("evaluate",),
        "{dir}/smartseg.yaml, line 1, key database_url: expected a database URL like "
        "sqlite:///smartseg.db or postgresql+psycopg://..., got 'not a url'.",
    ),
    Case(
        "database-url-unsupported",
        {"smartseg.yaml": "database_url: mysql://smartseg@db.internal/smartseg\n"},
        ("evaluate",),
        "{dir}/smartseg.yaml, line 1, key database_url: expected a sqlite:// or postgresql:// "
        "database URL, got 'mysql://smartseg@db.internal/smartseg'.",
    ),
    Case(
        "database-url-from-env-unsupported",
        {},
        ("status",),
        "environment variable SMARTSEG_DATABASE_URL is not a SQLite or PostgreSQL URL; expected "
        "something like sqlite:///smartseg.db or postgresql+psycopg://user@host/db.",
        env={"SMARTSEG_DATABASE_URL": "mysql://admin:pw-0451@db.internal/smartseg"},
    ),
    Case(
        "database-unreachable",
        {"smartseg.yaml": "database_url: postgresql://smartseg:pw-0451@127.0.0.1:1/smartseg\n"},
        ("pull",),
        "cannot open the database postgresql+psycopg://smartseg:[REDACTED]@127.0.0.1:1/smartseg "
        '(connection failed: connection to server at "127.0.0.1", port 1 failed: Connection '
        "refused). Check database_url",
    ),
    Case(
        "database-folder-missing",
        {"smartseg.yaml": "database_url: sqlite:///no/such/folder/store.db\n"},
        ("evaluate",),
        "cannot open the database sqlite:///no/such/folder/store.db (unable to open database "
        "file).",
    ),
    Case(
        "database-never-migrated",
        {"smartseg.yaml": "database_url: sqlite:///fresh.db\n", "segments/a.yaml": GOLD},
        ("evaluate",),
        "the database sqlite:///fresh.db has no smartseg schema yet; run `smartseg db upgrade`",
        code=1,
    ),
    Case(
        "duplicate-top-level-key",
        {"smartseg.yaml": "timezone: UTC\nworker: {}\ntimezone: Europe/Berlin\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 3, column 1: duplicate key 'timezone': first on line 1, "
        "again on line 3; keep one.",
    ),
    Case(
        "duplicate-nested-key",
        {"smartseg.yaml": "worker:\n  health_port: 9464\n  health_port: 9465\n"},
        ("pull",),
        "{dir}/smartseg.yaml, line 3, column 3: duplicate key 'health_port': first on line 2, "
        "again on line 3; keep one.",
    ),
    Case(
        "empty-file",
        {"smartseg.yaml": ""},
        ("segments", "check"),
        "{dir}/smartseg.yaml: the file is empty; expected a mapping of settings such as "
        "`sources:` (run `smartseg init` for a starter config).",
    ),
    Case(
        "only-a-comment",
        {"smartseg.yaml": "# only a comment\n"},
        ("evaluate",),
        "{dir}/smartseg.yaml: the file is empty; expected a mapping of settings",
    ),
    Case(
        "top-level-list",
        {"smartseg.yaml": "- sources\n- targets\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 1: expected a mapping of settings at the top level (key: "
        "value lines), got a list.",
    ),
    Case(
        "binary-junk",
        {"smartseg.yaml": b"timezone: UTC\n\x89PNG\r\n\x1a\n\x00\xff\xfe"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 2: not a UTF-8 text file (byte 0x89 at offset 14); a config "
        "file must be YAML text.",
    ),
    Case(
        "nul-character",
        {"smartseg.yaml": "timezone: UTC\nworker: {}\x00\n"},
        ("evaluate",),
        "{dir}/smartseg.yaml, line 2: invalid YAML: character U+0000 is not allowed in a YAML "
        "file (binary data, or text saved as UTF-16?).",
    ),
    Case(
        "latin-1-bytes",
        {"smartseg.yaml": "timezone: UTC\n# Zürich office\n".encode("latin-1")},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 2: not a UTF-8 text file (byte 0xfc at offset 17)",
    ),
    Case(
        "utf-16-text",
        {"smartseg.yaml": "timezone: UTC\n".encode("utf-16")},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 1: not a UTF-8 text file (byte 0xff at offset 0)",
    ),
    Case(
        "enormous-file",
        {"smartseg.yaml": Sparse(ENORMOUS)},
        ("pull",),
        "{dir}/smartseg.yaml: file is 50.0 MiB; a config file may be at most 5 MiB (is this the "
        "right file?).",
    ),
    Case(
        "just-over-the-size-limit",
        {"smartseg.yaml": b"# " + b"x" * MAX_CONFIG_BYTES + b"\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml: file is 5.0 MiB; a config file may be at most 5 MiB",
    ),
    Case(
        "secret-inline",
        {"smartseg.yaml": "sources:\n  stripe:\n    api_key: sf-client-secret-0123456789\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 3, key sources.stripe.api_key: secrets are not allowed inline "
        "in config; use {env: NAME} or {file: PATH} for api_key.",
    ),
    Case(
        "secret-env-var-missing",
        {
            "smartseg.yaml": _yaml("""
                sources:
                  salesforce:
                    instance_url: https://127.0.0.1:8443
                    auth:
                      flow: client_credentials
                      client_id: smartseg-sandbox
                      client_secret: {env: SMARTSEG_SF_CLIENT_SECRET}
                """)
        },
        ("pull",),
        "{dir}/smartseg.yaml, line 7, key sources.salesforce.auth.client_secret: environment "
        "variable SMARTSEG_SF_CLIENT_SECRET is not set. Set it, or point client_secret at a "
        "file with {file: PATH}.",
    ),
    Case(
        "secret-file-missing",
        {"smartseg.yaml": "sources:\n  stripe:\n    api_key: {file: secrets/stripe_api_key}\n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 3, key sources.stripe.api_key: secret file "
        "secrets/stripe_api_key does not exist (looked for {dir}/secrets/stripe_api_key).",
    ),
    Case(
        "secret-file-empty",
        {"smartseg.yaml": "sources:\n  stripe:\n    api_key: {file: key}\n", "key": "\n  \n"},
        ("segments", "check"),
        "{dir}/smartseg.yaml, line 3, key sources.stripe.api_key: secret file {dir}/key is empty.",
    ),
]

GOLD_CONFIG = {"segments/a.yaml": GOLD}

RULES = [
    Case(
        "rules-yaml-syntax",
        {"segments/rules.yaml": "segments: [\n"},
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 2, column 1: invalid YAML: expected the node content, "
        "but found '<stream end>'",
    ),
    Case(
        "rules-unknown-key-did-you-mean",
        {"segments/rules.yaml": "segments:\n  - {key: a, name: A, when: 'seats > 1', levle: x}\n"},
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 2, key segments[0].levle: unknown key 'levle'; did you "
        "mean 'level'? Allowed keys: catalogue, description, exclude, include, key, level, name, "
        "static, when.",
    ),
    Case(
        "rules-unknown-key",
        {
            "segments/rules.yaml": "segments:\n  - {key: a, name: A, when: 'seats > 1', colour: "
            "red}\n"
        },
        ("evaluate",),
        "{dir}/segments/rules.yaml, line 2, key segments[0].colour: unknown key 'colour'.",
    ),
    Case(
        "rules-top-level-typo",
        {"segments/rules.yaml": "segmnets:\n  - {key: a, name: A, when: 'seats > 1'}\n"},
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 1, key segmnets: unknown key 'segmnets'; did you mean "
        "'segments'? Allowed keys: metrics, segments.",
    ),
    Case(
        "rules-unknown-level",
        {
            "segments/rules.yaml": "segments:\n  - {key: a, name: A, level: company, when: 'seats "
            "> 1'}\n"
        },
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 2, key segments[0].level: expected one of 'account', "
        "'contact', got 'company'.",
    ),
    Case(
        "rules-bad-key",
        {"segments/rules.yaml": "segments:\n  - {key: Bad Key, name: A, when: 'seats > 1'}\n"},
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 2, key segments[0].key: expected a name of lower-case "
        "letters, digits and _, starting with a letter (at most 80 characters), got 'Bad Key'.",
    ),
    Case(
        "rules-wrong-type-bool",
        {
            "segments/rules.yaml": "segments:\n  - {key: a, name: A, when: 'seats > 1', static: "
            "maybe}\n"
        },
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 2, key segments[0].static: expected true or false, got "
        "'maybe'.",
    ),
    Case(
        "rules-mapping-not-list",
        {"segments/rules.yaml": "segments:\n  key: a\n"},
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 1, key segments: expected a list, got a mapping.",
    ),
    Case(
        "rules-no-when-no-include",
        {"segments/rules.yaml": "segments:\n  - {key: a, name: A}\n"},
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 2, key segments[0]: segment 'a' has neither a `when:` "
        "rule nor an `include:` list; add one.",
    ),
    Case(
        "rules-blank-when",
        {"segments/rules.yaml": "segments:\n  - {key: a, name: A, when: '  '}\n"},
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 2, key segments[0].when: the rule is empty; write a "
        "condition or leave `when:` out.",
    ),
    Case(
        "rules-duplicate-yaml-key",
        {
            "segments/rules.yaml": "segments:\n  - key: a\n    name: A\n    key: b\n    when: "
            "'seats > 1'\n"
        },
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 4, column 5: duplicate key 'key': first on line 2, "
        "again on line 4; keep one.",
    ),
    Case(
        "rules-segment-key-used-twice",
        {
            "segments/rules.yaml": "segments:\n  - {key: a, name: A, when: 'seats > 1'}\n"
            "  - {key: a, name: B, when: 'seats > 2'}\n"
        },
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 3, key segments[1].key: segment key 'a' is used twice "
        "(first in {dir}/segments/rules.yaml, line 2); segment keys must be unique.",
    ),
    Case(
        "rules-segment-key-in-two-files",
        {"segments/a.yaml": GOLD, "segments/b.yaml": GOLD},
        ("evaluate",),
        "{dir}/segments/b.yaml, line 2, key segments[0].key: segment key 'gold' is used twice "
        "(first in {dir}/segments/a.yaml, line 2)",
    ),
    Case(
        "rules-empty-file",
        {"segments/rules.yaml": ""},
        ("segments", "check"),
        "{dir}/segments/rules.yaml: the file is empty; expected `segments:` (a list of rules) "
        "or `metrics:`.",
    ),
    Case(
        "rules-binary-junk",
        {"segments/rules.yaml": b"\x00\x01\x02\xff\xfe"},
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 1: not a UTF-8 text file (byte 0xff at offset 3)",
    ),
    Case(
        "rules-enormous-file",
        {"segments/rules.yaml": Sparse(ENORMOUS)},
        ("evaluate",),
        "{dir}/segments/rules.yaml: file is 50.0 MiB; a config file may be at most 5 MiB",
    ),
    Case(
        "rules-unknown-field",
        {"segments/rules.yaml": "segments:\n  - {key: a, name: A, when: \"edtion = 'Gold'\"}\n"},
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 2, column 30, rule a: unknown field 'edtion' for "
        "accounts; did you mean 'edition'?\n    edtion = 'Gold'\n    ^^^^^^",
    ),
    Case(
        "rules-syntax-error",
        {"segments/rules.yaml": "segments:\n  - {key: a, name: A, when: 'seats > 3 seats < 5'}\n"},
        ("evaluate",),
        "{dir}/segments/rules.yaml, line 2, column 40, rule a: expected an operator, 'and' or "
        "'or' but found 'seats'",
    ),
    Case(
        "rules-unknown-segment-reference",
        {
            "segments/rules.yaml": GOLD
            + "  - {key: renewing, name: R, when: \"in_segment('gld')\"}\n"
        },
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 3, column 48, rule renewing: unknown segment 'gld'; "
        "did you mean 'gold'?",
    ),
    Case(
        "rules-cycle",
        {
            "segments/rules.yaml": "segments:\n"
            "  - {key: a, name: A, when: \"in_segment('b')\"}\n"
            "  - {key: b, name: B, when: \"in_segment('c') and seats > 1\"}\n"
            "  - {key: c, name: C, when: \"in_segment('a')\"}\n"
        },
        ("evaluate",),
        "{dir}/segments/rules.yaml, line 2, column 30, rule a: segments refer to each other in a "
        "circle: a -> b -> c -> a; break the circle by removing one in_segment().",
    ),
    Case(
        "rules-refers-to-itself",
        {"segments/rules.yaml": "segments:\n  - {key: a, name: A, when: \"in_segment('a')\"}\n"},
        ("segments", "check"),
        "{dir}/segments/rules.yaml, line 2, column 30, rule a: segments refer to each other in a "
        "circle: a -> a",
    ),
]

PLAYBOOKS = [
    Case(
        "playbook-unknown-segment",
        {**GOLD_CONFIG, "playbooks/p.yaml": PLAYBOOK.replace("segment: gold", "segment: gld")},
        ("segments", "check"),
        "{dir}/playbooks/p.yaml, line 4, key playbooks[0].segment: playbook 'demo' names unknown "
        "segment 'gld'; did you mean 'gold'?",
    ),
    Case(
        "playbook-unknown-segment-at-sync",
        {**GOLD_CONFIG, "playbooks/p.yaml": PLAYBOOK.replace("segment: gold", "segment: silver")},
        ("sync", "--dry-run"),
        "{dir}/playbooks/p.yaml, line 4, key playbooks[0].segment: playbook 'demo' names unknown "
        "segment 'silver'.",
    ),
    Case(
        "playbook-unknown-placeholder",
        {**GOLD_CONFIG, "playbooks/p.yaml": PLAYBOOK.replace("{account.name}", "{account.nmae}")},
        ("segments", "check"),
        "{dir}/playbooks/p.yaml, line 5, key playbooks[0].task.subject: unknown placeholder "
        "{account.nmae}; did you mean 'name'?",
    ),
    Case(
        "playbook-placeholder-typo",
        {**GOLD_CONFIG, "playbooks/p.yaml": PLAYBOOK.replace("{account.name}", "{acount.name}")},
        ("sync", "--dry-run"),
        "{dir}/playbooks/p.yaml, line 5, key playbooks[0].task.subject: unknown placeholder "
        "{acount.name}; did you mean 'account'?",
    ),
    Case(
        "playbook-format-options",
        {**GOLD_CONFIG, "playbooks/p.yaml": PLAYBOOK.replace("{account.name}", "{account.name!r}")},
        ("segments", "check"),
        "{dir}/playbooks/p.yaml, line 5, key playbooks[0].task.subject: placeholder "
        "{account.name} takes no format options.",
    ),
    Case(
        "playbook-unknown-priority",
        {**GOLD_CONFIG, "playbooks/p.yaml": PLAYBOOK.replace("priority: High", "priority: Urgent")},
        ("segments", "check"),
        "{dir}/playbooks/p.yaml, line 5, key playbooks[0].task.priority: expected one of 'High', "
        "'Normal', 'Low', got 'Urgent'.",
    ),
    Case(
        "playbook-bad-duration",
        {**GOLD_CONFIG, "playbooks/p.yaml": PLAYBOOK.replace("due_in: 2d", "due_in: soon")},
        ("segments", "check"),
        "{dir}/playbooks/p.yaml, line 5, key playbooks[0].task.due_in: expected a duration like "
        "30s, 5m, 2h or 7d (or whole seconds), got 'soon'.",
    ),
    Case(
        "playbook-unknown-key",
        {
            **GOLD_CONFIG,
            "playbooks/p.yaml": PLAYBOOK.replace("name: Demo", "name: Demo\n    colour: red"),
        },
        ("segments", "check"),
        "{dir}/playbooks/p.yaml, line 4, key playbooks[0].colour: unknown key 'colour'.",
    ),
    Case(
        "playbook-empty-file",
        {**GOLD_CONFIG, "playbooks/p.yaml": "\n"},
        ("sync", "--dry-run"),
        "{dir}/playbooks/p.yaml: the file is empty; expected `playbooks:` (a list of playbooks).",
    ),
]

CASES = [*CONFIG, *RULES, *PLAYBOOKS]


def _write(folder: Path, files: Mapping[str, Content]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "segments").mkdir(exist_ok=True)
    if not any(name.startswith("smartseg.yaml") for name in files):
        (folder / "smartseg.yaml").write_text("database_url: sqlite:///store.db\n")
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Sparse):
            with path.open("wb") as handle:
                handle.truncate(content.size)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_message_names_the_file_and_the_spot(case: Case, tmp_path: Path, cli: Cli) -> None:
    folder = tmp_path / "config"
    _write(folder, case.files)
    done = cli("--config", str(folder / case.config), *case.command, env=case.env)
    expected = "error: " + case.message.replace("{dir}", str(folder))
    assert (done.code, "Traceback" in done.text) == (case.code, False), done.text
    assert expected in done.err


def test_debug_shows_the_traceback_of_the_same_error(tmp_path: Path, cli: Cli) -> None:
    _write(tmp_path / "config", {"smartseg.yaml": "sources: [\n"})
    done = cli("--debug", "--config", str(tmp_path / "config/smartseg.yaml"), "status")
    assert done.code == 2
    assert "Traceback (most recent call last)" in done.err
    assert "invalid YAML" in done.err


def test_a_clean_folder_with_playbooks_checks_out(tmp_path: Path, cli: Cli) -> None:
    _write(tmp_path / "config", {**GOLD_CONFIG, "playbooks/p.yaml": PLAYBOOK})
    done = cli("--config", str(tmp_path / "config/smartseg.yaml"), "segments", "check")
    assert (done.code, done.out.strip()) == (
        0,
        "1 segments and 0 metrics in 1 files are valid, and 1 playbooks.",
    )
