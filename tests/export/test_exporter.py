import datetime

import pytest
from django.utils import timezone

from integrations.klaviyo.choices import ConnectionState, Endpoint, SyncState
from integrations.klaviyo.exporter import RunSummary, connection_export_run, retry_delay
from integrations.klaviyo.models import (
    KlaviyoConnection,
    KlaviyoQuota,
    OutboundMessageEvent,
)
from integrations.messaging.choices import Channel, MessageKind, MessageStatus
from integrations.messaging.services import message_status_record
from tests.factories import MessageFactory
from tests.klaviyo_helpers import connect, send_messages

pytestmark = pytest.mark.django_db(transaction=True)


def _state_counts():
    counts = {}
    for state in OutboundMessageEvent.objects.values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts


def test_a_trickle_goes_out_as_single_events_with_everything_klaviyo_needs(
    klaviyo, connection
):
    message = MessageFactory(
        brand=connection.brand,
        channel=Channel.WHATSAPP,
        customer__phone_input="+44 20 7946 0958",
        by_associate=True,
    )
    message_status_record(message, MessageStatus.SENT)
    message_status_record(message, MessageStatus.DELIVERED)

    summary = connection_export_run(connection.pk, seconds=5)

    assert summary == RunSummary(exported=2, requests=2)
    stored = sorted(klaviyo.events(account="DEMO01"), key=lambda event: event["metric"])
    assert [event["metric"] for event in stored] == [
        "Delivered WhatsApp in Endear",
        "Sent WhatsApp in Endear",
    ]
    for event, status_time in zip(
        stored, [message.delivered_at, message.sent_at], strict=True
    ):
        assert event["unique_id"] == message.public_id
        assert event["profile"]["phone_number"] == "+442079460958"
        assert "email" not in event["profile"]
        assert datetime.datetime.fromisoformat(event["time"]) == status_time.replace(
            microsecond=0
        )
        assert event["properties"]["Staff Member"] == message.staff_member.name
        assert event["endpoint"] == "create_event"
    assert set(OutboundMessageEvent.objects.values_list("state", "endpoint")) == {
        (SyncState.EXPORTED, Endpoint.EVENTS)
    }


def test_a_backlog_goes_out_through_the_bulk_endpoint_1000_events_a_request(
    klaviyo, connection
):
    send_messages(connection, 2500, campaign_send=True)

    summary = connection_export_run(connection.pk, seconds=30)

    assert summary == RunSummary(exported=2500, requests=3)
    stats = klaviyo.stats(account="DEMO01")
    assert stats["events_accepted"] == 2500
    assert stats["requests_by_endpoint"].get("bulk_create_events") == 3
    assert stats["events_deduplicated"] == 0
    assert _state_counts() == {SyncState.EXPORTED: 2500}


def test_events_of_two_statuses_of_one_message_share_a_request(klaviyo, connection):
    messages = send_messages(connection, 30, campaign_send=True)
    for message in messages:
        message_status_record(message, MessageStatus.DELIVERED)

    summary = connection_export_run(connection.pk, seconds=10)

    assert summary == RunSummary(exported=60, requests=1)
    assert klaviyo.stats(account="DEMO01")["events_accepted"] == 60


def test_a_bulk_request_with_one_bad_event_exports_the_other_999(klaviyo, connection):
    send_messages(connection, 1000, campaign_send=True)
    bad = OutboundMessageEvent.objects.order_by("id")[500]
    OutboundMessageEvent.objects.filter(pk=bad.pk).update(profile_identifier="+1234")

    summary = connection_export_run(connection.pk, seconds=30)

    assert (summary.exported, summary.failed) == (999, 1)
    bad.refresh_from_db()
    assert bad.state == SyncState.FAILED
    assert bad.last_status_code == 400
    assert "phone" in bad.state_reason.lower()
    assert bad.state_reason.startswith("Klaviyo rejected the event: ")
    assert klaviyo.stats(account="DEMO01")["events_accepted"] == 999
    assert klaviyo.events(unique_id=bad.unique_id) == []


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_server_error_is_retried_with_backoff_and_kept_on_the_row(
    klaviyo, connection, status
):
    send_messages(connection, 1)
    klaviyo.set_faults(next_responses=[status])
    before = timezone.now()

    summary = connection_export_run(connection.pk, seconds=0.5)

    event = OutboundMessageEvent.objects.get()
    assert (summary.exported, summary.retried) == (0, 1)
    assert event.state == SyncState.PENDING
    assert event.attempts == 1
    assert event.last_status_code == status
    assert event.last_error.endswith(f"(HTTP {status})")
    delay = (event.next_attempt_at - before).total_seconds()
    assert 4.0 <= delay <= 6.5
    assert klaviyo.stats()["events_accepted"] == 0


