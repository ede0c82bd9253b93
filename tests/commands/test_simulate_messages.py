import io
import re

import pytest
from django.core.management import CommandError, call_command

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import OutboundMessageEvent
from integrations.messaging.choices import Direction, MessageKind, MessageStatus
from integrations.messaging.models import Message
from tests.factories import BrandFactory, KlaviyoConnectionFactory

pytestmark = pytest.mark.django_db


def simulate(*args):
    out = io.StringIO()
    call_command("simulate_messages", *args, "--quiet", "--seed", "3", stdout=out)
    return out.getvalue()


def test_a_round_mixes_every_kind_of_traffic_and_records_events_for_exporting_brands():
    connection = KlaviyoConnectionFactory(brand__slug="exporting")
    silent = BrandFactory(slug="silent")

    output = simulate(
        "--brand",
        "exporting",
        "--brand",
        "silent",
        "--one-to-one",
        "12",
        "--campaign-size",
        "40",
    )

    # 12 1-on-1, 3 inbound, 2 live chat, 2 never sent, 40 campaign: per brand.
    assert Message.objects.filter(brand=connection.brand).count() == 59
    assert Message.objects.filter(brand=silent).count() == 59
    brand_messages = Message.objects.filter(brand=connection.brand)
    assert brand_messages.filter(direction=Direction.INBOUND).count() == 3
    assert brand_messages.filter(kind=MessageKind.LIVE_CHAT).count() == 2
    assert brand_messages.filter(kind=MessageKind.CAMPAIGN).count() == 40
    assert brand_messages.filter(status=MessageStatus.EXPIRED).count() == 2
    assert not brand_messages.filter(status__in=["created", "queued"]).exists()
    events = OutboundMessageEvent.objects.all()
    assert events.exists()
    assert not events.exclude(connection=connection).exists()
    assert not events.filter(message__kind=MessageKind.LIVE_CHAT).exists()
    assert not events.filter(message__direction=Direction.INBOUND).exists()
    recorded = int(re.search(r": (\d+) Klaviyo events recorded", output).group(1))
    assert recorded == events.count()
    assert output.startswith("Simulated 118 messages and ")
    assert set(events.values_list("state", flat=True)) <= {
        SyncState.PENDING,
        SyncState.SKIPPED,
    }


def test_an_unknown_brand_is_refused():
    BrandFactory(slug="known")

    with pytest.raises(CommandError, match="No brand with slug nope"):
        simulate("--brand", "nope")

    assert Message.objects.count() == 0
