"""What the sandbox records: profiles found or created, events deduplicated."""

import time

from tests.sandbox.helpers import (
    bulk_body,
    bulk_event,
    bulk_group,
    event_body,
    post_bulk,
    post_event,
)


def test_an_event_is_recorded_with_everything_klaviyo_keeps(sandbox, token):
    sent_at = time.time()
    body = event_body(
        name="Message Delivered",
        unique_id="msg-1:delivered",
        properties={"channel": "sms", "segments": 2},
        time="2026-01-15T10:30:00.750+01:00",
        value=0.05,
        value_currency="USD",
        profile={"phone_number": "+14155550100", "first_name": "Ada"},
    )

    post_event(sandbox.url, token, body)

    (event,) = sandbox.events()
    assert event["account_id"] == "DEMO01"
    assert event["endpoint"] == "create_event"
    assert event["metric"] == "Message Delivered"
    assert event["unique_id"] == "msg-1:delivered"
    assert event["time"] == "2026-01-15T09:30:00+00:00"
    assert event["properties"] == {"channel": "sms", "segments": 2}
    assert event["value"] == 0.05
    assert event["value_currency"] == "USD"
    assert event["profile"] == {
        "id": event["profile_id"],
        "phone_number": "+14155550100",
        "attributes": {"first_name": "Ada"},
    }
    assert isinstance(event["received_at"], float)
    assert sent_at - 1 < event["received_at"] < time.time() + 1


def test_a_new_person_creates_a_profile_and_a_known_one_does_not(sandbox, token):
    post_event(
        sandbox.url, token, event_body(unique_id="1", profile={"email": "a@x.io"})
    )
    post_event(
        sandbox.url, token, event_body(unique_id="2", profile={"email": "A@X.io"})
    )
    post_event(
        sandbox.url, token, event_body(unique_id="3", profile={"email": "b@x.io"})
    )

    stats = sandbox.stats()

    assert stats["profiles_created"] == 2
    assert stats["events_accepted"] == 3
    first, second, third = sandbox.events()
    assert first["profile_id"] == second["profile_id"]
    assert third["profile_id"] != first["profile_id"]


def test_a_profile_is_found_by_phone_number_or_external_id_too(sandbox, token):
    post_event(
        sandbox.url,
        token,
        event_body(unique_id="1", profile={"email": "a@x.io", "external_id": "c-1"}),
    )
    post_event(
        sandbox.url, token, event_body(unique_id="2", profile={"external_id": "c-1"})
    )
    post_event(
        sandbox.url,
        token,
        event_body(
            unique_id="3",
            profile={"external_id": "c-1", "phone_number": "+14155550100"},
        ),
    )
    post_event(
        sandbox.url,
        token,
        event_body(unique_id="4", profile={"phone_number": "+14155550100"}),
    )

    assert sandbox.stats()["profiles_created"] == 1
    assert len({event["profile_id"] for event in sandbox.events()}) == 1


def test_profiles_belong_to_one_account(sandbox, token):
    other = sandbox.issue_grant("DEMO02", ["events:write"])["access_token"]

    post_event(sandbox.url, token, event_body(unique_id="1"))
    post_event(sandbox.url, other, event_body(unique_id="1"))

    assert sandbox.stats("DEMO01")["profiles_created"] == 1
    assert sandbox.stats("DEMO02")["profiles_created"] == 1
    assert sandbox.stats()["events_accepted"] == 2


def test_a_repeated_unique_id_is_accepted_silently_and_kept_once(sandbox, token):
    first = post_event(sandbox.url, token, event_body(unique_id="m-1", value=1))
    again = post_event(sandbox.url, token, event_body(unique_id="m-1", value=2))

    assert first.status_code == 202
    assert again.status_code == 202
    stats = sandbox.stats()
    assert stats["events_accepted"] == 1
    assert stats["events_deduplicated"] == 1
    (event,) = sandbox.events(unique_id="m-1")
    assert event["value"] == 1


def test_the_same_unique_id_for_another_metric_or_person_is_kept(sandbox, token):
    post_event(sandbox.url, token, event_body(unique_id="m-1", name="Message Sent"))
    post_event(sandbox.url, token, event_body(unique_id="m-1", name="Message Opened"))
    post_event(
        sandbox.url, token, event_body(unique_id="m-1", profile={"email": "b@x.io"})
    )

    stats = sandbox.stats()

    assert stats["events_accepted"] == 3
    assert stats["events_deduplicated"] == 0


