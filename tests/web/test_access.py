import pytest
from django.test import Client
from django.urls import reverse

from integrations.klaviyo.choices import ConnectionState
from tests.factories import (
    KlaviyoConnectionFactory,
    MembershipFactory,
    UserFactory,
)
from tests.web.sandbox_oauth import CALLBACK_PATH

pytestmark = pytest.mark.django_db

BRAND_PAGES = ("integration", "connect", "disconnect", "export")


def brand_url(name, brand):
    return reverse(f"klaviyo:{name}", kwargs={"slug": brand.slug})


@pytest.mark.parametrize("name", BRAND_PAGES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_a_user_of_brand_a_gets_404_for_brand_b_whatever_the_method(
    client, klaviyo, name, method
):
    brand_a = MembershipFactory()
    brand_b = KlaviyoConnectionFactory()
    client.force_login(brand_a.user)

    response = getattr(client, method)(
        brand_url(name, brand_b.brand), {"enabled": "off"}
    )

    assert response.status_code == 404
    brand_b.refresh_from_db()
    assert brand_b.state == ConnectionState.ACTIVE
    assert brand_b.export_enabled is True
    assert klaviyo.stats()["requests"] == 0


def test_the_brand_list_shows_only_the_users_brands(client):
    mine = MembershipFactory(brand__name="Mine")
    MembershipFactory(brand__name="Theirs")
    client.force_login(mine.user)

    response = client.get(reverse("klaviyo:brand-list"))

    assert [brand.name for brand, card in response.context["rows"]] == ["Mine"]
    assert "Theirs" not in response.content.decode()


def test_a_superuser_sees_every_brand(client):
    MembershipFactory(brand__name="Alpha")
    beta = MembershipFactory(brand__name="Beta")
    superuser = UserFactory(is_superuser=True, is_staff=True)
    client.force_login(superuser)

    listed = client.get(reverse("klaviyo:brand-list"))
    page = client.get(brand_url("integration", beta.brand))

    assert [brand.name for brand, card in listed.context["rows"]] == ["Alpha", "Beta"]
    assert page.status_code == 200


@pytest.mark.parametrize("name", BRAND_PAGES)
@pytest.mark.parametrize("method", ["get", "post"])
def test_an_anonymous_visitor_is_sent_to_log_in(client, klaviyo, name, method):
    connection = KlaviyoConnectionFactory()
    url = brand_url(name, connection.brand)

    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"
    connection.refresh_from_db()
    assert connection.state == ConnectionState.ACTIVE
    assert klaviyo.stats()["requests"] == 0


@pytest.mark.parametrize("path", ["/integrations/", CALLBACK_PATH])
def test_an_anonymous_visitor_is_sent_to_log_in_from_the_list_and_callback(
    client, path
):
    response = client.get(path)

    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")


def test_actions_refuse_get_on_the_users_own_brand(admin_client, admin_membership):
    responses = [
        admin_client.get(brand_url(name, admin_membership.brand)).status_code
        for name in ("connect", "disconnect", "export")
    ]

    assert responses == [405, 405, 405]


def test_actions_need_a_csrf_token(admin_membership, klaviyo):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_membership.user)

    response = client.post(brand_url("connect", admin_membership.brand))

    assert response.status_code == 403
    assert klaviyo.stats()["requests"] == 0


def test_the_home_page_leads_to_the_brand_list(admin_client):
    response = admin_client.get("/")

    assert response.status_code == 302
    assert response["Location"] == reverse("klaviyo:brand-list")


def test_a_person_logs_in_with_the_login_page(client):
    membership = MembershipFactory(brand__name="Login Brand")

    response = client.post(
        reverse("login"),
        {"username": membership.user.username, "password": "correct horse battery"},
        follow=True,
    )

    assert response.redirect_chain[-1][0] == reverse("klaviyo:brand-list")
    assert "Login Brand" in response.content.decode()
