import datetime
import logging

import pytest
from django.db import connection as database
from django.urls import reverse
from django.utils import timezone

from integrations.klaviyo.models import KlaviyoConnection
from integrations.klaviyo.tokens import connection_credentials
from tests.factories import KlaviyoConnectionFactory, MembershipFactory
from tests.web.sandbox_oauth import consent_answer, query_of

pytestmark = pytest.mark.django_db


def database_text():
    """Every row of every table, as the database holds it."""
    rows = []
    with database.cursor() as cursor:
        for table in database.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {database.ops.quote_name(table)}")
            rows.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(rows)


def connection_columns(pk):
    with database.cursor() as cursor:
        cursor.execute(
            "SELECT access_token_ciphertext, refresh_token_ciphertext, "
            "legacy_api_key_ciphertext FROM klaviyo_klaviyoconnection WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()


def log_text(records):
    return "\n".join(f"{record.getMessage()} {vars(record)!r}" for record in records)


def test_no_token_code_or_key_reaches_the_database_the_logs_or_a_page(
    admin_client, admin_membership, klaviyo, caplog
):
    caplog.set_level(logging.DEBUG)
    brand = admin_membership.brand
    legacy = KlaviyoConnectionFactory(legacy=True)
    MembershipFactory(user=admin_membership.user, brand=legacy.brand)
    secrets, pages, dumps = {legacy.legacy_api_key}, [], []
    brand_page = reverse("klaviyo:integration", kwargs={"slug": brand.slug})

    location = admin_client.post(
        reverse("klaviyo:connect", kwargs={"slug": brand.slug})
    )
    callback = consent_answer(location["Location"], account_id="DEMO03")
    secrets.add(query_of(callback)["code"])
    pages.append(admin_client.get(callback, follow=True))
    connection = KlaviyoConnection.objects.get(brand=brand)
    secrets |= {connection.access_token, connection.refresh_token}
    dumps.append(database_text())
    connected_columns = connection_columns(connection.pk)
    KlaviyoConnection.objects.filter(pk=connection.pk).update(
        token_expires_at=timezone.now() - datetime.timedelta(minutes=1)
    )
    connection.refresh_from_db()
    connection_credentials(connection)
    secrets |= {connection.access_token, connection.refresh_token}
    dumps.append(database_text())
    pages.append(admin_client.get(brand_page))
    pages.append(admin_client.get(reverse("klaviyo:brand-list")))
    pages.append(
        admin_client.get(
            reverse("klaviyo:integration", kwargs={"slug": legacy.brand.slug})
        )
    )
    pages.append(
        admin_client.post(
            reverse("klaviyo:disconnect", kwargs={"slug": brand.slug}), follow=True
        )
    )
    dumps.append(database_text())

    stats = klaviyo.stats()
    assert (stats["token_refreshes"], stats["revocations"]) == (1, 1)
    assert len(secrets) == 6
    assert all(len(secret) >= 20 for secret in secrets)
    assert all(column.startswith("gAAAAA") for column in connected_columns[:2])
    assert connected_columns[2] == ""
    assert connection_columns(legacy.pk)[2].startswith("gAAAAA")
    html = "\n".join(page.content.decode() for page in pages)
    logs = log_text(caplog.records)
    assert "Demo Pet Supplies" in html
    assert len(caplog.records) > 10
    for secret in secrets:
        assert secret not in html
        assert secret not in logs
        for dump in dumps:
            assert secret not in dump
