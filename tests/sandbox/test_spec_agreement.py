"""The sandbox rejects what Klaviyo's official spec rejects, and the reverse.

Every body of the table goes to the spec (``tests.klaviyo_spec``) and to the
sandbox over HTTP. ``VALID`` bodies must pass both, ``INVALID`` ones must fail
both. ``STRICTER`` marks a documented rule, stricter than the schema: a limit
that Klaviyo documents in prose but the schema cannot express, so the spec
accepts the body while the sandbox, like Klaviyo, rejects it. Each such row
says where the rule is written.
"""

import copy
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.klaviyo_spec import request_body_errors, requires_klaviyo_spec
from tests.sandbox.helpers import (
    REMOVE,
    bulk_body,
    bulk_event,
    bulk_group,
    bulk_of,
    event_body,
    nested,
    post_bulk,
    post_event,
    with_change,
)

VALID = "valid"
INVALID = "invalid"
STRICTER = "documented rule, stricter than the schema"

ATTRIBUTES = ("data", "attributes")
METRIC_NAME = (*ATTRIBUTES, "metric", "data", "attributes", "name")
PROFILE_DATA = (*ATTRIBUTES, "profile", "data")
PROFILE_ATTRIBUTES = (*PROFILE_DATA, "attributes")
GROUPS = (*ATTRIBUTES, "events-bulk-create", "data")
FIRST_GROUP = (*GROUPS, 0, "attributes")
FIRST_BULK_EVENT = (*FIRST_GROUP, "events", "data", 0, "attributes")

NOW = datetime.now(UTC)


@dataclass(frozen=True)
class Case:
    id: str
    operation: str
    body: object
    expected: str
    # For STRICTER rows: the document that states the rule.
    source: str = ""


def single(case_id, body, expected, source=""):
    return Case(case_id, "create_event", body, expected, source)


def bulk(case_id, body, expected, source=""):
    return Case(case_id, "bulk_create_events", body, expected, source)


def changed(path, value):
    return with_change(event_body(), path, value)


def bulk_changed(path, value):
    return with_change(bulk_of(2), path, value)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def full_event():
    body = event_body(
        name="Order Shipped",
        unique_id="order-1:shipped",
        time="2026-01-15T10:30:00.123456+02:00",
        value=19.99,
        value_currency="EUR",
        backfill=True,
        properties={"items": [{"sku": "A", "qty": 2}], "$extra": {"html": "<p>"}},
        profile={
            "email": "ada@example.com",
            "phone_number": "+4915123456789",
            "external_id": "c-1",
            "first_name": "Ada",
            "location": {"city": "Berlin", "latitude": "52.52", "longitude": 13.4},
            "properties": {"tier": "gold"},
            "meta": {"patch_properties": {"append": {"skus": "A"}, "unset": ["old"]}},
        },
    )
    body["data"]["attributes"]["metric"]["data"]["attributes"]["service"] = "api"
    return body


def profile_by_id_only():
    body = changed(PROFILE_ATTRIBUTES, {})
    body["data"]["attributes"]["profile"]["data"]["id"] = "01HZXW2K3JQ9K3Y0JQ2M9Z7ABC"
    return body


def with_extra_members():
    body = event_body(properties={})
    body["data"]["attributes"]["not_in_the_spec"] = 1
    body["data"]["relationships"] = {}
    return body


def over_five_megabytes_single():
    # 251 strings of 20,000 bytes: 5.02 MB, each string and count in bounds.
    return event_body(properties={f"p{i}": "x" * 20_000 for i in range(251)})


def over_five_megabytes_bulk():
    body = bulk_of(1000)
    for event in body["data"]["attributes"]["events-bulk-create"]["data"][0][
        "attributes"
    ]["events"]["data"]:
        event["attributes"]["properties"] = {"html": "x" * 5_000}
    return body


def grouped(*groups):
    return bulk_body(*(bulk_group(profile, events) for profile, events in groups))


