import datetime
import logging

import pytest
from django.utils import timezone

from integrations.klaviyo.choices import ConnectionState, SyncState
from integrations.klaviyo.client import Credentials, KlaviyoClient
from integrations.klaviyo.errors import KlaviyoRetryableError
from integrations.klaviyo.models import KlaviyoConnection, OutboundMessageEvent
from integrations.klaviyo.tokens import (
    REFRESH_MARGIN,
    ReconnectRequired,
    connection_credentials,
    connection_credentials_after_unauthorized,
    connection_needs_reconnect,
)
from integrations.messaging.choices import MessageStatus
from integrations.messaging.services import message_status_record
from tests.factories import KlaviyoConnectionFactory, MessageFactory
from tests.web.sandbox_oauth import connection_from_grant

pytestmark = pytest.mark.django_db

ALMOST_EXPIRED = REFRESH_MARGIN - datetime.timedelta(seconds=1)


def test_a_fresh_token_is_handed_over_without_calling_klaviyo(klaviyo):
    connection = connection_from_grant(klaviyo)
    stored = KlaviyoConnection.objects.values().get()

    credentials = connection_credentials(connection)

    assert credentials == Credentials(access_token=connection.access_token)
    assert klaviyo.stats()["token_requests"] == 0
    assert KlaviyoConnection.objects.values().get() == stored


def test_a_token_with_less_than_the_margin_left_is_refreshed_and_stored(klaviyo):
    connection = connection_from_grant(klaviyo, expires_in=ALMOST_EXPIRED)
    old_access, old_refresh = connection.access_token, connection.refresh_token
    before = timezone.now()

    credentials = connection_credentials(connection)

    stored = KlaviyoConnection.objects.get()
    assert credentials == Credentials(access_token=stored.access_token)
    assert stored.access_token not in ("", old_access)
    assert stored.refresh_token not in ("", old_refresh)
    assert before + datetime.timedelta(minutes=59) < stored.token_expires_at
    assert stored.token_expires_at <= timezone.now() + datetime.timedelta(hours=1)
    assert before <= stored.token_refreshed_at <= timezone.now()
    assert stored.scopes == "accounts:read events:write profiles:write"
    assert stored.token_refresh_claimed_until is None
    assert connection.access_token == stored.access_token
    assert klaviyo.stats()["token_refreshes"] == 1
    assert KlaviyoClient(credentials).get_accounts().status_code == 200


def test_each_refresh_presents_the_refresh_token_that_came_back_last(klaviyo):
    connection = connection_from_grant(klaviyo, expires_in=ALMOST_EXPIRED)

    connection_credentials(connection)
    KlaviyoConnection.objects.update(token_expires_at=timezone.now())
    connection.refresh_from_db()
    credentials = connection_credentials(connection)

    stats = klaviyo.stats()
    assert (stats["token_refreshes"], stats["revocations"]) == (2, 0)
    assert KlaviyoClient(credentials).get_accounts().status_code == 200


def test_after_a_401_the_token_is_refreshed_once(klaviyo):
    connection = connection_from_grant(klaviyo)
    rejected = Credentials(access_token=connection.access_token)

    credentials = connection_credentials_after_unauthorized(connection, rejected)

    assert credentials.access_token not in ("", rejected.access_token)
    assert KlaviyoConnection.objects.get().access_token == credentials.access_token
    assert klaviyo.stats()["token_refreshes"] == 1


def test_after_a_401_a_token_another_worker_refreshed_is_used_as_it_is(klaviyo):
    connection = connection_from_grant(klaviyo)
    rejected = Credentials(access_token="the token before the other worker refreshed")

    credentials = connection_credentials_after_unauthorized(connection, rejected)

    assert credentials == Credentials(access_token=connection.access_token)
    assert klaviyo.stats()["token_requests"] == 0


