"""The fake HubSpot API, driven through the real hubspot-api-client over sockets."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.associations.v4 import AssociationSpec
from hubspot.crm.associations.v4 import BatchInputPublicAssociationMultiPost as V4BatchCreate
from hubspot.crm.associations.v4 import (
    BatchInputPublicFetchAssociationsBatchRequest as V4BatchRead,
)
from hubspot.crm.associations.v4 import PublicAssociationMultiPost as V4Post
from hubspot.crm.associations.v4 import PublicFetchAssociationsBatchRequest as V4Fetch
from hubspot.crm.associations.v4 import PublicObjectId as V4Id
from hubspot.crm.companies import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInput,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.tasks import AssociationSpec as TaskAssociationSpec
from hubspot.crm.objects.tasks import PublicAssociationsForObject, PublicObjectId
from hubspot.crm.objects.tasks import SimplePublicObjectInputForCreate as TaskInput
from hubspot.crm.properties import OptionInput, PropertyCreate, PropertyUpdate

from smartseg.sandbox.http import FaultRule
from smartseg.sandbox.hubspot import OWNER_ID_BASE, HubSpotServer
from smartseg.sandbox.salesforce.load import LoadedIds
from smartseg.sandbox.world import Activity, Company, Opportunity, Person, Rep, Ticket, World

TOKEN = HubSpotServer.DEFAULT_TOKEN
ANCHOR = dt.date(2026, 6, 1)
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def _company(idx: int, **overrides: object) -> Company:
    fields: dict[str, object] = dict(
        idx=idx, name=f"Company {idx}", domain=f"company{idx}.com", workspace_id=f"ws-{idx:05d}",
        industry="Software" if idx % 2 else "Healthcare", region="NA", country="United States",
        employees=50 + idx, status="Customer", edition="Gold" if idx % 3 == 0 else "Silver",
        product="Analytics", contract_type="Annual", opt_out_clause=False,
        start_date=dt.date(2024, 1, 1), renewal_date=dt.date(2026, 12, 1), trial_end_date=None,
        churn_date=None, churn_reason=None, seats=10, csm_sentiment="Green", product_fit="Good",
        lifecycle_stage="Adoption", onboarding_status="Completed", onboarding_step=5,
        use_case="Reporting", purchase_benefit=None, benefit_achieved_date=None,
        growth_potential="High", health_score=80, reference_account=False, strategic=False,
        owner_rep=0, csm_rep=1, billing_interval="year", unit_amount_cents=10_000,
        discount_percent=None, subscription_status="active",
        created_at=T0 + dt.timedelta(days=idx),
    )  # fmt: skip
    fields.update(overrides)
    return Company(**fields)  # type: ignore[arg-type]


def _person(idx: int, company: int, **overrides: object) -> Person:
    fields: dict[str, object] = dict(
        idx=idx, company=company, first_name=f"First{idx}", last_name=f"Last{idx}",
        email=f"person{idx}@company{company}.com", title="Director", role="Champion",
        is_user=True, created_at=T0 + dt.timedelta(days=idx % 300, minutes=idx),
    )  # fmt: skip
    fields.update(overrides)
    return Person(**fields)  # type: ignore[arg-type]


def make_world(companies: int = 25, people_per_company: int = 2) -> World:
    """A small world: company 3 is not in HubSpot, company 4 is not in Salesforce."""
    reps = [
        Rep(0, "Ada", "Owner", "ada@vendor.com", "AE"),
        Rep(1, "Cy", "Csm", "cy@vendor.com", "CSM"),
        Rep(2, "Old", "Rep", "old@vendor.com", "CSM", active=False),
    ]
    comps = [
        _company(i, in_hubspot=i != 3, in_salesforce=i != 4, industry="Agriculture" if i == 5 else
                 ("Software" if i % 2 else "Healthcare"))
        for i in range(companies)
    ]  # fmt: skip
    people = [
        _person(c * people_per_company + k, c, role="Decision Maker" if k == 0 else "User")
        for c in range(companies)
        for k in range(people_per_company)
    ]
    at = dt.datetime(2026, 5, 1, 15, tzinfo=dt.UTC)
    activities = [
        Activity(0, 0, 0, "qbr", "completed", at, 60, 1, "Q2 business review"),
        Activity(1, 0, 1, "call", "completed", at, 15, 1, "Check-in call"),
        Activity(2, 1, None, "email", "completed", at, 0, 1, "Renewal reminder"),
        Activity(3, 1, 2, "meeting", "cancelled", at, 30, 1, "Kick-off"),
    ]
    return World(
        seed=1, anchor=ANCHOR, reps=reps, companies=comps, people=people,
        opportunities=[Opportunity(0, 0, "Acme renewal", "Renewal", "Closed Won", 12000.0,
                                   dt.date(2026, 3, 1), 0)],
        activities=activities,
        tickets=[Ticket(0, 0, 0, "Bug", "High", "Working", "sso", "SSO broken",
                        dt.datetime(2026, 5, 2, tzinfo=dt.UTC), None)],
        nps=[],
    )  # fmt: skip


@pytest.fixture(scope="module")
def hs_server() -> Iterator[HubSpotServer]:
    """A portal with generous limits, for behaviour other than rate limiting."""
    server = HubSpotServer(make_world(), burst_limit=100_000, search_per_second=1_000)
    with server:
        yield server


@pytest.fixture(autouse=True)
def hs_clean_faults(hs_server: HubSpotServer) -> Iterator[None]:
    yield
    hs_server.faults.clear()
    hs_server.reset_token()


@pytest.fixture(scope="module")
def hs_http() -> requests.Session:
    """Raw HTTP for what the SDK does not expose; ignores the machine's proxy and CA env vars."""
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture(scope="module")
def hs_client(hs_server: HubSpotServer) -> HubSpot:
    return HubSpot(access_token=TOKEN, host=hs_server.url)


