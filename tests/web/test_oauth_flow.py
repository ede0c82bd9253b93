import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from integrations.klaviyo.choices import AuthType, ConnectionState, SyncState
from integrations.klaviyo.client import Credentials, KlaviyoClient
from integrations.klaviyo.connections import PENDING_AUTHORIZATIONS_KEY
from integrations.klaviyo.models import KlaviyoConnection, OutboundMessageEvent
from integrations.klaviyo.oauth import code_challenge
from integrations.klaviyo.signals import export_requested
from integrations.messaging.choices import MessageStatus
from integrations.messaging.services import message_status_record
from tests.factories import (
    KlaviyoConnectionFactory,
    MembershipFactory,
    MessageFactory,
)
from tests.web.sandbox_oauth import (
    CALLBACK_PATH,
    consent_answer,
    query_of,
)

pytestmark = pytest.mark.django_db

NOT_MATCHED = (
    "This answer from Klaviyo does not match a connection attempt you started "
    "here, or it was already used. Nothing was connected; start again with "
    "Connect."
)


@pytest.fixture
def captured_exports():
    requested = []

    def listener(sender, connection_id, **kwargs):
        requested.append(connection_id)

    export_requested.connect(listener, dispatch_uid="test-web-exports")
    yield requested
    export_requested.disconnect(dispatch_uid="test-web-exports")


def connect_url(brand):
    return reverse("klaviyo:connect", kwargs={"slug": brand.slug})


def page_messages(response):
    return [
        (message.level_tag, str(message)) for message in response.context["messages"]
    ]


def authorize(client, brand):
    """Press Connect; the URL of Klaviyo's consent page."""
    response = client.post(connect_url(brand))
    assert response.status_code == 302
    return response["Location"]


def test_connect_sends_the_browser_to_klaviyo_with_pkce_s256_and_a_one_time_state(
    admin_client, admin_membership, klaviyo
):
    brand = admin_membership.brand

    location = authorize(admin_client, brand)

    assert location.startswith(f"{klaviyo.url}/oauth/authorize?")
    query = query_of(location)
    pending = admin_client.session[PENDING_AUTHORIZATIONS_KEY]
    assert list(pending) == [query["state"]]
    started = pending[query["state"]]
    assert query == {
        "response_type": "code",
        "client_id": "sandbox-client-id",
        "redirect_uri": f"http://testserver{CALLBACK_PATH}",
        "scope": "accounts:read events:write profiles:write",
        "state": query["state"],
        "code_challenge": code_challenge(started["code_verifier"]),
        "code_challenge_method": "S256",
    }
    assert started["brand_id"] == brand.pk
    assert started["user_id"] == admin_membership.user.pk
    assert len(started["code_verifier"]) >= 43
    assert started["code_verifier"] not in location
    assert klaviyo.stats()["token_requests"] == 0


def test_an_approved_consent_connects_the_brand_and_shows_the_account_name(
    admin_client,
    admin_membership,
    klaviyo,
    captured_exports,
    django_capture_on_commit_callbacks,
):
    brand = admin_membership.brand
    callback = consent_answer(authorize(admin_client, brand), account_id="DEMO02")
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.get(callback, follow=True)

    after = timezone.now()
    connection = KlaviyoConnection.objects.get(brand=brand)
    assert connection.auth_type == AuthType.OAUTH
    assert connection.state == ConnectionState.ACTIVE
    assert (connection.account_id, connection.account_name) == (
        "DEMO02",
        "Demo Coffee Roasters",
    )
    assert connection.scopes == "accounts:read events:write profiles:write"
    assert connection.export_enabled is True
    assert before <= connection.export_enabled_at <= after
    assert before <= connection.connected_at <= after
    assert (
        before + datetime.timedelta(minutes=59)
        < connection.token_expires_at
        <= after + datetime.timedelta(hours=1)
    )
    assert captured_exports == [connection.pk]
    klaviyo.configure(rate_limits_enabled=False)
    answer = KlaviyoClient(
        Credentials(access_token=connection.access_token)
    ).get_accounts()
    assert answer.data["data"][0]["id"] == "DEMO02"
    assert response.redirect_chain[-1][0] == reverse(
        "klaviyo:integration", kwargs={"slug": brand.slug}
    )
    assert page_messages(response) == [
        (
            "success",
            "Connected to the Klaviyo account Demo Coffee Roasters. Message status "
            "export is on from now; messages sent before are not exported.",
        )
    ]
    assert "Demo Coffee Roasters" in response.content.decode()
    assert klaviyo.stats()["token_requests"] == 1
    assert admin_client.session[PENDING_AUTHORIZATIONS_KEY] == {}


