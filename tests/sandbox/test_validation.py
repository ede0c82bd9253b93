"""Each validation rule, through HTTP, with the pointer Klaviyo would name."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.sandbox.helpers import (
    BULK_EVENTS_POINTER,
    REMOVE,
    TIMEOUT,
    api_headers,
    bulk_body,
    bulk_event,
    bulk_group,
    bulk_of,
    error_summary,
    event_body,
    nested,
    pointers,
    post_bulk,
    post_event,
    with_change,
)

ATTRIBUTES = ("data", "attributes")
METRIC_NAME = (*ATTRIBUTES, "metric", "data", "attributes", "name")
PROFILE_ATTRIBUTES = (*ATTRIBUTES, "profile", "data", "attributes")


def first_event_pointer(group=0, event=0):
    return f"{BULK_EVENTS_POINTER}/{group}/attributes/events/data/{event}/attributes"


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")


@pytest.mark.parametrize(
    ("path", "value", "pointer"),
    [
        (("data",), REMOVE, "/data"),
        (("data", "type"), "events", "/data/type"),
        (("data", "type"), REMOVE, "/data/type"),
        (ATTRIBUTES, REMOVE, "/data/attributes"),
        ((*ATTRIBUTES, "properties"), REMOVE, "/data/attributes/properties"),
        ((*ATTRIBUTES, "properties"), ["a"], "/data/attributes/properties"),
        ((*ATTRIBUTES, "properties"), None, "/data/attributes/properties"),
        ((*ATTRIBUTES, "metric"), REMOVE, "/data/attributes/metric"),
        (
            (*ATTRIBUTES, "metric", "data", "type"),
            "metrics",
            "/data/attributes/metric/data/type",
        ),
        (METRIC_NAME, REMOVE, "/data/attributes/metric/data/attributes/name"),
        (METRIC_NAME, 42, "/data/attributes/metric/data/attributes/name"),
        (METRIC_NAME, "", "/data/attributes/metric/data/attributes/name"),
        (METRIC_NAME, "n" * 128, "/data/attributes/metric/data/attributes/name"),
        ((*ATTRIBUTES, "profile"), REMOVE, "/data/attributes/profile"),
        (
            (*ATTRIBUTES, "profile", "data", "type"),
            "person",
            "/data/attributes/profile/data/type",
        ),
        (PROFILE_ATTRIBUTES, REMOVE, "/data/attributes/profile/data/attributes"),
        (PROFILE_ATTRIBUTES, {}, "/data/attributes/profile/data/attributes"),
        (
            PROFILE_ATTRIBUTES,
            {"email": None, "first_name": "Ada"},
            "/data/attributes/profile/data/attributes",
        ),
        (
            PROFILE_ATTRIBUTES,
            {"email": "", "first_name": "Ada"},
            "/data/attributes/profile/data/attributes/email",
        ),
        (
            (*PROFILE_ATTRIBUTES, "email"),
            7,
            "/data/attributes/profile/data/attributes/email",
        ),
        (
            (*PROFILE_ATTRIBUTES, "location"),
            None,
            "/data/attributes/profile/data/attributes/location",
        ),
        ((*ATTRIBUTES, "value"), "9.99", "/data/attributes/value"),
        ((*ATTRIBUTES, "value"), True, "/data/attributes/value"),
        ((*ATTRIBUTES, "unique_id"), 12, "/data/attributes/unique_id"),
        ((*ATTRIBUTES, "time"), "2026-01-15", "/data/attributes/time"),
        ((*ATTRIBUTES, "time"), "2026-01-15T10:00:00", "/data/attributes/time"),
        ((*ATTRIBUTES, "time"), "2026-02-30T10:00:00Z", "/data/attributes/time"),
        ((*ATTRIBUTES, "time"), 1700000000, "/data/attributes/time"),
        ((*ATTRIBUTES, "time"), "1999-12-31T23:59:59Z", "/data/attributes/time"),
    ],
)
def test_a_bad_member_is_rejected_with_its_pointer(
    sandbox, token, path, value, pointer
):
    body = with_change(event_body(), path, value)

    answer = post_event(sandbox.url, token, body)

    assert answer.status_code == 400
    assert error_summary(answer) == [("invalid", pointer)]
    assert sandbox.stats()["events_accepted"] == 0
    assert sandbox.stats()["events_rejected"] == 1


@pytest.mark.parametrize(
    "phone_number",
    [
        "(415) 555-0100",
        "4155550100",
        "04155550100",
        "+04155550100",
        "+1415",
        "",
        "+1 415 555 0100",
    ],
)
def test_a_phone_number_must_be_e164(sandbox, token, phone_number):
    body = event_body(profile={"phone_number": phone_number})

    answer = post_event(sandbox.url, token, body)

    assert answer.status_code == 400
    assert error_summary(answer) == [
        ("invalid", "/data/attributes/profile/data/attributes/phone_number")
    ]


@pytest.mark.parametrize("phone_number", ["+14155550100", "+447911123456", "+49301234"])
def test_e164_phone_numbers_are_accepted(sandbox, token, phone_number):
    answer = post_event(
        sandbox.url, token, event_body(profile={"phone_number": phone_number})
    )

    assert answer.status_code == 202


def test_a_metric_name_of_127_characters_is_the_longest_accepted(sandbox, token):
    accepted = post_event(sandbox.url, token, event_body(name="n" * 127))
    refused = post_event(sandbox.url, token, event_body(name="n" * 128))

    assert accepted.status_code == 202
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["detail"] == (
        "'name' is 128 characters; it must be shorter than 128."
    )


def test_a_time_up_to_one_year_ahead_is_accepted_and_later_refused(
    sandbox, token, frozen_clock
):
    now = datetime.fromtimestamp(frozen_clock, UTC)

    within = post_event(
        sandbox.url, token, event_body(time=iso(now + timedelta(days=365)))
    )
    beyond = post_event(
        sandbox.url, token, event_body(time=iso(now + timedelta(days=365, seconds=1)))
    )

    assert within.status_code == 202
    assert beyond.status_code == 400
    assert pointers(beyond) == ["/data/attributes/time"]


def test_the_first_second_of_2000_is_accepted(sandbox, token):
    answer = post_event(sandbox.url, token, event_body(time="2000-01-01T00:00:00Z"))

    assert answer.status_code == 202


def test_a_time_offset_counts_towards_the_range(sandbox, token):
    answer = post_event(
        sandbox.url, token, event_body(time="2000-01-01T00:30:00+01:00")
    )

    assert answer.status_code == 400
    assert pointers(answer) == ["/data/attributes/time"]


def test_optional_members_may_be_null(sandbox, token):
    body = event_body(time=None, value=None, unique_id=None, value_currency=None)

    answer = post_event(sandbox.url, token, body)

    assert answer.status_code == 202


def test_300_properties_are_accepted_and_301_refused(sandbox, token):
    accepted = post_event(
        sandbox.url, token, event_body(properties={f"p{i}": i for i in range(300)})
    )
    refused = post_event(
        sandbox.url, token, event_body(properties={f"p{i}": i for i in range(301)})
    )

    assert accepted.status_code == 202
    assert refused.status_code == 400
    assert pointers(refused) == ["/data/attributes/properties"]


def test_ten_levels_of_nesting_are_accepted_and_eleven_refused(sandbox, token):
    # The properties object is level 1: nested(9) inside it reaches level 10.
    accepted = post_event(sandbox.url, token, event_body(properties={"a": nested(9)}))
    refused = post_event(sandbox.url, token, event_body(properties={"a": nested(10)}))

    assert accepted.status_code == 202
    assert refused.status_code == 400
    assert pointers(refused) == [
        "/data/attributes/properties/a" + "/child" * 9,
    ]


def test_arrays_hold_at_most_4000_items(sandbox, token):
    accepted = post_event(
        sandbox.url, token, event_body(properties={"items": [1] * 4000})
    )
    refused = post_event(
        sandbox.url, token, event_body(properties={"cart": {"items": [1] * 4001}})
    )

    assert accepted.status_code == 202
    assert refused.status_code == 400
    assert pointers(refused) == ["/data/attributes/properties/cart/items"]


def test_strings_hold_at_most_100_kb_of_utf8(sandbox, token):
    accepted = post_event(
        sandbox.url, token, event_body(properties={"html": "x" * 100_000})
    )
    # 33,334 three-byte characters are 100,002 bytes.
    refused = post_event(
        sandbox.url, token, event_body(properties={"list": ["ok", "€" * 33_334]})
    )

    assert accepted.status_code == 202
    assert refused.status_code == 400
    assert pointers(refused) == ["/data/attributes/properties/list/1"]


def test_pointers_escape_slashes_and_tildes_in_keys(sandbox, token):
    body = event_body(properties={"a/b~c": {"items": [0] * 4001}})

    answer = post_event(sandbox.url, token, body)

    assert pointers(answer) == ["/data/attributes/properties/a~1b~0c/items"]


def test_a_body_over_5_mb_is_refused(sandbox, token):
    properties = {f"p{i}": "x" * 20_000 for i in range(251)}

    answer = post_event(sandbox.url, token, event_body(properties=properties))

    assert answer.status_code == 400
    assert pointers(answer) == [""]
    assert "at most 5,000,000 are accepted" in answer.json()["errors"][0]["detail"]


def test_a_body_that_is_not_json_is_a_parse_error(sandbox, token):
    answer = requests.post(
        f"{sandbox.url}/api/events",
        data=b'{"data": ',
        headers=api_headers(token),
        timeout=TIMEOUT,
    )

    assert answer.status_code == 400
    assert error_summary(answer) == [("parse_error", "")]


def test_nan_is_not_json(sandbox, token):
    answer = requests.post(
        f"{sandbox.url}/api/events",
        data=json.dumps(event_body(value=float("nan"))),
        headers=api_headers(token),
        timeout=TIMEOUT,
    )

    assert answer.status_code == 400
    assert error_summary(answer) == [("parse_error", "")]


def test_each_bad_item_gets_its_own_error(sandbox, token):
    body = event_body(name="", value="free", profile={"phone_number": "555"})

    answer = post_event(sandbox.url, token, body)

    assert sorted(pointers(answer)) == [
        "/data/attributes/metric/data/attributes/name",
        "/data/attributes/profile/data/attributes/phone_number",
        "/data/attributes/value",
    ]


def test_bulk_errors_name_the_bad_event_precisely(sandbox, token):
    events = [bulk_event(unique_id=f"e{i}") for i in range(5)]
    events[3]["attributes"]["metric"]["data"]["attributes"]["name"] = 3
    body = bulk_body(
        bulk_group({"email": "ada@example.com"}, [bulk_event(unique_id="x")]),
        bulk_group({"email": "bob@example.com"}, events),
    )

    answer = post_bulk(sandbox.url, token, body)

    assert answer.status_code == 400
    assert pointers(answer) == [
        "/data/attributes/events-bulk-create/data/1/attributes/events/data/3"
        "/attributes/metric/data/attributes/name"
    ]
    stats = sandbox.stats()
    assert stats["events_accepted"] == 0
    assert stats["events_rejected"] == 6
    assert sandbox.events() == []


def test_bulk_structure_errors_have_pointers(sandbox, token):
    body = bulk_body(
        {"type": "event-bulk-create", "attributes": {"events": {"data": []}}},
        bulk_group({"email": "ada@example.com"}, {"not": "a list"}),
        "not an object",
    )

    answer = post_bulk(sandbox.url, token, body)

    assert pointers(answer) == [
        f"{BULK_EVENTS_POINTER}/0/attributes/profile",
        f"{BULK_EVENTS_POINTER}/1/attributes/events/data",
        f"{BULK_EVENTS_POINTER}/2",
    ]


def test_a_bulk_request_holds_at_most_1000_events(sandbox, token):
    accepted = post_bulk(sandbox.url, token, bulk_of(1000, prefix="a"))
    refused = post_bulk(sandbox.url, token, bulk_of(1001, prefix="b"))

    assert accepted.status_code == 202
    assert refused.status_code == 400
    assert pointers(refused) == [BULK_EVENTS_POINTER]
    stats = sandbox.stats()
    assert stats["events_accepted"] == 1000
    assert stats["events_rejected"] == 1001


def test_1000_events_across_groups_count_together(sandbox, token):
    body = bulk_body(
        *(
            bulk_group(
                {"email": f"p{group}@example.com"},
                [bulk_event(unique_id=f"{group}-{i}") for i in range(77)],
            )
            for group in range(13)
        )
    )

    answer = post_bulk(sandbox.url, token, body)

    assert answer.status_code == 400
    assert pointers(answer) == [BULK_EVENTS_POINTER]


def test_a_unique_id_repeated_for_one_profile_and_metric_fails_the_request(
    sandbox, token
):
    body = bulk_body(
        bulk_group(
            {"email": "ada@example.com"},
            [bulk_event(unique_id="dup"), bulk_event(unique_id="other")],
        ),
        bulk_group({"email": "ADA@example.com"}, [bulk_event(unique_id="dup")]),
    )

    answer = post_bulk(sandbox.url, token, body)

    assert answer.status_code == 400
    assert pointers(answer) == [f"{first_event_pointer(group=1)}/unique_id"]
    assert sandbox.stats()["events_accepted"] == 0
    assert sandbox.events() == []


def test_a_unique_id_may_repeat_for_another_metric_or_profile(sandbox, token):
    body = bulk_body(
        bulk_group(
            {"email": "ada@example.com"},
            [
                bulk_event(unique_id="same", name="Message Sent"),
                bulk_event(unique_id="same", name="Message Delivered"),
            ],
        ),
        bulk_group({"email": "bob@example.com"}, [bulk_event(unique_id="same")]),
    )

    answer = post_bulk(sandbox.url, token, body)

    assert answer.status_code == 202
    assert sandbox.stats()["events_accepted"] == 3


def test_a_bulk_event_inherits_nothing_wrong_from_a_valid_group(sandbox, token):
    body = bulk_body(
        bulk_group(
            {"email": "ada@example.com", "phone_number": "555-0100"},
            [bulk_event(unique_id="a")],
        )
    )

    answer = post_bulk(sandbox.url, token, body)

    assert pointers(answer) == [
        f"{BULK_EVENTS_POINTER}/0/attributes/profile/data/attributes/phone_number"
    ]


def test_a_body_nested_beyond_what_json_can_read_is_a_parse_error(sandbox, token):
    answer = requests.post(
        f"{sandbox.url}/api/events",
        data=b"[" * 100_000 + b"]" * 100_000,
        headers=api_headers(token),
        timeout=TIMEOUT,
    )

    assert answer.status_code == 400
    assert error_summary(answer) == [("parse_error", "")]
