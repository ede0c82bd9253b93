import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.klaviyo.choices import ConnectionState
from integrations.klaviyo.client import Credentials, KlaviyoClient
from integrations.klaviyo.errors import KlaviyoUnauthorized
from integrations.klaviyo.models import KlaviyoConnection
from integrations.messaging.choices import MembershipRole
from tests.factories import KlaviyoConnectionFactory, MembershipFactory
from tests.web.sandbox_oauth import connection_from_grant

pytestmark = pytest.mark.django_db


def action_url(name, brand):
    return reverse(f"klaviyo:{name}", kwargs={"slug": brand.slug})


def page_messages(response):
    return [
        (message.level_tag, str(message)) for message in response.context["messages"]
    ]


def test_disconnect_revokes_the_grant_at_klaviyo_and_clears_the_secrets(
    admin_client, admin_membership, klaviyo
):
    connection = connection_from_grant(klaviyo, brand=admin_membership.brand)
    access_token = connection.access_token

    response = admin_client.post(
        action_url("disconnect", connection.brand), follow=True
    )

    connection.refresh_from_db()
    assert connection.state == ConnectionState.DISCONNECTED
    assert (
        connection.access_token_ciphertext,
        connection.refresh_token_ciphertext,
        connection.legacy_api_key_ciphertext,
    ) == ("", "", "")
    assert connection.token_expires_at is None
    assert (connection.export_enabled, connection.export_enabled_at) == (False, None)
    assert page_messages(response) == [
        ("success", "Klaviyo is disconnected and its access was revoked at Klaviyo.")
    ]
    stats = klaviyo.stats()
    assert (stats["revocations"], stats["grants_active"]) == (1, 0)
    with pytest.raises(KlaviyoUnauthorized):
        KlaviyoClient(Credentials(access_token=access_token)).get_accounts()


def test_disconnect_still_disconnects_when_klaviyo_cannot_be_reached_and_says_so(
    admin_client, admin_membership, klaviyo, settings
):
    connection = connection_from_grant(klaviyo, brand=admin_membership.brand)
    # Nothing listens on port 9 of the loopback interface.
    settings.KLAVIYO_API_URL = "http://127.0.0.1:9"

    response = admin_client.post(
        action_url("disconnect", connection.brand), follow=True
    )

    connection.refresh_from_db()
    assert connection.state == ConnectionState.DISCONNECTED
    assert connection.refresh_token_ciphertext == ""
    assert connection.export_enabled is False
    assert page_messages(response) == [
        (
            "warning",
            "Klaviyo is disconnected here and nothing more will be sent, but "
            "Klaviyo could not be reached to revoke this site's access. Remove "
            "the app in your Klaviyo account's integration settings to revoke "
            "it there too.",
        )
    ]
    assert klaviyo.stats()["revocations"] == 0


def test_disconnecting_a_legacy_connection_deletes_the_key_and_calls_nobody(
    admin_client, admin_membership, klaviyo
):
    connection = KlaviyoConnectionFactory(brand=admin_membership.brand, legacy=True)

    response = admin_client.post(
        action_url("disconnect", connection.brand), follow=True
    )

    connection.refresh_from_db()
    assert connection.state == ConnectionState.DISCONNECTED
    assert connection.legacy_api_key_ciphertext == ""
    assert page_messages(response) == [
        (
            "success",
            "Klaviyo is disconnected and the private API key was deleted here. "
            "Delete the key in your Klaviyo account's settings too.",
        )
    ]
    assert klaviyo.stats()["requests"] == 0


def test_switching_export_on_starts_it_from_that_moment(admin_client, admin_membership):
    connection = KlaviyoConnectionFactory(brand=admin_membership.brand, export_off=True)
    before = timezone.now()

    response = admin_client.post(
        action_url("export", connection.brand), {"enabled": "on"}, follow=True
    )

    connection.refresh_from_db()
    assert connection.export_enabled is True
    assert before <= connection.export_enabled_at <= timezone.now()
    assert page_messages(response) == [
        (
            "success",
            "Message status export is on: statuses of messages sent from now on "
            "are exported to Klaviyo.",
        )
    ]
    assert "On</span> since" in response.content.decode()