@pytest.fixture
def hs_limited() -> Iterator[HubSpotServer]:
    """A fresh portal with HubSpot's default limits (100 per 10 s, 5 searches per second)."""
    with HubSpotServer(make_world(companies=5)) as server:
        yield server


def _company_id(idx: int) -> str:
    return str(20_000_000_000 + idx + 1)


def _contact_id(idx: int) -> str:
    return str(100_000_000 + idx + 1)


# Reading ------------------------------------------------------------------------------------


def test_get_page_follows_after_cursor_and_get_all_returns_every_company(
    hs_client: HubSpot,
) -> None:
    first = hs_client.crm.companies.basic_api.get_page(limit=10, properties=["name", "edition"])
    second = hs_client.crm.companies.basic_api.get_page(limit=10, after=first.paging.next.after)
    everything = hs_client.crm.companies.get_all()
    assert [c.id for c in first.results] == [
        _company_id(i) for i in (0, 1, 2, 4, 5, 6, 7, 8, 9, 10)
    ]
    assert second.results[0].id == _company_id(11)
    assert first.results[0].properties["edition"] == "Gold"
    assert len({c.id for c in everything}) == 24  # company 3 is not in HubSpot


def test_list_limit_above_100_is_refused(hs_client: HubSpot) -> None:
    with pytest.raises(ApiException) as caught:
        hs_client.crm.companies.basic_api.get_page(limit=101)
    assert caught.value.status == 400
    assert '"category":"VALIDATION_ERROR"' in caught.value.body


def test_loaded_company_carries_mapped_properties_and_salesforce_id(hs_client: HubSpot) -> None:
    props = ["industry", "salesforce_account_id", "workspace_id", "hubspot_owner_id", "country"]
    four = hs_client.crm.companies.basic_api.get_by_id(_company_id(4), properties=props)
    one = hs_client.crm.companies.basic_api.get_by_id(_company_id(1), properties=props)
    assert four.properties["salesforce_account_id"] is None
    assert one.properties["salesforce_account_id"] == LoadedIds().of("company", 1)
    assert one.properties["industry"] == "COMPUTER_SOFTWARE"
    assert one.properties["hubspot_owner_id"] == str(OWNER_ID_BASE)
    assert one.properties["workspace_id"] == "ws-00001"


def test_contacts_carry_the_salesforce_servers_contact_ids(hs_client: HubSpot) -> None:
    contact = hs_client.crm.contacts.basic_api.get_by_id(
        _contact_id(3), properties=["salesforce_contact_id", "contact_role"]
    )
    assert contact.properties["salesforce_contact_id"] == LoadedIds().of("person", 3)
    assert contact.properties["contact_role"] == "User"


def test_unknown_world_industry_becomes_an_option(hs_client: HubSpot) -> None:
    prop = hs_client.crm.properties.core_api.get_by_name("companies", "industry")
    assert "AGRICULTURE" in {o.value for o in prop.options}