CASES = [
    # -- create_event: accepted by both --------------------------------------
    single("minimal email profile", event_body(), VALID),
    single("phone only", event_body(profile={"phone_number": "+14155550100"}), VALID),
    single("external id only", event_body(profile={"external_id": "c-1"}), VALID),
    single("profile id only", profile_by_id_only(), VALID),
    single("every member filled", full_event(), VALID),
    single(
        "nullable members null",
        event_body(
            time=None, value=None, unique_id=None, value_currency=None, backfill=None
        ),
        VALID,
    ),
    single("lower-case t and z", event_body(time="2026-01-15t10:00:00z"), VALID),
    single("integer value", event_body(value=3), VALID),
    single("127-character metric name", event_body(name="n" * 127), VALID),
    single(
        "300 properties",
        event_body(properties={f"p{i}": i for i in range(300)}),
        VALID,
    ),
    single("10 levels of nesting", event_body(properties={"a": nested(9)}), VALID),
    single("4,000-item array", event_body(properties={"a": [0] * 4000}), VALID),
    single("100,000-byte string", event_body(properties={"a": "x" * 100_000}), VALID),
    single("members the spec does not name", with_extra_members(), VALID),
    single("empty properties", event_body(properties={}), VALID),
    single(
        "null location field",
        event_body(profile={"email": "a@x.io", "location": {"city": None}}),
        VALID,
    ),
    # -- create_event: rejected by both --------------------------------------
    single("body is an array", [event_body()], INVALID),
    single("data missing", changed(("data",), REMOVE), INVALID),
    single("data is an array", changed(("data",), []), INVALID),
    single("wrong data type", changed(("data", "type"), "events"), INVALID),
    single("attributes missing", changed(ATTRIBUTES, REMOVE), INVALID),
    single("properties missing", changed((*ATTRIBUTES, "properties"), REMOVE), INVALID),
    single("properties an array", changed((*ATTRIBUTES, "properties"), []), INVALID),
    single("properties null", changed((*ATTRIBUTES, "properties"), None), INVALID),
    single("metric missing", changed((*ATTRIBUTES, "metric"), REMOVE), INVALID),
    single(
        "wrong metric type",
        changed((*ATTRIBUTES, "metric", "data", "type"), "metrics"),
        INVALID,
    ),
    single("metric name missing", changed(METRIC_NAME, REMOVE), INVALID),
    single("metric name a number", changed(METRIC_NAME, 7), INVALID),
    single("metric name null", changed(METRIC_NAME, None), INVALID),
    single("profile missing", changed((*ATTRIBUTES, "profile"), REMOVE), INVALID),
    single("wrong profile type", changed((*PROFILE_DATA, "type"), "person"), INVALID),
    single("profile attributes missing", changed(PROFILE_ATTRIBUTES, REMOVE), INVALID),
    single("email a number", event_body(profile={"email": 7}), INVALID),
    single("value a string", event_body(value="9.99"), INVALID),
    single("value a boolean", event_body(value=True), INVALID),
    single("unique_id a number", event_body(unique_id=12), INVALID),
    single("backfill a string", event_body(backfill="yes"), INVALID),
    single("time without a clock", event_body(time="2026-01-15"), INVALID),
    single("time without an offset", event_body(time="2026-01-15T10:00:00"), INVALID),
    single("time on 30 February", event_body(time="2026-02-30T10:00:00Z"), INVALID),
    single("time as epoch seconds", event_body(time=1768471200), INVALID),
    # The spec puts ``nullable`` beside ``$ref``; OpenAPI 3.0 ignores it there.
    single(
        "location null",
        event_body(profile={"email": "a@x.io", "location": None}),
        INVALID,
    ),
    single(
        "latitude null",
        event_body(profile={"email": "a@x.io", "location": {"latitude": None}}),
        INVALID,
    ),
    single(
        "profile properties an array",
        event_body(profile={"email": "a@x.io", "properties": []}),
        INVALID,
    ),
    single(
        "patch unset a number",
        event_body(
            profile={"email": "a@x.io", "meta": {"patch_properties": {"unset": 5}}}
        ),
        INVALID,
    ),
    # -- create_event: documented rules the schema cannot express ------------
    single(
        "national phone with punctuation",
        event_body(profile={"phone_number": "(415) 555-0100"}),
        STRICTER,
        "the spec's phone_number text and KLAVIYO.md: E.164",
    ),
    single(
        "national phone with trunk zero",
        event_body(profile={"phone_number": "030 1234567"}),
        STRICTER,
        "the spec's phone_number text and KLAVIYO.md: E.164",
    ),
    single(
        "phone with a leading zero after the plus",
        event_body(profile={"phone_number": "+04155550100"}),
        STRICTER,
        "E.164 country codes never start with 0",
    ),
    single(
        "128-character metric name",
        event_body(name="n" * 128),
        STRICTER,
        "the spec's name text: 'Must be less than 128 characters'",
    ),
    single(
        "129-character metric name",
        event_body(name="n" * 129),
        STRICTER,
        "the spec's name text: 'Must be less than 128 characters'",
    ),
    single(
        "empty metric name",
        event_body(name=""),
        STRICTER,
        "the operation text: profile and metric must include the metric name",
    ),
    single(
        "301 properties",
        event_body(properties={f"p{i}": i for i in range(301)}),
        STRICTER,
        "Klaviyo's ingestion limits: 300 properties (the spec's text says 400)",
    ),
    single(
        "11 levels of nesting",
        event_body(properties={"a": nested(10)}),
        STRICTER,
        "Klaviyo's ingestion limits: 10 levels of nested objects",
    ),
    single(
        "4,001-item array",
        event_body(properties={"a": [0] * 4001}),
        STRICTER,
        "Klaviyo's ingestion limits: 4,000 items per array",
    ),
    single(
        "100,001-byte string",
        event_body(properties={"a": "x" * 100_001}),
        STRICTER,
        "the spec's properties text: each string up to 100 KB",
    ),
    single(
        "body over 5 MB",
        over_five_megabytes_single(),
        STRICTER,
        "the spec's properties text: the payload must not exceed 5 MB",
    ),
    single(
        "time in 1999",
        event_body(time="1999-12-31T23:59:59Z"),
        STRICTER,
        "Klaviyo's ingestion limits: between 2000 and now + 1 year",
    ),
    single(
        "time more than a year ahead",
        event_body(time=iso(NOW + timedelta(days=366))),
        STRICTER,
        "the spec's time text: up to 1 year in the future",
    ),
    single(
        "profile without identifiers",
        event_body(profile={"first_name": "Ada"}),
        STRICTER,
        "the operation text: at least one profile identifier",
    ),
    single(
        "empty email as the only identifier",
        event_body(profile={"email": ""}),
        STRICTER,
        "the operation text: at least one profile identifier",
    ),
    # -- bulk_create_events: accepted by both --------------------------------
    bulk(
        "two groups",
        grouped(
            (
                {"email": "a@x.io"},
                [bulk_event(unique_id="1"), bulk_event(unique_id="2")],
            ),
            ({"phone_number": "+14155550100"}, [bulk_event(unique_id="1")]),
        ),
        VALID,
    ),
    bulk("1,000 events", bulk_of(1000), VALID),
    bulk(
        "one unique_id for two metrics",
        grouped(
            (
                {"email": "a@x.io"},
                [
                    bulk_event(unique_id="u", name="Message Sent"),
                    bulk_event(unique_id="u", name="Message Delivered"),
                ],
            )
        ),
        VALID,
    ),
    bulk(
        "one unique_id for two people",
        grouped(
            ({"email": "a@x.io"}, [bulk_event(unique_id="u")]),
            ({"email": "b@x.io"}, [bulk_event(unique_id="u")]),
        ),
        VALID,
    ),
    bulk("no groups", bulk_body(), VALID),
    bulk("a group without events", grouped(({"email": "a@x.io"}, [])), VALID),
    bulk(
        "group backfill and profile meta",
        with_change(
            with_change(bulk_of(1), (*FIRST_GROUP, "backfill"), True),
            (*FIRST_GROUP, "profile", "data", "meta"),
            {"patch_identifiers": {"append": {"email": ["b@x.io"]}}},
        ),
        VALID,
    ),
    # -- bulk_create_events: rejected by both --------------------------------
    bulk(
        "wrong job type", bulk_changed(("data", "type"), "event-bulk-create"), INVALID
    ),
    bulk(
        "events-bulk-create missing",
        bulk_changed((*ATTRIBUTES, "events-bulk-create"), REMOVE),
        INVALID,
    ),
    bulk("groups not a list", bulk_changed(GROUPS, {}), INVALID),
    bulk("wrong group type", bulk_changed((*GROUPS, 0, "type"), "event"), INVALID),
    bulk(
        "group without profile",
        bulk_changed((*FIRST_GROUP, "profile"), REMOVE),
        INVALID,
    ),
    bulk(
        "group events not a list",
        bulk_changed((*FIRST_GROUP, "events", "data"), {}),
        INVALID,
    ),
    bulk(
        "wrong event type",
        bulk_changed((*FIRST_GROUP, "events", "data", 1, "type"), "events"),
        INVALID,
    ),
    bulk(
        "event without metric",
        bulk_changed((*FIRST_BULK_EVENT, "metric"), REMOVE),
        INVALID,
    ),
    bulk(
        "event without properties",
        bulk_changed((*FIRST_BULK_EVENT, "properties"), REMOVE),
        INVALID,
    ),
    bulk(
        "profile meta null",
        bulk_changed((*FIRST_GROUP, "profile", "data", "meta"), None),
        INVALID,
    ),
    # -- bulk_create_events: documented rules the schema cannot express ------
    bulk(
        "1,001 events",
        bulk_of(1001),
        STRICTER,
        "the operation text: up to 1,000 events per request",
    ),
    bulk(
        "1,001 events across groups",
        grouped(
            ({"email": "a@x.io"}, [bulk_event(unique_id=f"a{i}") for i in range(500)]),
            ({"email": "b@x.io"}, [bulk_event(unique_id=f"b{i}") for i in range(501)]),
        ),
        STRICTER,
        "the operation text: up to 1,000 events per request",
    ),
    bulk(
        "unique_id repeated in one group",
        grouped(
            (
                {"email": "a@x.io"},
                [bulk_event(unique_id="u"), bulk_event(unique_id="u")],
            )
        ),
        STRICTER,
        "the unique_id text: a repeat for one profile and metric fails the request",
    ),
    bulk(
        "unique_id repeated across groups for one person",
        grouped(
            ({"email": "a@x.io"}, [bulk_event(unique_id="u")]),
            ({"email": "a@x.io", "first_name": "Ada"}, [bulk_event(unique_id="u")]),
        ),
        STRICTER,
        "the unique_id text: a repeat for one profile and metric fails the request",
    ),
    bulk(
        "bulk body over 5 MB",
        over_five_megabytes_bulk(),
        STRICTER,
        "the operation text: the maximum payload size is 5MB",
    ),
    bulk(
        "national phone in a group",
        with_change(
            bulk_of(1),
            (*FIRST_GROUP, "profile", "data", "attributes"),
            {"phone_number": "415-555-0100"},
        ),
        STRICTER,
        "the spec's phone_number text and KLAVIYO.md: E.164",
    ),
    bulk(
        "129-character metric name in a bulk event",
        bulk_changed(
            (*FIRST_BULK_EVENT, "metric", "data", "attributes", "name"), "n" * 129
        ),
        STRICTER,
        "the spec's name text: 'Must be less than 128 characters'",
    ),
]


