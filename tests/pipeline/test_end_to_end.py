"""A simulated day of traffic, exported by a real django-q2 cluster to the
sandbox over HTTP: every eligible status arrives once, nothing else does."""

import datetime
import random

import pytest
from django.utils import timezone

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import OutboundMessageEvent
from integrations.messaging.choices import Channel, Direction, MessageKind
from integrations.messaging.models import Message
from integrations.messaging.simulation import TrafficMix, traffic_simulate
from tests.factories import BrandFactory, KlaviyoConnectionFactory
from tests.klaviyo_helpers import connect
from tests.processes import product_env, qcluster, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Written out here rather than taken from the code under test.
METRICS = {
    ("email", "sent_at"): "Sent Email in Endear",
    ("email", "delivered_at"): "Delivered Email in Endear",
    ("email", "failed_at"): "Failed to Send Email in Endear",
    ("sms", "sent_at"): "Sent SMS in Endear",
    ("sms", "delivered_at"): "Delivered SMS in Endear",
    ("sms", "failed_at"): "Failed to Deliver SMS in Endear",
    ("whatsapp", "sent_at"): "Sent WhatsApp in Endear",
    ("whatsapp", "delivered_at"): "Delivered WhatsApp in Endear",
    ("whatsapp", "failed_at"): "Failed to Send WhatsApp in Endear",
}


def expected_events(brand, export_enabled_at):
    """What Klaviyo should hold for ``brand``, derived from the messages."""
    expected = {}
    messages = Message.objects.filter(brand=brand).select_related(
        "customer", "campaign"
    )
    for message in messages:
        if (
            message.direction != Direction.OUTBOUND
            or message.kind == MessageKind.LIVE_CHAT
        ):
            continue
        times = {
            name: getattr(message, name)
            for name in ("sent_at", "delivered_at", "failed_at")
            if getattr(message, name)
        }
        if not times or min(times.values()) < export_enabled_at:
            continue
        customer = message.customer
        profile = customer.email if message.channel == Channel.EMAIL else customer.phone
        if not profile:
            continue
        for name, moment in times.items():
            expected[(message.public_id, METRICS[(message.channel, name)])] = {
                "profile": profile,
                "time": moment.replace(microsecond=0),
                "message": message,
                "failed": name == "failed_at",
            }
    return expected


def test_a_simulated_day_arrives_in_klaviyo_exactly_once_and_nothing_else_does(klaviyo):
    now = timezone.now()
    day_ago = now - datetime.timedelta(days=1)
    export_on = now - datetime.timedelta(hours=25)
    connection = connect(klaviyo, "DEMO01", export_enabled_at=export_on)
    legacy = KlaviyoConnectionFactory(legacy=True, account_id="DEMO02")
    switched_off = connect(klaviyo, "DEMO03", export_off=True)
    unconnected = BrandFactory()
    mix = TrafficMix(
        one_to_one=200, campaign_recipients=1500, campaign_channel=Channel.EMAIL
    )
    other_mix = TrafficMix(one_to_one=100, campaign_recipients=200)

    with qcluster(product_env(klaviyo.url)):
        traffic_simulate(
            connection.brand, mix, start=day_ago, end=now, rng=random.Random(7)
        )
        for brand in (legacy.brand, switched_off.brand, unconnected):
            traffic_simulate(
                brand, other_mix, start=day_ago, end=now, rng=random.Random(8)
            )
        expected = expected_events(connection.brand, export_on)
        wait_until(
            lambda: (
                not OutboundMessageEvent.objects.filter(
                    state=SyncState.PENDING
                ).exists()
            ),
            timeout=120,
            message="an empty outbox",
        )

    received = klaviyo.events(account="DEMO01")
    assert len(expected) > 1500
    assert {(event["unique_id"], event["metric"]) for event in received} == set(
        expected
    )
    for event in received:
        wanted = expected[(event["unique_id"], event["metric"])]
        message = wanted["message"]
        identifier = "email" if message.channel == Channel.EMAIL else "phone_number"
        sent_identifiers = {
            key: value
            for key, value in event["profile"].items()
            if key in ("email", "phone_number", "external_id")
        }
        assert sent_identifiers == {identifier: wanted["profile"]}
        assert datetime.datetime.fromisoformat(event["time"]) == wanted["time"]
        assert event["properties"]["Message ID"] == message.public_id
        assert event["properties"]["Channel"] == Channel(message.channel).label
        if message.campaign:
            assert event["properties"]["Campaign Name"] == message.campaign.name
        if wanted["failed"]:
            assert event["properties"]["Failure Reason"] == message.failure_reason
        else:
            assert "Failure Reason" not in event["properties"]
    stats = klaviyo.stats()
    assert stats["events_accepted"] == len(expected)
    assert stats["events_deduplicated"] == 0
    assert stats["events_rejected"] == 0
    assert klaviyo.events(account="DEMO02") == []
    assert klaviyo.events(account="DEMO03") == []
    assert OutboundMessageEvent.objects.filter(state=SyncState.FAILED).count() == 0