def test_missing_token_is_refused_with_invalid_authentication(
    hs_server: HubSpotServer, hs_http: requests.Session
) -> None:
    answer = hs_http.get(f"{hs_server.url}/crm/v3/objects/companies", timeout=5)
    assert answer.status_code == 401
    assert answer.json()["category"] == "INVALID_AUTHENTICATION"
    assert "correlationId" in answer.json()


def test_expire_fault_invalidates_token_until_reset(
    hs_server: HubSpotServer, hs_client: HubSpot, hs_http: requests.Session
) -> None:
    hs_server.faults.add(FaultRule(kind="expire", times=1))
    with pytest.raises(ApiException) as caught:
        hs_client.crm.companies.basic_api.get_page(limit=1)
    assert caught.value.status == 401
    with pytest.raises(ApiException):
        hs_client.crm.companies.basic_api.get_page(limit=1)
    hs_http.post(f"{hs_server.url}/_sandbox/token", timeout=5).raise_for_status()
    assert hs_client.crm.companies.basic_api.get_page(limit=1).results


def test_contact_lists_primary_and_unlabeled_company_associations(hs_client: HubSpot) -> None:
    contact = hs_client.crm.contacts.basic_api.get_by_id(_contact_id(0), associations=["companies"])
    links = contact.associations["companies"].results
    assert {(a.id, a.type) for a in links} == {
        (_company_id(0), "contact_to_company"),
        (_company_id(0), "contact_to_company_unlabeled"),
    }


def test_meetings_include_qbrs_with_outcome(hs_client: HubSpot) -> None:
    meetings = hs_client.crm.objects.meetings.basic_api.get_page(
        properties=["hs_activity_type", "hs_meeting_outcome"]
    )
    kinds = {
        (m.properties["hs_activity_type"], m.properties["hs_meeting_outcome"])
        for m in meetings.results
    }
    assert kinds == {("QBR", "COMPLETED"), ("Check-in", "CANCELED")}


# Writing ------------------------------------------------------------------------------------


def test_batch_of_101_inputs_is_refused(hs_client: HubSpot) -> None:
    inputs = [SimplePublicObjectBatchInput(id=_company_id(0), properties={}) for _ in range(101)]
    with pytest.raises(ApiException) as caught:
        hs_client.crm.companies.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs))
    assert caught.value.status == 400


def test_batch_update_reports_failed_items_in_a_207(hs_client: HubSpot) -> None:
    result = hs_client.crm.companies.batch_api.update(BatchInputSimplePublicObjectBatchInput([
        SimplePublicObjectBatchInput(id=_company_id(12), properties={"edition": "Bronze"}),
        SimplePublicObjectBatchInput(id="999", properties={"edition": "Gold"}),
        SimplePublicObjectBatchInput(id=_company_id(7), properties={"nope": "x"}),
        SimplePublicObjectBatchInput(id=_company_id(8), properties={"edition": "Platinum"}),
    ]))  # fmt: skip
    assert result.num_errors == 3
    assert [r.id for r in result.results] == [_company_id(12)]
    assert {e.category for e in result.errors} == {"OBJECT_NOT_FOUND", "VALIDATION_ERROR"}
    messages = " ".join(e.message for e in result.errors)
    assert "PROPERTY_DOESNT_EXIST" in messages and "INVALID_OPTION" in messages


def test_partial_fault_fails_some_items(hs_server: HubSpotServer, hs_client: HubSpot) -> None:
    hs_server.faults.add(FaultRule(kind="partial", path="*/batch/update", every=2))
    inputs = [SimplePublicObjectBatchInput(id=_company_id(i), properties={"country": "Chile"})
              for i in (10, 11, 12, 13)]  # fmt: skip
    result = hs_client.crm.companies.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(inputs)
    )
    assert result.num_errors == 2 and len(result.results) == 2


def test_every_write_stamps_a_strictly_later_modified_date(hs_client: HubSpot) -> None:
    api = hs_client.crm.companies.basic_api
    stamps = [
        api.update(_company_id(9), SimplePublicObjectInput(properties={"city": f"C{i}"})).updated_at
        for i in range(5)
    ]
    assert stamps == sorted(set(stamps))
    assert abs((stamps[-1] - dt.datetime.now(dt.UTC)).total_seconds()) < 60


