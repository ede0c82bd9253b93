import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.klaviyo.choices import ConnectionState, SyncState
from integrations.klaviyo.exporter import connection_export_run
from integrations.klaviyo.models import KlaviyoConnection, OutboundMessageEvent
from integrations.messaging.choices import MessageStatus
from integrations.messaging.services import message_status_record
from tests.factories import MessageFactory
from tests.web.sandbox_oauth import connection_from_grant, consent_answer

pytestmark = pytest.mark.django_db


def test_events_wait_through_a_revoked_grant_and_flow_once_the_brand_reconnects(
    admin_client, admin_membership, klaviyo
):
    brand = admin_membership.brand
    connection = connection_from_grant(klaviyo, brand=brand)
    message = MessageFactory(brand=brand)
    message_status_record(message, MessageStatus.SENT, occurred_at=timezone.now())
    klaviyo.revoke_grants("DEMO01")
    connection_export_run(connection.pk)
    connection.refresh_from_db()
    assert connection.state == ConnectionState.NEEDS_RECONNECT
    requests_while_waiting = klaviyo.stats()["requests"]
    connection_export_run(connection.pk)
    assert klaviyo.stats()["requests"] == requests_while_waiting

    authorize = admin_client.post(
        reverse("klaviyo:connect", kwargs={"slug": brand.slug})
    )
    admin_client.get(consent_answer(authorize["Location"]))
    connection_export_run(connection.pk)

    event = OutboundMessageEvent.objects.get()
    assert KlaviyoConnection.objects.get().state == ConnectionState.ACTIVE
    assert event.state == SyncState.EXPORTED
    assert [exported["unique_id"] for exported in klaviyo.events(account="DEMO01")] == [
        message.public_id
    ]