def test_a_forged_state_exchanges_nothing_and_stores_nothing(
    admin_client, admin_membership, klaviyo
):
    callback = consent_answer(authorize(admin_client, admin_membership.brand))
    code = query_of(callback)["code"]

    response = admin_client.get(
        CALLBACK_PATH, {"code": code, "state": "forged-by-someone-else"}, follow=True
    )

    assert page_messages(response) == [("error", NOT_MATCHED)]
    assert response.redirect_chain[-1][0] == reverse("klaviyo:brand-list")
    assert klaviyo.stats()["token_requests"] == 0
    assert KlaviyoConnection.objects.count() == 0


def test_a_reused_state_exchanges_nothing_more_and_changes_nothing(
    admin_client, admin_membership, klaviyo
):
    callback = consent_answer(authorize(admin_client, admin_membership.brand))
    admin_client.get(callback, follow=True)
    stored = KlaviyoConnection.objects.values().get()

    response = admin_client.get(callback, follow=True)

    assert page_messages(response) == [("error", NOT_MATCHED)]
    assert klaviyo.stats()["token_requests"] == 1
    assert KlaviyoConnection.objects.values().get() == stored


def test_a_missing_state_exchanges_nothing_and_stores_nothing(
    admin_client, admin_membership, klaviyo
):
    callback = consent_answer(authorize(admin_client, admin_membership.brand))

    response = admin_client.get(
        CALLBACK_PATH, {"code": query_of(callback)["code"]}, follow=True
    )

    assert page_messages(response) == [
        (
            "error",
            "Klaviyo's answer did not say which connection attempt it belongs to, "
            "so it was ignored. Nothing was connected; start again with Connect.",
        )
    ]
    assert klaviyo.stats()["token_requests"] == 0
    assert KlaviyoConnection.objects.count() == 0


def test_a_missing_pkce_verifier_exchanges_nothing_and_stores_nothing(
    admin_client, admin_membership, klaviyo
):
    brand = admin_membership.brand
    callback = consent_answer(authorize(admin_client, brand))
    session = admin_client.session
    pending = session[PENDING_AUTHORIZATIONS_KEY]
    del pending[query_of(callback)["state"]]["code_verifier"]
    session[PENDING_AUTHORIZATIONS_KEY] = pending
    session.save()

    response = admin_client.get(callback, follow=True)

    assert page_messages(response) == [
        (
            "error",
            "The connection attempt lost its PKCE verifier, so Klaviyo's code "
            "cannot be used safely. Nothing was connected; start again with "
            "Connect.",
        )
    ]
    assert response.redirect_chain[-1][0] == reverse(
        "klaviyo:integration", kwargs={"slug": brand.slug}
    )
    assert klaviyo.stats()["token_requests"] == 0
    assert KlaviyoConnection.objects.count() == 0


def test_a_denied_consent_shows_a_clear_message_and_stores_nothing(
    admin_client, admin_membership, klaviyo
):
    brand = admin_membership.brand
    callback = consent_answer(authorize(admin_client, brand), decision="deny")

    response = admin_client.get(callback, follow=True)

    assert query_of(callback)["error"] == "access_denied"
    assert page_messages(response) == [
        (
            "error",
            "Access to Klaviyo was denied on Klaviyo's page, so nothing was "
            "connected. Connect again and choose Allow to connect.",
        )
    ]
    assert response.redirect_chain[-1][0] == reverse(
        "klaviyo:integration", kwargs={"slug": brand.slug}
    )
    assert klaviyo.stats()["token_requests"] == 0
    assert KlaviyoConnection.objects.count() == 0
    assert admin_client.session[PENDING_AUTHORIZATIONS_KEY] == {}


def test_another_error_from_the_authorize_page_names_only_its_code(
    admin_client, admin_membership, klaviyo
):
    state = query_of(authorize(admin_client, admin_membership.brand))["state"]

    response = admin_client.get(
        CALLBACK_PATH,
        {
            "state": state,
            "error": "<script>alert(1)</script>",
            "error_description": "whatever the page said",
        },
        follow=True,
    )

    assert page_messages(response) == [
        (
            "error",
            "Klaviyo did not authorize the connection (unknown error). Nothing "
            "was connected; start again with Connect.",
        )
    ]
    assert "<script>alert(1)</script>" not in response.content.decode()
    assert klaviyo.stats()["token_requests"] == 0
    assert KlaviyoConnection.objects.count() == 0


def test_a_state_started_by_another_user_is_refused(client, admin_membership, klaviyo):
    other = MembershipFactory(brand=admin_membership.brand)
    client.force_login(admin_membership.user)
    callback = consent_answer(authorize(client, admin_membership.brand))
    client.force_login(other.user)

    response = client.get(callback, follow=True)

    assert page_messages(response) == [("error", NOT_MATCHED)]
    assert klaviyo.stats()["token_requests"] == 0
    assert KlaviyoConnection.objects.count() == 0