def test_upsert_by_unique_property_creates_then_updates(hs_client: HubSpot) -> None:
    def upsert(name: str) -> Any:
        body = BatchInputSimplePublicObjectBatchInputUpsert(
            [
                SimplePublicObjectBatchInputUpsert(
                    id="ws-new", id_property="workspace_id", properties={"name": name}
                )
            ]
        )
        return hs_client.crm.companies.batch_api.upsert(body).results[0]  # fmt: skip

    created, updated = upsert("New Co"), upsert("New Co Renamed")
    assert created.new and not updated.new
    assert created.id == updated.id and updated.properties["name"] == "New Co Renamed"


def test_upsert_by_non_unique_property_is_refused(hs_client: HubSpot) -> None:
    body = BatchInputSimplePublicObjectBatchInputUpsert([SimplePublicObjectBatchInputUpsert(
        id="x.com", id_property="domain", properties={"name": "X"})])  # fmt: skip
    with pytest.raises(ApiException) as caught:
        hs_client.crm.companies.batch_api.upsert(body)
    assert caught.value.status == 400 and "non-unique" in caught.value.body


def test_batch_read_by_id_property_reports_missing_values(hs_client: HubSpot) -> None:
    body = BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id="ws-00001"), SimplePublicObjectId(id="ws-99999")],
        properties=["name"],
        properties_with_history=[],
        id_property="workspace_id",
    )
    result = hs_client.crm.companies.batch_api.read(body)
    assert [r.properties["name"] for r in result.results] == ["Company 1"]
    assert result.errors[0].context["ids"] == ["ws-99999"]


def test_archived_company_leaves_list_and_appears_with_archived_true(hs_client: HubSpot) -> None:
    created = hs_client.crm.companies.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"name": "Short-lived"})
    )
    search = hs_client.crm.companies.search_api.do_search
    before = search({"query": "Short-lived"}).total
    hs_client.crm.companies.batch_api.archive(BatchInputSimplePublicObjectId([
        SimplePublicObjectId(id=created.id)]))  # fmt: skip
    live = {c.id for c in hs_client.crm.companies.get_all()}
    archived = hs_client.crm.companies.basic_api.get_page(archived=True, limit=100).results
    assert created.id not in live
    assert before == 1 and search({"query": "Short-lived"}).total == 0
    assert [c.id for c in archived if c.id == created.id] and archived[0].archived


def test_duplicate_contact_email_is_a_conflict(hs_client: HubSpot) -> None:
    from hubspot.crm.contacts import ApiException as ContactError
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactInput

    with pytest.raises(ContactError) as caught:
        hs_client.crm.contacts.basic_api.create(
            ContactInput(properties={"email": "person0@company0.com"})
        )
    assert caught.value.status == 409 and "Existing ID" in caught.value.body


# Search -------------------------------------------------------------------------------------


def test_search_modified_since_is_sorted_and_paged(hs_client: HubSpot) -> None:
    watermark = int(time.time() * 1000)
    for i in (14, 15, 16):
        hs_client.crm.companies.basic_api.update(
            _company_id(i), SimplePublicObjectInput(properties={"city": "Lima"})
        )
    request = {
        "filter_groups": [FilterGroup(filters=[
            Filter(property_name="hs_lastmodifieddate", operator="GTE", value=str(watermark)),
            Filter(property_name="city", operator="EQ", value="lima"),
        ])],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}],
        "properties": ["city"], "limit": 2,
    }  # fmt: skip
    first = hs_client.crm.companies.search_api.do_search(PublicObjectSearchRequest(**request))
    second = hs_client.crm.companies.search_api.do_search(
        PublicObjectSearchRequest(**request, after=first.paging.next.after)
    )
    assert first.total == 3
    assert [r.id for r in first.results + second.results] == [_company_id(i) for i in (14, 15, 16)]
    assert second.paging is None


def test_search_operators_in_between_and_has_property(hs_client: HubSpot) -> None:
    def ids(*filters: Filter) -> set[str]:
        req = PublicObjectSearchRequest(
            filter_groups=[FilterGroup(filters=list(filters))], limit=200
        )
        return {r.id for r in hs_client.crm.companies.search_api.do_search(req).results}

    between = ids(Filter(property_name="numberofemployees", operator="BETWEEN", value="70",
                         high_value="72"))  # fmt: skip
    gold = Filter(property_name="edition", operator="IN", values=["Gold"])
    editions = ids(gold, Filter(property_name="numberofemployees", operator="LT", value="60"))
    no_sf = ids(Filter(property_name="salesforce_account_id", operator="NOT_HAS_PROPERTY"))
    early = ids(Filter(property_name="createdate", operator="LT", value="2024-01-03T00:00:00Z"))
    assert between == {_company_id(i) for i in (20, 21, 22)}
    assert editions == {_company_id(i) for i in (0, 6, 9)}
    assert _company_id(4) in no_sf and _company_id(1) not in no_sf
    assert early == {_company_id(0), _company_id(1)}


