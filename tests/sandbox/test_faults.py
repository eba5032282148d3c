"""The body-level faults of the sandbox core: an HTML error page, a body cut short, an edited
body. They are what a proxy, a flaky network or an API change put on the wire."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests

from smartseg.sandbox.http import ApiServer, FaultRule, json_response, parse_fault_spec

BODY = {"results": [{"id": "1", "name": "Acme"}, {"id": "2", "name": "Globex"}]}


@pytest.fixture
def server() -> Iterator[ApiServer]:
    api = ApiServer()
    api.router.add("GET", "/things", lambda request: json_response(BODY))
    with api:
        yield api


def test_html_fault_answers_a_proxy_error_page(server: ApiServer) -> None:
    server.faults.add(FaultRule("html", status=503, times=1))
    first = requests.get(server.url + "/things", timeout=5)
    assert (first.status_code, first.headers["Content-Type"]) == (503, "text/html")
    assert "<h1>503 Service Unavailable</h1>" in first.text
    assert requests.get(server.url + "/things", timeout=5).json() == BODY


def test_truncate_fault_sends_a_complete_response_with_half_the_body(server: ApiServer) -> None:
    server.faults.add(FaultRule("truncate"))
    response = requests.get(server.url + "/things", timeout=5)
    whole = json.dumps(BODY, separators=(",", ":"))
    assert (response.status_code, response.text) == (200, whole[: len(whole) // 2])
    assert int(response.headers["Content-Length"]) == len(response.content)


def test_edit_fault_rewrites_the_json_body(server: ApiServer) -> None:
    server.faults.add(
        FaultRule("edit", edit=lambda body: {"results": [{**body["results"][0], "id": None}]})
    )
    assert requests.get(server.url + "/things", timeout=5).json() == {
        "results": [{"id": None, "name": "Acme"}]
    }


@pytest.mark.parametrize(
    "rule", [{"kind": "edit"}, {"kind": "500", "edit": len}, {"kind": "edit", "edit": "text"}]
)
def test_only_an_edit_fault_takes_an_edit_function(rule: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="edit function"):
        FaultRule(**rule)  # type: ignore[arg-type]


def test_the_command_line_form_takes_the_html_status() -> None:
    (rule,) = parse_fault_spec("hubspot.html:status=504:times=2")["hubspot"]
    assert (rule.kind, rule.status, rule.times) == ("html", 504, 2)
    with pytest.raises(ValueError, match="bad option 'edit=x'"):
        parse_fault_spec("hubspot.edit:edit=x")
