import pytest
from django.utils import timezone
from playwright.sync_api import expect

from integrations.klaviyo.choices import AuthType, ConnectionState
from integrations.klaviyo.client import Credentials, KlaviyoClient
from integrations.klaviyo.errors import KlaviyoUnauthorized
from integrations.klaviyo.models import KlaviyoConnection
from tests.browser.conftest import screenshot
from tests.factories import KlaviyoConnectionFactory, MembershipFactory
from tests.web.sandbox_oauth import connection_from_grant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, site, user):
    page.goto(f"{site.url}/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()


def open_klaviyo_page(page, brand):
    page.get_by_role("link", name=brand.name).click()
    expect(page.get_by_role("heading", name="Klaviyo", exact=True)).to_be_visible()


def test_a_brand_admin_connects_and_comes_back_connected_with_the_account_name(
    page, site, sandbox
):
    membership = MembershipFactory(brand__name="Northwind Outfitters")
    brand = membership.brand
    log_in(page, site, membership.user)
    open_klaviyo_page(page, brand)
    expect(page.locator("#connection-status")).to_contain_text("Not connected.")
    screenshot(page, "connect-1-not-connected")
    before = timezone.now()

    page.get_by_role("button", name="Connect Klaviyo").click()
    expect(
        page.get_by_role("heading", name="Connect your Klaviyo account")
    ).to_be_visible()
    assert page.url.startswith(f"{sandbox.url}/oauth/authorize?")
    page.get_by_label("Account").select_option("DEMO02")
    screenshot(page, "connect-2-consent")
    page.get_by_role("button", name="Allow").click()

    expect(page.locator("#connection-status")).to_contain_text(
        "Connected to Demo Coffee Roasters since"
    )
    expect(page.get_by_role("status")).to_contain_text(
        "Connected to the Klaviyo account Demo Coffee Roasters."
    )
    expect(page.locator("#export-status")).to_contain_text("On since")
    screenshot(page, "connect-3-connected")
    connection = KlaviyoConnection.objects.get(brand=brand)
    assert (connection.state, connection.account_id) == (
        ConnectionState.ACTIVE,
        "DEMO02",
    )
    assert connection.export_enabled_at >= before
    assert page.url == f"{site.url}/brands/{brand.slug}/integrations/klaviyo/"
    assert sandbox.stats()["token_requests"] == 1


def test_a_brand_admin_who_denies_sees_a_clear_message_and_nothing_is_connected(
    page, site, sandbox
):
    membership = MembershipFactory(brand__name="Southwind Coffee")
    log_in(page, site, membership.user)
    open_klaviyo_page(page, membership.brand)

    page.get_by_role("button", name="Connect Klaviyo").click()
    page.get_by_role("button", name="Deny").click()

    expect(page.get_by_role("alert")).to_have_text(
        "Access to Klaviyo was denied on Klaviyo's page, so nothing was "
        "connected. Connect again and choose Allow to connect."
    )
    expect(page.locator("#connection-status")).to_contain_text("Not connected.")
    screenshot(page, "deny-1-message")
    assert KlaviyoConnection.objects.count() == 0
    assert sandbox.stats()["token_requests"] == 0


def test_a_legacy_brand_sees_the_prompt_and_upgrades_in_place(page, site, sandbox):
    membership = MembershipFactory(brand__name="Legacy Lane")
    legacy = KlaviyoConnectionFactory(
        brand=membership.brand, legacy=True, export_off=True
    )
    log_in(page, site, membership.user)
    open_klaviyo_page(page, membership.brand)
    prompt = page.locator("#legacy-prompt")
    expect(prompt).to_contain_text(
        "Message status export is off for API-key connections"
    )
    expect(prompt).to_contain_text(
        "Reconnect with OAuth to turn message status export on."
    )
    screenshot(page, "legacy-1-prompt")
    before = timezone.now()

    page.get_by_role("button", name="Reconnect with OAuth").click()
    page.get_by_role("button", name="Allow").click()

    expect(page.locator("#connection-status")).to_contain_text(
        "Connected to Demo Outfitters since"
    )
    expect(page.locator("#legacy-prompt")).to_have_count(0)
    expect(page.locator("#export-status")).to_contain_text("On since")
    screenshot(page, "legacy-2-upgraded")
    connection = KlaviyoConnection.objects.get()
    assert connection.pk == legacy.pk
    assert connection.auth_type == AuthType.OAUTH
    assert connection.legacy_api_key_ciphertext == ""
    assert connection.export_enabled is True
    assert connection.export_enabled_at >= before


def test_disconnect_revokes_the_grant_at_klaviyo(page, site, sandbox):
    membership = MembershipFactory(brand__name="Eastwind Pets")
    connection = connection_from_grant(
        sandbox,
        account_id="DEMO03",
        brand=membership.brand,
        account_name="Demo Pet Supplies",
    )
    old_token = connection.access_token
    log_in(page, site, membership.user)
    open_klaviyo_page(page, membership.brand)
    expect(page.locator("#connection-status")).to_contain_text(
        "Connected to Demo Pet Supplies"
    )

    page.get_by_role("button", name="Disconnect").click()

    expect(page.get_by_role("status")).to_have_text(
        "Klaviyo is disconnected and its access was revoked at Klaviyo."
    )
    expect(page.locator("#connection-status")).to_contain_text("Not connected.")
    screenshot(page, "disconnect-1-done")
    stats = sandbox.stats()
    assert (stats["revocations"], stats["grants_active"]) == (1, 0)
    with pytest.raises(KlaviyoUnauthorized):
        KlaviyoClient(Credentials(access_token=old_token)).get_accounts()
    connection.refresh_from_db()
    assert connection.state == ConnectionState.DISCONNECTED
    assert connection.export_enabled is False