def test_search_with_too_many_filter_groups_is_refused(hs_client: HubSpot) -> None:
    group = FilterGroup(filters=[Filter(property_name="name", operator="HAS_PROPERTY")])
    with pytest.raises(ApiException) as caught:
        hs_client.crm.companies.search_api.do_search(
            PublicObjectSearchRequest(filter_groups=[group] * 6)
        )
    assert caught.value.status == 400


@pytest.fixture(scope="module")
def hs_big() -> Iterator[HubSpotServer]:
    """A portal with 10,050 contacts, to reach search's 10,000-result cap."""
    world = make_world(companies=1, people_per_company=10_050)
    with HubSpotServer(world, burst_limit=100_000, search_per_second=1_000) as server:
        yield server


def test_search_paging_to_10000_is_refused(hs_big: HubSpotServer) -> None:
    from hubspot.crm.contacts import ApiException as ContactError

    client = HubSpot(access_token=TOKEN, host=hs_big.url)
    page = client.crm.contacts.search_api.do_search(
        {"limit": 200, "after": "9800", "properties": ["email"]}
    )
    assert page.total == 10_050 and page.paging.next.after == "10000"
    with pytest.raises(ContactError) as caught:
        client.crm.contacts.search_api.do_search({"limit": 200, "after": page.paging.next.after})
    assert caught.value.status == 400


# Limits -------------------------------------------------------------------------------------


def test_burst_over_the_limit_is_answered_429_with_the_policy(hs_limited: HubSpotServer) -> None:
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    url = f"{hs_limited.url}/crm/v3/objects/companies?limit=1"
    answers = [session.get(url, timeout=5) for _ in range(101)]
    assert [a.status_code for a in answers[:100]] == [200] * 100
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "100"
    assert answers[99].headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert answers[100].status_code == 429
    assert answers[100].json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert answers[100].json()["errorType"] == "RATE_LIMIT"


def test_searches_beyond_5_per_second_are_refused(hs_limited: HubSpotServer) -> None:
    client = HubSpot(access_token=TOKEN, host=hs_limited.url)
    statuses = []
    for _ in range(6):
        try:
            client.crm.companies.search_api.do_search({"limit": 1})
            statuses.append(200)
        except ApiException as exc:
            statuses.append(exc.status)
            assert '"policyName":"SECONDLY"' in exc.body
    assert statuses == [200] * 5 + [429]


def test_search_responses_carry_no_rate_limit_headers(
    hs_server: HubSpotServer, hs_http: requests.Session
) -> None:
    answer = hs_http.post(f"{hs_server.url}/crm/v3/objects/companies/search", json={"limit": 1},
                           headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)  # fmt: skip
    assert answer.status_code == 200
    assert not [h for h in answer.headers if h.lower().startswith("x-hubspot-ratelimit")]


# Properties, tasks, associations, owners -------------------------------------------------------


def test_checkbox_property_takes_several_options_and_refuses_unknown(hs_client: HubSpot) -> None:
    core = hs_client.crm.properties.core_api
    created = core.create(
        "companies",
        PropertyCreate(
            name="segment_tags",
            label="Segment tags",
            type="enumeration",
            field_type="checkbox",
            group_name="companyinformation",
            options=[OptionInput(label="A", value="a", display_order=0, hidden=False)],
        ),
    )
    updated = core.update("companies", "segment_tags", PropertyUpdate(options=[
        OptionInput(label="A", value="a", display_order=0, hidden=False),
        OptionInput(label="B", value="b", display_order=1, hidden=False)]))  # fmt: skip
    api = hs_client.crm.companies.basic_api
    api.update(_company_id(2), SimplePublicObjectInput(properties={"segment_tags": "a;b"}))
    read = api.get_by_id(_company_id(2), properties=["segment_tags"])
    with pytest.raises(ApiException) as caught:
        api.update(_company_id(2), SimplePublicObjectInput(properties={"segment_tags": "a;c"}))
    assert created.field_type == "checkbox" and [o.value for o in updated.options] == ["a", "b"]
    assert read.properties["segment_tags"] == "a;b"
    assert caught.value.status == 400 and "INVALID_OPTION" in caught.value.body