def test_a_revoked_grant_marks_the_connection_and_stops_every_call_for_it(
    klaviyo,
):
    connection = connection_from_grant(klaviyo, expires_in=ALMOST_EXPIRED)
    message = MessageFactory(brand=connection.brand)
    message_status_record(message, MessageStatus.SENT, occurred_at=timezone.now())
    klaviyo.revoke_grants("DEMO01")

    with pytest.raises(ReconnectRequired) as refused:
        connection_credentials(connection)
    requests_after_refusal = klaviyo.stats()["requests"]
    with pytest.raises(ReconnectRequired):
        connection_credentials(KlaviyoConnection.objects.get())
    with pytest.raises(ReconnectRequired):
        connection_credentials_after_unauthorized(
            connection, Credentials(access_token=connection.access_token)
        )

    stored = KlaviyoConnection.objects.get()
    assert stored.state == ConnectionState.NEEDS_RECONNECT
    assert stored.last_error == (
        "Klaviyo refused the grant (invalid_grant): The grant was revoked. (HTTP 400)"
    )
    assert stored.last_error_at == stored.state_changed_at
    assert str(refused.value) == stored.last_error
    assert refused.value.connection_id == connection.pk
    assert connection.state == ConnectionState.NEEDS_RECONNECT
    assert klaviyo.stats()["requests"] == requests_after_refusal
    assert list(OutboundMessageEvent.objects.values_list("state", flat=True)) == [
        SyncState.PENDING
    ]


@pytest.mark.parametrize(
    "traits",
    [
        {"legacy": True},
        {"needs_reconnect": True},
        {"state": ConnectionState.DISCONNECTED},
    ],
    ids=["legacy", "needs_reconnect", "disconnected"],
)
def test_only_an_active_oauth_connection_gets_credentials(klaviyo, traits):
    connection = KlaviyoConnectionFactory(**traits)

    with pytest.raises(ReconnectRequired):
        connection_credentials(connection)
    with pytest.raises(ReconnectRequired):
        connection_credentials_after_unauthorized(
            connection, Credentials(access_token="anything")
        )

    assert klaviyo.stats()["requests"] == 0


def test_an_outage_of_the_token_endpoint_is_retryable_and_changes_nothing(klaviyo):
    connection = connection_from_grant(klaviyo, expires_in=ALMOST_EXPIRED)
    stored = KlaviyoConnection.objects.values().get()
    klaviyo.set_faults(outage_seconds=30)

    with pytest.raises(KlaviyoRetryableError):
        connection_credentials(connection)

    assert KlaviyoConnection.objects.values().get() == stored
    assert klaviyo.stats()["token_refreshes"] == 0


def test_a_token_endpoint_slower_than_the_read_timeout_is_retryable(klaviyo, settings):
    connection = connection_from_grant(klaviyo, expires_in=ALMOST_EXPIRED)
    settings.KLAVIYO_READ_TIMEOUT = 0.2
    klaviyo.set_faults(latency_ms=1000)

    with pytest.raises(KlaviyoRetryableError) as slow:
        connection_credentials(connection)

    assert str(slow.value) == (
        "Klaviyo's OAuth server did not answer in time: ReadTimeout"
    )
    stored = KlaviyoConnection.objects.get()
    assert stored.state == ConnectionState.ACTIVE
    assert stored.token_refresh_claimed_until is None


def test_needs_reconnect_records_the_reason_and_warns_with_the_ids(caplog):
    connection = KlaviyoConnectionFactory()
    before = timezone.now()

    with caplog.at_level(logging.WARNING, logger="integrations.klaviyo.tokens"):
        connection_needs_reconnect(connection, "Klaviyo refused the grant")

    stored = KlaviyoConnection.objects.get()
    assert stored.state == ConnectionState.NEEDS_RECONNECT
    assert stored.last_error == "Klaviyo refused the grant"
    assert before <= stored.state_changed_at == stored.last_error_at
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert (
        record.getMessage() == f"Klaviyo connection {connection.pk} needs reconnecting"
    )
    assert (record.connection_id, record.brand_id) == (
        connection.pk,
        connection.brand_id,
    )
