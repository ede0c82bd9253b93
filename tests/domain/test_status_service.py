import datetime

import pytest
from django.db import connection as db_connection
from django.db import transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.models import OrmQ

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import KlaviyoConnection, OutboundMessageEvent
from integrations.klaviyo.signals import export_requested
from integrations.messaging.choices import (
    Channel,
    Direction,
    MessageKind,
    MessageStatus,
)
from integrations.messaging.models import Message, StatusBypassError
from integrations.messaging.services import (
    StatusRecordResult,
    StatusUpdate,
    message_status_record,
    message_status_record_many,
)
from tests.factories import (
    CustomerFactory,
    KlaviyoConnectionFactory,
    MessageFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime.datetime(2026, 12, 1, 15, 30, 12, 345678, tzinfo=datetime.UTC)


@pytest.fixture
def connection():
    return KlaviyoConnectionFactory(export_enabled_at=T0 - datetime.timedelta(days=1))


@pytest.fixture
def captured_exports():
    requests = []

    def listener(sender, connection_id, **kwargs):
        requests.append(connection_id)

    export_requested.connect(listener, dispatch_uid="test-listener")
    yield requests
    export_requested.disconnect(dispatch_uid="test-listener")


def test_a_sent_sms_becomes_one_pending_event_with_everything_klaviyo_needs(
    connection, settings
):
    settings.PLATFORM_BASE_URL = "https://app.example.com"
    message = MessageFactory(
        brand=connection.brand,
        customer__phone_input="(415) 555-0100",
        customer__email="ada@example.com",
        by_associate=True,
        staff_member__name="Grace",
        staff_member__store__name="SoHo",
    )

    result = message_status_record(message, MessageStatus.SENT, occurred_at=T0)

    assert result == StatusRecordResult(changed=1, events_recorded=1)
    assert (message.status, message.sent_at) == (MessageStatus.SENT, T0)
    event = OutboundMessageEvent.objects.get()
    assert event.connection == connection
    assert event.message == message
    assert event.status == MessageStatus.SENT
    assert event.metric_name == "Sent SMS in Endear"
    assert event.profile_identifier == "+14155550100"
    assert event.occurred_at == T0
    assert event.unique_id == message.public_id
    assert event.state == SyncState.PENDING
    assert event.attempts == 0
    assert event.properties == {
        "Channel": "SMS",
        "Message Type": "1-on-1",
        "Message ID": message.public_id,
        "Customer URL": f"https://app.example.com/customers/{message.customer.public_id}",
        "Store": "SoHo",
        "Staff Member": "Grace",
    }


def test_a_failed_campaign_email_carries_the_campaign_and_the_reason(connection):
    message = MessageFactory(
        brand=connection.brand,
        channel=Channel.EMAIL,
        campaign_send=True,
        campaign__name="Winter Drop",
        customer__email="ada@example.com",
    )

    message_status_record(
        message, MessageStatus.FAILED, occurred_at=T0, failure_reason="Mailbox full"
    )

    event = OutboundMessageEvent.objects.get()
    assert event.metric_name == "Failed to Send Email in Endear"
    assert event.profile_identifier == "ada@example.com"
    assert event.properties["Message Type"] == "Campaign"
    assert event.properties["Campaign ID"] == message.campaign.public_id
    assert event.properties["Campaign Name"] == "Winter Drop"
    assert event.properties["Failure Reason"] == "Mailbox full"
    assert message.failure_reason == "Mailbox full"


def test_a_sent_event_carries_no_failure_reason(connection):
    message = MessageFactory(brand=connection.brand)

    message_status_record(message, MessageStatus.SENT, occurred_at=T0)

    assert "Failure Reason" not in OutboundMessageEvent.objects.get().properties


def test_an_error_inside_the_transaction_leaves_neither_the_status_nor_an_event(
    connection, captured_exports, django_capture_on_commit_callbacks
):
    message = MessageFactory(brand=connection.brand)

    def record_then_fail():
        with transaction.atomic():
            message_status_record(message, MessageStatus.SENT, occurred_at=T0)
            raise ZeroDivisionError

    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(ZeroDivisionError),
    ):
        record_then_fail()

    message.refresh_from_db()
    assert (message.status, message.sent_at) == (MessageStatus.QUEUED, None)
    assert OutboundMessageEvent.objects.count() == 0
    assert captured_exports == []


