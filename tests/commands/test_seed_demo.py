import pytest
from django.contrib.auth import get_user_model

from integrations.klaviyo.choices import AuthType, ConnectionState
from integrations.klaviyo.models import KlaviyoConnection, OutboundMessageEvent
from integrations.messaging.choices import Channel, MembershipRole
from integrations.messaging.management.demo import DEMO_LEGACY_API_KEY
from integrations.messaging.models import (
    Brand,
    BrandMembership,
    Campaign,
    Customer,
    Message,
    StaffMember,
    Store,
)
from tests.commands.conftest import run_command
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

FIRST_RUN_SUMMARY = (
    "Created 4 users, 3 brands, 6 memberships, 6 stores, 11 staff members, "
    "16 customers, 9 campaigns, 1 Klaviyo connection."
)


def _counts():
    return {
        model.__name__: model.objects.count()
        for model in (
            get_user_model(),
            Brand,
            BrandMembership,
            Store,
            StaffMember,
            Customer,
            Campaign,
            KlaviyoConnection,
            Message,
            OutboundMessageEvent,
        )
    }


def test_seed_demo_prints_the_logins_the_brands_and_what_it_created():
    output = run_command("seed_demo")

    assert output.splitlines() == [
        "Admin (every brand): http://127.0.0.1:8000/admin/ as admin / admin",
        "Login for Demo Outfitters only: outfitters-staff / admin",
        "Login for Demo Coffee Roasters only: coffee-staff / admin",
        "Login for Demo Pet Supplies only: pets-staff / admin",
        "Demo Outfitters: ready to connect with OAuth at "
        "http://127.0.0.1:8000/brands/outfitters/integrations/klaviyo/",
        "Demo Coffee Roasters: legacy private API key, exports nothing until "
        "upgraded at http://127.0.0.1:8000/brands/coffee/integrations/klaviyo/",
        "Demo Pet Supplies: ready to connect with OAuth at "
        "http://127.0.0.1:8000/brands/pets/integrations/klaviyo/",
        FIRST_RUN_SUMMARY,
    ]


def test_seed_demo_twice_creates_nothing_the_second_time():
    first = run_command("seed_demo", "--password", "demo-pass")
    counts = _counts()

    second = run_command("seed_demo", "--password", "demo-pass")

    assert first.splitlines()[-1] == FIRST_RUN_SUMMARY
    assert second.splitlines()[-1] == "Nothing new: the demo data was already there."
    assert _counts() == counts
    assert counts == {
        "User": 4,
        "Brand": 3,
        "BrandMembership": 6,
        "Store": 6,
        "StaffMember": 11,
        "Customer": 16,
        "Campaign": 9,
        "KlaviyoConnection": 1,
        "Message": 0,
        "OutboundMessageEvent": 0,
    }


def test_seed_demo_gives_the_admin_every_brand_and_each_brand_login_its_own():
    run_command("seed_demo", "--password", "s3cret-demo")

    admin = get_user_model().objects.get(username="admin")
    assert (admin.is_superuser, admin.is_staff) == (True, True)
    assert admin.check_password("s3cret-demo")
    assert set(
        BrandMembership.objects.filter(user=admin).values_list("brand__slug", "role")
    ) == {
        ("outfitters", MembershipRole.ADMIN),
        ("coffee", MembershipRole.ADMIN),
        ("pets", MembershipRole.ADMIN),
    }
    for slug in ("outfitters", "coffee", "pets"):
        user = get_user_model().objects.get(username=f"{slug}-staff")
        assert (user.is_superuser, user.is_staff) == (False, True)
        assert user.check_password("s3cret-demo")
        assert list(
            BrandMembership.objects.filter(user=user).values_list("brand__slug", "role")
        ) == [(slug, MembershipRole.ADMIN)]
        assert user.has_perm("messaging.view_customer")
        assert user.has_perm("klaviyo.view_outboundmessageevent")
        assert not user.has_perm("messaging.change_customer")
        assert not user.has_perm("klaviyo.view_klaviyoquota")


def test_seed_demo_connects_only_the_legacy_brand_with_an_encrypted_key():
    run_command("seed_demo")

    connection = KlaviyoConnection.objects.get()
    assert connection.brand.slug == "coffee"
    assert connection.auth_type == AuthType.LEGACY_API_KEY
    assert connection.state == ConnectionState.ACTIVE
    assert connection.export_enabled is False
    assert connection.legacy_api_key == DEMO_LEGACY_API_KEY
    assert DEMO_LEGACY_API_KEY not in connection.legacy_api_key_ciphertext
    assert (connection.access_token_ciphertext, connection.refresh_token) == ("", "")


def test_seed_demo_customers_cover_national_unparseable_and_missing_contacts():
    run_command("seed_demo")

    coffee = Customer.objects.filter(brand__slug="coffee")
    assert coffee.get(last_name="Schneider").phone == "+4915123456789"
    assert coffee.get(last_name="Becker").phone == "+493012345678"
    assert Customer.objects.get(last_name="Thompson").phone == "+14155550132"
    unparseable = Customer.objects.filter(phone="").exclude(phone_input="")
    assert sorted(unparseable.values_list("brand__slug", "phone_input")) == [
        ("coffee", "12-34"),
        ("outfitters", "555-01"),
        ("pets", "call me"),
    ]
    assert Customer.objects.filter(email="").count() == 3
    assert Customer.objects.filter(email="", phone="").count() == 0


def test_seed_demo_has_a_campaign_per_channel_for_every_brand():
    run_command("seed_demo")

    assert set(Campaign.objects.values_list("brand__slug", "channel")) == {
        (slug, channel)
        for slug in ("outfitters", "coffee", "pets")
        for channel in Channel
    }


def test_seed_demo_leaves_an_existing_admin_password_alone_and_says_so():
    UserFactory(username="admin", password="kept-password", is_superuser=True)

    output = run_command("seed_demo")

    assert output.splitlines()[:2] == [
        "Admin (every brand): http://127.0.0.1:8000/admin/ as admin, whose "
        "existing password was left unchanged",
        "Login for Demo Outfitters only: outfitters-staff / admin",
    ]
    admin = get_user_model().objects.get(username="admin")
    assert admin.check_password("kept-password")
    assert not admin.check_password("admin")