def test_switching_export_off_clears_the_moment_and_on_again_does_not_reuse_it(
    admin_client, admin_membership
):
    connection = KlaviyoConnectionFactory(brand=admin_membership.brand)
    earlier = connection.export_enabled_at

    admin_client.post(action_url("export", connection.brand), {"enabled": "off"})
    connection.refresh_from_db()
    assert (connection.export_enabled, connection.export_enabled_at) == (False, None)
    admin_client.post(action_url("export", connection.brand), {"enabled": "on"})

    connection.refresh_from_db()
    assert connection.export_enabled is True
    assert connection.export_enabled_at > earlier


def test_switching_export_on_twice_keeps_the_first_moment(
    admin_client, admin_membership
):
    connection = KlaviyoConnectionFactory(brand=admin_membership.brand)
    enabled_at = connection.export_enabled_at

    admin_client.post(action_url("export", connection.brand), {"enabled": "on"})

    connection.refresh_from_db()
    assert connection.export_enabled_at == enabled_at


def test_a_post_without_a_value_flips_the_switch(admin_client, admin_membership):
    connection = KlaviyoConnectionFactory(brand=admin_membership.brand)

    admin_client.post(action_url("export", connection.brand))

    connection.refresh_from_db()
    assert connection.export_enabled is False


def test_export_cannot_be_switched_on_for_a_legacy_connection(
    admin_client, admin_membership
):
    connection = KlaviyoConnectionFactory(
        brand=admin_membership.brand, legacy=True, export_off=True
    )

    response = admin_client.post(
        action_url("export", connection.brand), {"enabled": "on"}, follow=True
    )

    connection.refresh_from_db()
    assert (connection.export_enabled, connection.export_enabled_at) == (False, None)
    assert page_messages(response) == [
        (
            "error",
            "Message status export needs a Klaviyo connection made with OAuth; "
            "connect (or reconnect) with OAuth first.",
        )
    ]


def test_a_member_who_is_not_an_admin_sees_the_card_but_changes_nothing(
    client, klaviyo
):
    membership = MembershipFactory(role=MembershipRole.MEMBER)
    connection = KlaviyoConnectionFactory(brand=membership.brand)
    client.force_login(membership.user)

    page = client.get(action_url("integration", membership.brand))
    answers = [
        client.post(action_url(name, membership.brand)).status_code
        for name in ("connect", "disconnect", "export")
    ]

    assert page.status_code == 200
    assert (
        "Only the brand's admins can change this connection." in page.content.decode()
    )
    assert 'action="/brands/' not in page.content.decode()
    assert answers == [403, 403, 403]
    connection.refresh_from_db()
    assert connection.state == ConnectionState.ACTIVE
    assert connection.export_enabled is True
    assert klaviyo.stats()["requests"] == 0


def test_the_card_says_what_state_the_connection_is_in(admin_client, admin_membership):
    brand = admin_membership.brand
    page_url = action_url("integration", brand)

    not_connected = admin_client.get(page_url).content.decode()
    connection = KlaviyoConnectionFactory(
        brand=brand,
        account_name="Acme Klaviyo",
        connected_at=datetime.datetime(2026, 3, 4, 10, 30, tzinfo=datetime.UTC),
    )
    connected = admin_client.get(page_url).content.decode()
    KlaviyoConnection.objects.update(state=ConnectionState.NEEDS_RECONNECT)
    needs_reconnect = admin_client.get(page_url).content.decode()
    connection.delete()
    KlaviyoConnectionFactory(brand=brand, legacy=True, export_off=True)
    legacy = admin_client.get(page_url).content.decode()

    assert "Not connected." in not_connected
    assert ">Connect Klaviyo</button>" in not_connected
    assert (
        "Connected</span> to <strong>Acme Klaviyo</strong> since March 4, 2026, "
        "10:30 UTC." in connected
    )
    assert ">Disconnect</button>" in connected
    assert "Needs reconnecting." in needs_reconnect
    assert ">Reconnect</button>" in needs_reconnect
    assert "Message status export is off for API-key connections" in legacy
    assert "Reconnect with OAuth to turn message status export on." in legacy
    assert ">Reconnect with OAuth</button>" in legacy
    for page in (not_connected, connected, needs_reconnect, legacy):
        assert "Klaviyo creates a new profile for them" in page
        assert "the brand's Klaviyo bill" in page