def test_a_legacy_connection_is_upgraded_in_place_and_exports_from_that_moment(
    admin_client, admin_membership, klaviyo
):
    brand = admin_membership.brand
    legacy = KlaviyoConnectionFactory(brand=brand, legacy=True, export_off=True)
    message = MessageFactory(brand=brand)
    kept_event = OutboundMessageEvent.objects.create(
        connection=legacy,
        message=message,
        status=MessageStatus.SENT,
        channel=message.channel,
        kind=message.kind,
        metric_name="Sent SMS in Endear",
        occurred_at=timezone.now(),
        unique_id=message.public_id,
        state=SyncState.SKIPPED,
        next_attempt_at=timezone.now(),
        created_at=timezone.now(),
    )
    callback = consent_answer(authorize(admin_client, brand))
    before = timezone.now()

    response = admin_client.get(callback, follow=True)

    connection = KlaviyoConnection.objects.get()
    assert connection.pk == legacy.pk
    assert connection.auth_type == AuthType.OAUTH
    assert connection.legacy_api_key_ciphertext == ""
    assert connection.export_enabled is True
    assert connection.export_enabled_at >= before
    assert list(connection.events.all()) == [kept_event]
    assert page_messages(response) == [
        (
            "success",
            "Upgraded to OAuth and connected to the Klaviyo account Demo "
            "Outfitters. Message status export is on from now; messages sent "
            "before are not exported.",
        )
    ]


def test_a_reconnect_after_needs_reconnect_keeps_the_export_moment_and_asks_for_export(
    admin_client,
    admin_membership,
    klaviyo,
    captured_exports,
    django_capture_on_commit_callbacks,
):
    brand = admin_membership.brand
    enabled_at = timezone.now() - datetime.timedelta(days=3)
    waiting = KlaviyoConnectionFactory(
        brand=brand,
        needs_reconnect=True,
        export_enabled_at=enabled_at,
        last_error="Klaviyo refused the grant (invalid_grant)",
    )
    message = MessageFactory(brand=brand)
    message_status_record(message, MessageStatus.SENT, occurred_at=timezone.now())
    # The export task queued for that status started (clearing its request)
    # and met the refused grant.
    KlaviyoConnection.objects.update(export_requested_at=None)
    callback = consent_answer(authorize(admin_client, brand))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.get(callback, follow=True)

    connection = KlaviyoConnection.objects.get()
    assert connection.pk == waiting.pk
    assert connection.state == ConnectionState.ACTIVE
    assert connection.export_enabled_at == enabled_at
    assert connection.last_error == ""
    assert list(connection.events.values_list("state", flat=True)) == [
        SyncState.PENDING
    ]
    assert captured_exports == [connection.pk]
    assert page_messages(response) == [
        (
            "success",
            "Reconnected to the Klaviyo account Demo Outfitters. Statuses that "
            "waited for the reconnection are being exported now.",
        )
    ]


def test_a_reconnect_after_disconnecting_starts_export_afresh(
    admin_client, admin_membership, klaviyo
):
    brand = admin_membership.brand
    old = KlaviyoConnectionFactory(
        brand=brand,
        state=ConnectionState.DISCONNECTED,
        export_off=True,
        access_token="",
        refresh_token="",
    )
    callback = consent_answer(authorize(admin_client, brand))
    before = timezone.now()

    admin_client.get(callback)

    connection = KlaviyoConnection.objects.get()
    assert connection.pk == old.pk
    assert connection.state == ConnectionState.ACTIVE
    assert connection.export_enabled is True
    assert connection.export_enabled_at >= before


def test_an_expired_authorization_is_refused_before_any_exchange(
    admin_client, admin_membership, klaviyo
):
    callback = consent_answer(authorize(admin_client, admin_membership.brand))
    session = admin_client.session
    pending = session[PENDING_AUTHORIZATIONS_KEY]
    pending[query_of(callback)["state"]]["started_at"] -= 11 * 60
    session[PENDING_AUTHORIZATIONS_KEY] = pending
    session.save()

    response = admin_client.get(callback, follow=True)

    assert page_messages(response) == [
        (
            "error",
            "The connection attempt took too long and expired. Nothing was "
            "connected; start again with Connect.",
        )
    ]
    assert klaviyo.stats()["token_requests"] == 0
    assert KlaviyoConnection.objects.count() == 0


def test_a_code_klaviyo_refuses_stores_nothing_and_says_so(
    admin_client, admin_membership, klaviyo
):
    callback = consent_answer(authorize(admin_client, admin_membership.brand))
    query = query_of(callback)

    response = admin_client.get(
        CALLBACK_PATH, {"state": query["state"], "code": "not-a-real-code"}, follow=True
    )

    assert page_messages(response) == [
        (
            "error",
            "Klaviyo refused to finish connecting (invalid_grant: The "
            "authorization code is unknown.). Nothing was connected; start "
            "again with Connect.",
        )
    ]
    assert klaviyo.stats()["token_requests"] == 1
    assert KlaviyoConnection.objects.count() == 0