def send(sandbox, token, case):
    post = post_event if case.operation == "create_event" else post_bulk
    return post(sandbox.url, token, case.body)


@requires_klaviyo_spec
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_the_sandbox_agrees_with_the_spec(sandbox, token, case):
    sandbox.configure(rate_limits_enabled=False)
    body_before = copy.deepcopy(case.body)

    spec_errors = request_body_errors(case.operation, case.body)
    answer = send(sandbox, token, case)

    assert case.body == body_before
    if case.expected == VALID:
        assert spec_errors == []
        assert answer.status_code == 202, answer.text
    elif case.expected == INVALID:
        assert spec_errors != []
        assert answer.status_code == 400
    else:
        # The spec accepts the body; Klaviyo documents why it does not.
        assert case.source
        assert spec_errors == []
        assert answer.status_code == 400
    if answer.status_code == 400:
        assert answer.json()["errors"]
        assert sandbox.stats()["events_accepted"] == 0


def test_the_table_covers_each_kind_for_each_operation():
    kinds = {(case.operation, case.expected) for case in CASES}

    assert kinds == {
        (operation, expected)
        for operation in ("create_event", "bulk_create_events")
        for expected in (VALID, INVALID, STRICTER)
    }
    assert len({case.id for case in CASES}) == len(CASES)