def test_a_retried_event_is_exported_once_it_is_due(klaviyo, connection):
    send_messages(connection, 1)
    klaviyo.set_faults(next_responses=[503])
    first = connection_export_run(connection.pk, seconds=0.2)
    OutboundMessageEvent.objects.update(next_attempt_at=timezone.now())

    second = connection_export_run(connection.pk, seconds=5)

    assert (first.retried, first.exported, second.exported) == (1, 0, 1)
    event = OutboundMessageEvent.objects.get()
    assert (event.state, event.attempts, event.last_status_code) == (
        SyncState.EXPORTED,
        2,
        202,
    )
    assert klaviyo.stats()["events_accepted"] == 1


def test_the_backoff_doubles_and_is_capped():
    class Midpoint:
        @staticmethod
        def uniform(low, high):
            return (low + high) / 2

    delays = [retry_delay(attempts, rng=Midpoint) for attempts in (1, 2, 3, 8, 20)]

    assert delays == [5, 10, 20, 600, 600]


def test_a_timeout_after_klaviyo_accepted_is_retried_and_klaviyo_keeps_one_event(
    klaviyo, connection, settings
):
    settings.KLAVIYO_READ_TIMEOUT = 0.5
    send_messages(connection, 1)
    klaviyo.set_faults(hang_after_accept={"count": 1, "seconds": 2})

    first = connection_export_run(connection.pk, seconds=0.2)
    OutboundMessageEvent.objects.update(next_attempt_at=timezone.now())
    second = connection_export_run(connection.pk, seconds=5)

    assert (first.retried, second.exported) == (1, 1)
    stats = klaviyo.stats()
    assert stats["events_accepted"] == 1
    assert stats["events_deduplicated"] == 1
    assert len(klaviyo.events()) == 1


def test_a_429_pauses_that_account_for_retry_after_and_other_brands_carry_on(
    klaviyo, connection
):
    other = connect(klaviyo, "DEMO02", export_enabled_at=connection.export_enabled_at)
    send_messages(connection, 1)
    send_messages(other, 1)
    klaviyo.set_faults(next_responses=[429])
    before = timezone.now()

    paused = connection_export_run(connection.pk, seconds=0.3)
    carried_on = connection_export_run(other.pk, seconds=5)

    assert (paused.rate_limited, paused.exported) == (1, 0)
    assert carried_on.exported == 1
    event = OutboundMessageEvent.objects.get(connection=connection)
    assert event.state == SyncState.PENDING
    assert event.attempts == 0
    quota = KlaviyoQuota.objects.get(account_key="DEMO01", endpoint=Endpoint.EVENTS)
    assert 0.9 <= (quota.paused_until - before).total_seconds() <= 1.5
    assert quota.rate_limited == 1
    assert not KlaviyoQuota.objects.get(account_key="DEMO02").paused_until


@pytest.mark.parametrize("status", [400, 404, 409, 410])
def test_a_terminal_error_fails_the_event_at_once_with_the_reason(
    klaviyo, connection, status
):
    send_messages(connection, 1)
    klaviyo.set_faults(next_responses=[status])

    summary = connection_export_run(connection.pk, seconds=2)

    event = OutboundMessageEvent.objects.get()
    assert (summary.failed, summary.retried) == (1, 0)
    assert (event.state, event.last_status_code, event.attempts) == (
        SyncState.FAILED,
        status,
        1,
    )
    assert event.state_reason.endswith(f"(HTTP {status})")
    assert klaviyo.stats()["requests_by_endpoint"]["create_event"] == 1