def test_task_with_inline_associations_reads_back_through_v4(hs_client: HubSpot) -> None:
    def spec(type_id: int) -> TaskAssociationSpec:
        return TaskAssociationSpec(association_category="HUBSPOT_DEFINED",
                                   association_type_id=type_id)  # fmt: skip

    task = hs_client.crm.objects.tasks.basic_api.create(TaskInput(
        properties={"hs_timestamp": "2026-06-10T00:00:00Z", "hs_task_subject": "Call them",
                    "hs_task_status": "NOT_STARTED", "hs_task_priority": "HIGH"},
        associations=[
            PublicAssociationsForObject(to=PublicObjectId(id=_company_id(0)), types=[spec(192)]),
            PublicAssociationsForObject(to=PublicObjectId(id=_contact_id(0)), types=[spec(204)]),
        ]))  # fmt: skip
    v4 = hs_client.crm.associations.v4.basic_api
    companies = v4.get_page("tasks", task.id, "companies")
    contacts = v4.get_page("tasks", task.id, "contacts")
    back = v4.get_page("companies", _company_id(0), "tasks")
    assert [(r.to_object_id, r.association_types[0].type_id) for r in companies.results] == [
        (_company_id(0), 192)
    ]
    assert [r.to_object_id for r in contacts.results] == [_contact_id(0)]
    assert task.id in {r.to_object_id for r in back.results}


def test_task_without_timestamp_is_refused(hs_client: HubSpot) -> None:
    from hubspot.crm.objects.tasks import ApiException as TaskError

    with pytest.raises(TaskError) as caught:
        hs_client.crm.objects.tasks.basic_api.create(TaskInput(properties={"hs_task_subject": "x"}))
    assert caught.value.status == 400 and "hs_timestamp" in caught.value.body


def test_v4_labelled_default_batch_and_archive_calls_round_trip(hs_client: HubSpot) -> None:
    v4 = hs_client.crm.associations.v4
    pair = v4.basic_api.create("deals", "30000000001", "contacts", _contact_id(1),
                               [AssociationSpec("HUBSPOT_DEFINED", 3)])  # fmt: skip
    default = v4.basic_api.create_default("tickets", "1000000001", "contacts", _contact_id(1))
    made = v4.batch_api.create("deals", "contacts", V4BatchCreate([V4Post(
        _from=V4Id(id="30000000001"), to=V4Id(id=_contact_id(2)),
        types=[AssociationSpec("HUBSPOT_DEFINED", 3)])]))  # fmt: skip
    read = v4.batch_api.get_page("deals", "contacts", V4BatchRead([
        V4Fetch(id="30000000001"), V4Fetch(id="30000000099")]))  # fmt: skip
    v4.basic_api.archive("deals", "30000000001", "contacts", _contact_id(2))
    after = v4.basic_api.get_page("deals", "30000000001", "contacts")
    assert pair.from_object_type_id == "0-3" and pair.labels == []
    assert default.results[0].association_spec.association_type_id == 16
    assert made.results[0].to_object_id == _contact_id(2)
    assert [t.to_object_id for t in read.results[0].to] == [_contact_id(1), _contact_id(2)]
    assert read.num_errors == 1
    assert [r.to_object_id for r in after.results] == [_contact_id(1)]


def test_owners_page_filter_by_email_and_get_by_id(hs_client: HubSpot) -> None:
    owners = hs_client.crm.owners.owners_api.get_page(limit=1)
    rest = hs_client.crm.owners.owners_api.get_page(after=owners.paging.next.after)
    by_email = hs_client.crm.owners.owners_api.get_page(email="cy@vendor.com")
    inactive = hs_client.crm.owners.owners_api.get_page(archived=True)
    one = hs_client.crm.owners.owners_api.get_by_id(OWNER_ID_BASE + 1)
    assert [o.email for o in owners.results + rest.results] == ["ada@vendor.com", "cy@vendor.com"]
    assert [o.id for o in by_email.results] == [str(OWNER_ID_BASE + 1)]
    assert [o.email for o in inactive.results] == ["old@vendor.com"]
    assert one.first_name == "Cy" and one.type == "PERSON"