def test_without_unique_id_the_time_to_the_second_is_the_key(sandbox, token):
    post_event(sandbox.url, token, event_body(time="2026-01-15T10:00:00.100Z"))
    post_event(sandbox.url, token, event_body(time="2026-01-15T10:00:00.900Z"))
    post_event(sandbox.url, token, event_body(time="2026-01-15T10:00:01Z"))

    stats = sandbox.stats()

    assert stats["events_accepted"] == 2
    assert stats["events_deduplicated"] == 1


def test_without_time_the_receipt_second_is_the_key(sandbox, token, frozen_clock):
    post_event(sandbox.url, token, event_body())
    post_event(sandbox.url, token, event_body())
    sandbox.advance_clock(1)
    post_event(sandbox.url, token, event_body())

    assert sandbox.stats()["events_accepted"] == 2
    assert [event["time"] for event in sandbox.events()] == [
        time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(frozen_clock)),
        time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(frozen_clock + 1)),
    ]


def test_a_bulk_event_already_sent_singly_is_deduplicated(sandbox, token):
    post_event(sandbox.url, token, event_body(unique_id="m-1"))
    body = bulk_body(
        bulk_group(
            {"email": "ada@example.com"},
            [bulk_event(unique_id="m-1"), bulk_event(unique_id="m-2")],
        )
    )

    answer = post_bulk(sandbox.url, token, body)

    assert answer.status_code == 202
    stats = sandbox.stats()
    assert stats["events_accepted"] == 2
    assert stats["events_deduplicated"] == 1
    assert [event["endpoint"] for event in sandbox.events()] == [
        "create_event",
        "bulk_create_events",
    ]


def test_events_can_be_filtered(sandbox, token):
    other = sandbox.issue_grant("DEMO02", ["events:write"])["access_token"]
    post_event(sandbox.url, token, event_body(unique_id="1", name="Message Sent"))
    post_event(
        sandbox.url,
        token,
        event_body(
            unique_id="2", name="Message Delivered", profile={"email": "b@x.io"}
        ),
    )
    post_event(sandbox.url, other, event_body(unique_id="3", name="Message Sent"))

    by_metric = sandbox.events(metric="Message Sent")
    by_profile = sandbox.events(profile="b@x.io")
    by_unique_id = sandbox.events(unique_id="2")
    by_account = sandbox.events(account="DEMO02")
    by_profile_id = sandbox.events(profile=by_profile[0]["profile_id"])

    assert [event["unique_id"] for event in by_metric] == ["1", "3"]
    assert [event["unique_id"] for event in by_profile] == ["2"]
    assert [event["unique_id"] for event in by_unique_id] == ["2"]
    assert [event["unique_id"] for event in by_account] == ["3"]
    assert by_profile_id == by_profile


def test_listing_pages_through_every_event(sandbox, token):
    body = bulk_body(
        bulk_group(
            {"email": "ada@example.com"},
            [bulk_event(unique_id=f"e{i}") for i in range(1000)],
        )
    )
    post_bulk(sandbox.url, token, body)
    post_bulk(
        sandbox.url,
        token,
        bulk_body(
            bulk_group({"email": "ada@example.com"}, [bulk_event(unique_id="x")])
        ),
    )

    events = sandbox.events()

    assert len(events) == 1001
    assert events[0]["unique_id"] == "e0"
    assert events[-1]["unique_id"] == "x"


def test_per_account_stats_count_only_that_account(sandbox, token):
    other = sandbox.issue_grant("DEMO02", ["events:write"])["access_token"]
    post_event(sandbox.url, token, event_body(unique_id="1"))
    post_event(sandbox.url, other, event_body(unique_id="1"))
    post_event(sandbox.url, other, event_body(unique_id="1"))
    post_event(sandbox.url, other, event_body(name=""))

    mine = sandbox.stats("DEMO01")
    theirs = sandbox.stats("DEMO02")

    assert (mine["events_accepted"], mine["events_deduplicated"]) == (1, 0)
    assert (theirs["events_accepted"], theirs["events_deduplicated"]) == (1, 1)
    assert theirs["events_rejected"] == 1
    assert theirs["requests"] == 3
    assert theirs["responses_by_status"] == {"202": 2, "400": 1}
    assert theirs["events_stored"] == 1