def test_a_repeated_status_changes_nothing(connection):
    message = MessageFactory(brand=connection.brand)
    message_status_record(message, MessageStatus.SENT, occurred_at=T0)

    result = message_status_record(
        message, MessageStatus.SENT, occurred_at=T0 + datetime.timedelta(minutes=5)
    )

    assert result == StatusRecordResult(unchanged=1)
    message.refresh_from_db()
    assert message.sent_at == T0
    assert OutboundMessageEvent.objects.count() == 1


def test_a_late_status_keeps_its_own_time_and_does_not_move_the_status_back(connection):
    message = MessageFactory(brand=connection.brand)
    delivered_at = T0 + datetime.timedelta(seconds=4)
    message_status_record(message, MessageStatus.DELIVERED, occurred_at=delivered_at)

    message_status_record(message, MessageStatus.SENT, occurred_at=T0)

    message.refresh_from_db()
    assert message.status == MessageStatus.DELIVERED
    assert (message.sent_at, message.delivered_at) == (T0, delivered_at)
    assert sorted(
        OutboundMessageEvent.objects.values_list("metric_name", "occurred_at")
    ) == [("Delivered SMS in Endear", delivered_at), ("Sent SMS in Endear", T0)]


def test_a_status_going_backwards_is_recorded_but_not_exported_again(connection):
    message = MessageFactory(brand=connection.brand, status=MessageStatus.CREATED)
    message_status_record(message, MessageStatus.SENT, occurred_at=T0)
    message_status_record(
        message, MessageStatus.DELIVERED, occurred_at=T0 + datetime.timedelta(seconds=2)
    )

    queued_at = T0 + datetime.timedelta(seconds=3)
    result = message_status_record(message, MessageStatus.QUEUED, occurred_at=queued_at)

    assert result == StatusRecordResult(changed=1)
    message.refresh_from_db()
    assert (message.status, message.queued_at) == (MessageStatus.DELIVERED, queued_at)
    assert OutboundMessageEvent.objects.count() == 2


def test_statuses_of_a_message_sent_before_export_was_switched_on_are_history():
    connection = KlaviyoConnectionFactory(export_enabled_at=T0)
    message = MessageFactory(brand=connection.brand)
    message_status_record(
        message, MessageStatus.SENT, occurred_at=T0 - datetime.timedelta(seconds=1)
    )

    message_status_record(
        message, MessageStatus.DELIVERED, occurred_at=T0 + datetime.timedelta(minutes=1)
    )

    assert message.status == MessageStatus.DELIVERED
    assert OutboundMessageEvent.objects.count() == 0


@pytest.mark.parametrize(
    "connection_traits",
    [{"legacy": True}, {"export_off": True}],
    ids=["legacy API key", "export switched off"],
)
def test_nothing_is_recorded_for_a_connection_that_does_not_export(connection_traits):
    connection = KlaviyoConnectionFactory(**connection_traits)
    message = MessageFactory(brand=connection.brand)

    result = message_status_record(message, MessageStatus.SENT)

    assert result == StatusRecordResult(changed=1)
    assert OutboundMessageEvent.objects.count() == 0


def test_a_brand_without_a_connection_records_the_status_and_no_event():
    message = MessageFactory()

    message_status_record(message, MessageStatus.SENT)

    assert Message.objects.get().status == MessageStatus.SENT
    assert OutboundMessageEvent.objects.count() == 0


