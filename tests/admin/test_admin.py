import pytest
from django.contrib.auth.models import Permission
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import OutboundMessageEvent
from integrations.messaging.choices import MessageStatus
from integrations.messaging.services import message_status_record
from tests.factories import (
    KlaviyoConnectionFactory,
    MembershipFactory,
    MessageFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

EVENTS_URL = reverse("admin:klaviyo_outboundmessageevent_changelist")
CONNECTIONS_URL = reverse("admin:klaviyo_klaviyoconnection_changelist")


def events_for(connection, count):
    for message in MessageFactory.create_batch(count, brand=connection.brand):
        message_status_record(message, MessageStatus.SENT)


@pytest.fixture
def two_brands():
    first = KlaviyoConnectionFactory(brand__name="Alpha Apparel")
    second = KlaviyoConnectionFactory(brand__name="Beta Bikes")
    events_for(first, 2)
    events_for(second, 3)
    return first, second


@pytest.fixture
def staff_of_alpha(two_brands, client):
    user = UserFactory(is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__in=["view_outboundmessageevent", "view_klaviyoconnection"]
        )
    )
    MembershipFactory(user=user, brand=two_brands[0].brand)
    client.force_login(user)
    return client


def test_staff_who_are_not_superusers_see_only_their_brands_events(
    two_brands, staff_of_alpha
):
    alpha, beta = two_brands

    response = staff_of_alpha.get(EVENTS_URL)

    assert response.status_code == 200
    shown = {event.connection_id for event in response.context["cl"].result_list}
    assert shown == {alpha.pk}
    assert len(response.context["cl"].result_list) == 2
    beta_event = OutboundMessageEvent.objects.filter(connection=beta).first()
    url = reverse("admin:klaviyo_outboundmessageevent_change", args=[beta_event.pk])
    assert staff_of_alpha.get(url).status_code == 302


def test_the_event_list_reads_a_page_in_a_fixed_number_of_queries(admin_client):
    connection = KlaviyoConnectionFactory()
    events_for(connection, 3)
    admin_client.get(EVENTS_URL)
    with CaptureQueriesContext(db_connection) as few:
        admin_client.get(EVENTS_URL)
    events_for(KlaviyoConnectionFactory(), 40)

    with CaptureQueriesContext(db_connection) as many:
        response = admin_client.get(EVENTS_URL)

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 43
    assert [q["sql"][:90] for q in many] == [q["sql"][:90] for q in few]


def test_the_connection_list_shows_each_sync_state(two_brands, admin_client):
    alpha, beta = two_brands
    OutboundMessageEvent.objects.filter(connection=beta).update(
        state=SyncState.FAILED, last_error="Klaviyo rejected the request"
    )

    response = admin_client.get(CONNECTIONS_URL)

    page = response.content.decode()
    assert response.status_code == 200
    admin = response.context["cl"].model_admin
    rows = {row.pk: row for row in response.context["cl"].result_list}
    assert (admin.pending(rows[alpha.pk]), admin.failed(rows[alpha.pk])) == (2, 0)
    assert (admin.pending(rows[beta.pk]), admin.failed(rows[beta.pk])) == (0, 3)
    assert "access-token" not in page
    assert "refresh-token" not in page


def test_the_resync_action_queues_the_selected_events_again(two_brands, admin_client):
    alpha, _ = two_brands
    OutboundMessageEvent.objects.update(state=SyncState.FAILED, attempts=4)
    chosen = list(
        OutboundMessageEvent.objects.filter(connection=alpha).values_list(
            "pk", flat=True
        )
    )

    response = admin_client.post(
        EVENTS_URL,
        {"action": "resync", "_selected_action": chosen},
        follow=True,
    )

    assert response.status_code == 200
    assert "2 event(s) queued again" in response.content.decode()
    resynced = OutboundMessageEvent.objects.filter(pk__in=chosen)
    assert set(resynced.values_list("state", "attempts")) == {(SyncState.PENDING, 0)}
    others = OutboundMessageEvent.objects.exclude(pk__in=chosen)
    assert set(others.values_list("state", "attempts")) == {(SyncState.FAILED, 4)}


def test_events_cannot_be_added_changed_or_deleted_in_the_admin(admin_client):
    connection = KlaviyoConnectionFactory()
    events_for(connection, 1)
    event = OutboundMessageEvent.objects.get()

    response = admin_client.post(
        reverse("admin:klaviyo_outboundmessageevent_change", args=[event.pk]),
        {"state": SyncState.EXPORTED},
    )

    assert response.status_code == 403
    assert (
        admin_client.get(reverse("admin:klaviyo_outboundmessageevent_add")).status_code
        == 403
    )
    event.refresh_from_db()
    assert event.state == SyncState.PENDING