def test_property_get_all_and_archive_deserialize(hs_client: HubSpot) -> None:
    core = hs_client.crm.properties.core_api
    core.create(
        "contacts",
        PropertyCreate(
            name="nps_band",
            label="NPS band",
            type="string",
            field_type="text",
            group_name="contactinformation",
        ),
    )
    names = {p.name for p in core.get_all("contacts").results}
    core.archive("contacts", "nps_band")
    assert {"email", "contact_role", "salesforce_contact_id", "nps_band"} <= names
    assert "nps_band" not in {p.name for p in core.get_all("contacts").results}


def test_inspection_route_lists_archived_records(
    hs_server: HubSpotServer, hs_http: requests.Session
) -> None:
    answer = hs_http.get(f"{hs_server.url}/_sandbox/objects/deals", timeout=5).json()
    assert answer["total"] == 1
    assert answer["results"][0]["properties"]["dealstage"] == "closedwon"
    assert answer["results"][0]["associations"]["companies"]["results"][0]["id"] == _company_id(0)


def test_same_world_loads_to_the_same_ids() -> None:
    first, second = HubSpotServer(make_world(companies=4)), HubSpotServer(make_world(companies=4))
    ids = [[list(s.state.tables[t].records) for t in ("companies", "contacts")]
           for s in (first, second)]  # fmt: skip
    assert ids[0] == ids[1] and ids[0][0] == [int(_company_id(i)) for i in (0, 1, 2)]


def test_server_error_faults_use_hubspot_error_shape(
    hs_server: HubSpotServer, hs_client: HubSpot
) -> None:
    from hubspot.crm.companies.exceptions import ServiceException

    hs_server.faults.add(FaultRule(kind="503", times=1))
    with pytest.raises(ServiceException) as caught:
        hs_client.crm.companies.basic_api.get_page(limit=1)
    assert caught.value.status == 503 and '"status":"error"' in caught.value.body


def test_batch_create_echoes_trace_ids_and_single_archive_hides_the_record(
    hs_client: HubSpot,
) -> None:
    from hubspot.crm.companies import (
        BatchInputSimplePublicObjectBatchInputForCreate,
        SimplePublicObjectBatchInputForCreate,
    )
    from hubspot.crm.companies.exceptions import NotFoundException

    created = hs_client.crm.companies.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate([
            SimplePublicObjectBatchInputForCreate(properties={"name": "Batch Co"},
                                                  object_write_trace_id="t-1"),
        ]))  # fmt: skip
    company_id = created.results[0].id
    hs_client.crm.companies.basic_api.archive(company_id)
    with pytest.raises(NotFoundException):
        hs_client.crm.companies.basic_api.get_by_id(company_id)
    assert created.results[0].object_write_trace_id == "t-1"
    assert created.results[0].properties["name"] == "Batch Co"


def test_v4_batch_default_and_batch_archive_round_trip(hs_client: HubSpot) -> None:
    from hubspot.crm.associations.v4 import (
        BatchInputPublicAssociationMultiArchive,
        BatchInputPublicDefaultAssociationMultiPost,
        PublicAssociationMultiArchive,
        PublicDefaultAssociationMultiPost,
    )

    batch = hs_client.crm.associations.v4.batch_api
    made = batch.create_default("notes", "companies", BatchInputPublicDefaultAssociationMultiPost([
        PublicDefaultAssociationMultiPost(_from=V4Id(id=_note(hs_client)), to=V4Id(
            id=_company_id(1)))]))  # fmt: skip
    note_id = made.results[0]._from.id
    batch.archive(
        "notes",
        "companies",
        BatchInputPublicAssociationMultiArchive(
            [PublicAssociationMultiArchive(_from=V4Id(id=note_id), to=[V4Id(id=_company_id(1))])]
        ),
    )
    left = hs_client.crm.associations.v4.basic_api.get_page("notes", note_id, "companies")
    assert made.results[0].association_spec.association_type_id == 190
    assert left.results == []


def _note(client: HubSpot) -> str:
    from hubspot.crm.objects.notes import SimplePublicObjectInputForCreate as NoteInput

    note = client.crm.objects.notes.basic_api.create(
        NoteInput(properties={"hs_timestamp": "1767225600000", "hs_note_body": "Spoke to the CFO"})
    )
    return str(note.id)