def test_events_wait_while_the_connection_needs_reconnecting():
    connection = KlaviyoConnectionFactory(needs_reconnect=True)
    message = MessageFactory(brand=connection.brand)

    message_status_record(message, MessageStatus.SENT)

    assert OutboundMessageEvent.objects.get().state == SyncState.PENDING


@pytest.mark.parametrize(
    ("direction", "kind"),
    [
        (Direction.INBOUND, MessageKind.ONE_TO_ONE),
        (Direction.OUTBOUND, MessageKind.LIVE_CHAT),
    ],
)
def test_inbound_and_live_chat_messages_are_never_exported(connection, direction, kind):
    message = MessageFactory(brand=connection.brand, direction=direction, kind=kind)

    message_status_record(message, MessageStatus.DELIVERED)

    assert OutboundMessageEvent.objects.count() == 0


@pytest.mark.parametrize(
    ("channel", "customer", "reason"),
    [
        (Channel.EMAIL, {"email": ""}, "The customer has no email address."),
        (Channel.SMS, {"phone_input": "12"}, "'12' is not a valid phone number."),
        (Channel.WHATSAPP, {"phone_input": ""}, "The customer has no phone number."),
    ],
)
def test_a_customer_klaviyo_cannot_identify_gives_a_skipped_event_with_the_reason(
    connection,
    channel,
    customer,
    reason,
    captured_exports,
    django_capture_on_commit_callbacks,
):
    message = MessageFactory(
        brand=connection.brand,
        channel=channel,
        customer=CustomerFactory(brand=connection.brand, **customer),
    )

    with django_capture_on_commit_callbacks(execute=True):
        message_status_record(message, MessageStatus.SENT)

    event = OutboundMessageEvent.objects.get()
    assert (event.state, event.state_reason, event.profile_identifier) == (
        SyncState.SKIPPED,
        reason,
        "",
    )
    assert captured_exports == []


def test_many_changes_ask_for_one_export_per_connection_after_commit(
    connection, captured_exports, django_capture_on_commit_callbacks
):
    messages = MessageFactory.create_batch(50, brand=connection.brand)
    other = KlaviyoConnectionFactory(export_enabled_at=connection.export_enabled_at)
    other_messages = MessageFactory.create_batch(3, brand=other.brand)

    with django_capture_on_commit_callbacks(execute=True):
        message_status_record_many(
            StatusUpdate(message.pk, MessageStatus.SENT, T0)
            for message in messages + other_messages
        )
        for message in messages:
            message_status_record(message, MessageStatus.DELIVERED)

    assert sorted(captured_exports) == sorted([connection.pk, other.pk])
    assert (
        KlaviyoConnection.objects.filter(export_requested_at__isnull=False).count() == 2
    )


def test_the_export_request_queues_one_background_task(
    connection, django_capture_on_commit_callbacks
):
    messages = MessageFactory.create_batch(20, brand=connection.brand)

    with django_capture_on_commit_callbacks(execute=True):
        for message in messages:
            message_status_record(message, MessageStatus.SENT)

    queued = [entry.task for entry in OrmQ.objects.all()]
    assert [(task["func"], task["args"]) for task in queued] == [
        ("integrations.klaviyo.tasks.export_connection", (connection.pk,))
    ]


def test_a_stale_export_request_is_made_again(
    connection, captured_exports, django_capture_on_commit_callbacks
):
    KlaviyoConnection.objects.filter(pk=connection.pk).update(
        export_requested_at=timezone.now() - datetime.timedelta(minutes=10)
    )
    message = MessageFactory(brand=connection.brand)

    with django_capture_on_commit_callbacks(execute=True):
        message_status_record(message, MessageStatus.SENT)

    assert captured_exports == [connection.pk]