def test_an_expired_access_token_is_refreshed_once_and_the_call_retried(
    klaviyo, connection
):
    send_messages(connection, 1)
    klaviyo.set_faults(next_responses=[401])

    summary = connection_export_run(connection.pk, seconds=5)

    assert summary.exported == 1
    assert klaviyo.stats()["token_refreshes"] == 1
    connection.refresh_from_db()
    assert connection.state == ConnectionState.ACTIVE


def test_a_revoked_grant_stops_the_connection_and_its_events_wait_for_reconnection(
    klaviyo, connection
):
    send_messages(connection, 3)
    klaviyo.revoke_grants("DEMO01")

    summary = connection_export_run(connection.pk, seconds=5)

    connection.refresh_from_db()
    assert connection.state == ConnectionState.NEEDS_RECONNECT
    assert summary.exported == 0
    assert _state_counts() == {SyncState.PENDING: 3}
    assert set(OutboundMessageEvent.objects.values_list("attempts", flat=True)) == {0}
    requests_after_stop = klaviyo.stats()["requests"]

    nothing = connection_export_run(connection.pk, seconds=2)

    assert nothing == RunSummary()
    assert klaviyo.stats()["requests"] == requests_after_stop

    grant = klaviyo.issue_grant(
        account_id="DEMO01", scopes=["events:write", "accounts:read"]
    )
    connection.access_token = grant["access_token"]
    connection.refresh_token = grant["refresh_token"]
    connection.state = ConnectionState.ACTIVE
    connection.save()

    reconnected = connection_export_run(connection.pk, seconds=5)

    assert reconnected.exported == 3
    assert klaviyo.stats()["events_accepted"] == 3


def test_a_403_from_an_edge_proxy_asks_the_brand_to_reconnect(klaviyo, connection):
    send_messages(connection, 1)
    klaviyo.set_faults(html_403=1)

    connection_export_run(connection.pk, seconds=2)

    connection.refresh_from_db()
    assert connection.state == ConnectionState.NEEDS_RECONNECT
    assert "HTTP 403" in connection.last_error
    assert OutboundMessageEvent.objects.get().state == SyncState.PENDING


def test_an_event_past_the_maximum_age_is_failed_instead_of_retried(
    klaviyo, connection, settings
):
    settings.KLAVIYO_EXPORT_MAX_AGE_HOURS = 1
    send_messages(connection, 1)
    OutboundMessageEvent.objects.update(
        created_at=timezone.now() - datetime.timedelta(hours=2)
    )
    klaviyo.set_faults(next_responses=[503])

    connection_export_run(connection.pk, seconds=1)

    event = OutboundMessageEvent.objects.get()
    assert event.state == SyncState.FAILED
    assert event.state_reason.startswith(
        "Not accepted by Klaviyo within 1 hours; last error:"
    )


def test_a_skipped_event_never_blocks_the_others(klaviyo, connection):
    send_messages(connection, 1, customer__phone_input="12")
    send_messages(connection, 1)

    summary = connection_export_run(connection.pk, seconds=5)

    assert summary.exported == 1
    assert _state_counts() == {SyncState.SKIPPED: 1, SyncState.EXPORTED: 1}


def test_one_to_one_events_go_before_the_campaign_backlog(klaviyo, connection):
    send_messages(connection, 3000, campaign_send=True)
    one_to_one = send_messages(connection, 1, kind=MessageKind.ONE_TO_ONE)[0]

    connection_export_run(connection.pk, seconds=30)

    received = klaviyo.events(account="DEMO01")
    first = min(received, key=lambda event: event["received_at"])
    assert first["unique_id"] == one_to_one.public_id
    assert len(received) == 3001


def test_nothing_is_sent_for_a_connection_that_needs_reconnecting(klaviyo, connection):
    send_messages(connection, 2)
    KlaviyoConnection.objects.filter(pk=connection.pk).update(
        state=ConnectionState.NEEDS_RECONNECT
    )

    summary = connection_export_run(connection.pk, seconds=1)

    assert summary == RunSummary()
    assert klaviyo.stats()["requests"] == 0
    assert _state_counts() == {SyncState.PENDING: 2}