def test_a_bulk_change_of_10000_messages_writes_one_event_per_eligible_change(
    connection,
):
    campaign_messages = MessageFactory.create_batch(
        9000, brand=connection.brand, campaign_send=True
    )
    live_chat = MessageFactory.create_batch(
        1000, brand=connection.brand, kind=MessageKind.LIVE_CHAT
    )
    updates = [
        StatusUpdate(message.pk, MessageStatus.SENT, T0)
        for message in campaign_messages + live_chat
    ]

    with CaptureQueriesContext(db_connection) as queries:
        result = message_status_record_many(updates)

    assert result == StatusRecordResult(changed=10_000, events_recorded=9000)
    assert OutboundMessageEvent.objects.count() == 9000
    assert set(
        OutboundMessageEvent.objects.values_list("message__kind", flat=True)
    ) == {MessageKind.CAMPAIGN}
    assert Message.objects.filter(status=MessageStatus.SENT).count() == 10_000
    # Per 1,000 messages: the locking select, the connections of their
    # brands and one update; the campaigns and one insert where there are
    # some (9 of the 10 chunks). The export is asked for after the commit.
    assert len(_data_queries(queries)) == 10 * 3 + 9 * 2


def test_the_number_of_queries_does_not_grow_with_the_number_of_messages(connection):
    def record(count, offset):
        messages = MessageFactory.create_batch(count, brand=connection.brand)
        updates = [
            StatusUpdate(
                message.pk,
                MessageStatus.SENT,
                T0 + datetime.timedelta(seconds=i + offset),
            )
            for i, message in enumerate(messages)
        ]
        with CaptureQueriesContext(db_connection) as queries:
            message_status_record_many(updates)
        return _data_queries(queries)

    few, many = record(10, 0), record(900, 10_000)

    assert len(few) == len(many) == 4
    assert many[-1].startswith("INSERT")


def _data_queries(queries):
    """The statements that read or write rows, without transaction control."""
    return [
        query["sql"]
        for query in queries.captured_queries
        if not query["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN"))
    ]


def test_a_status_change_of_an_unknown_message_is_counted_and_ignored(connection):
    message = MessageFactory(brand=connection.brand)

    result = message_status_record_many(
        [
            StatusUpdate(message.pk, MessageStatus.SENT, T0),
            StatusUpdate(message.pk + 1000, MessageStatus.SENT, T0),
        ]
    )

    assert result == StatusRecordResult(changed=1, unknown=1, events_recorded=1)


def test_a_status_update_around_the_service_is_refused(connection):
    message = MessageFactory(brand=connection.brand)

    with pytest.raises(StatusBypassError, match=r"QuerySet\.update"):
        Message.objects.filter(pk=message.pk).update(status=MessageStatus.SENT)
    message.status = MessageStatus.SENT
    with pytest.raises(StatusBypassError, match="bulk_update"):
        Message.objects.bulk_update([message], ["status"])
    with pytest.raises(StatusBypassError, match=r"Message\.save"):
        message.save()
    message.refresh_from_db()
    message.sent_at = T0
    with pytest.raises(StatusBypassError, match=r"Message\.save"):
        message.save(update_fields=["sent_at"])

    message.refresh_from_db()
    assert (message.status, message.sent_at) == (MessageStatus.QUEUED, None)
    assert OutboundMessageEvent.objects.count() == 0


def test_creating_a_message_that_already_left_is_refused(connection):
    with pytest.raises(StatusBypassError, match="Creating a sent"):
        MessageFactory(brand=connection.brand, status=MessageStatus.DELIVERED)
    with pytest.raises(StatusBypassError, match="bulk_create"):
        Message.objects.bulk_create(
            [
                MessageFactory.build(
                    brand=connection.brand,
                    customer=CustomerFactory(brand=connection.brand),
                    sent_at=T0,
                )
            ]
        )

    assert Message.objects.count() == 0


def test_other_fields_of_a_message_can_still_be_saved(connection):
    message = MessageFactory(brand=connection.brand)
    message_status_record(message, MessageStatus.SENT, occurred_at=T0)

    message.failure_reason = "noted by support"
    message.save()

    message.refresh_from_db()
    assert (message.failure_reason, message.status) == (
        "noted by support",
        MessageStatus.SENT,
    )
