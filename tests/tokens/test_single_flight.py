import datetime
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection as database
from django.db import connections
from django.utils import timezone

from integrations.klaviyo.client import KlaviyoClient
from integrations.klaviyo.models import KlaviyoConnection
from integrations.klaviyo.tokens import connection_credentials
from tests.web.sandbox_oauth import connection_from_grant

WORKERS = 10
EXPIRED = -datetime.timedelta(minutes=1)

on_postgresql = pytest.mark.skipif(
    database.vendor != "postgresql",
    reason="database-specific: row locks (select_for_update) need PostgreSQL; "
    "SQLite takes the "
    "compare-and-swap path, tested below",
)
on_sqlite = pytest.mark.skipif(
    database.vendor != "sqlite",
    reason="database-specific: the compare-and-swap path is the one SQLite "
    "takes; PostgreSQL "
    "takes the row lock, tested above",
)


def workers_meet_the_expired_token(connection_id, count):
    """``count`` threads, each with its own database connection, read the
    connection with its expired token, then all ask for credentials at once
    and make one authenticated call with them."""
    everyone_has_read = threading.Barrier(count)

    def worker():
        try:
            connection = KlaviyoConnection.objects.get(pk=connection_id)
            everyone_has_read.wait(timeout=10)
            credentials = connection_credentials(connection)
            answer = KlaviyoClient(credentials).get_accounts()
            return credentials.access_token, answer.status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(worker) for _ in range(count)]
        return [future.result(timeout=60) for future in futures]


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_ten_workers_on_postgresql_make_exactly_one_refresh_and_all_go_on(klaviyo):
    connection = connection_from_grant(klaviyo, expires_in=EXPIRED)
    old_token = connection.access_token
    klaviyo.configure(rate_limits_enabled=False)

    results = workers_meet_the_expired_token(connection.pk, WORKERS)

    stored = KlaviyoConnection.objects.get()
    stats = klaviyo.stats()
    assert stats["token_refreshes"] == 1
    assert stats["revocations"] == 0
    assert results == [(stored.access_token, 200)] * WORKERS
    assert stored.access_token != old_token
    assert stored.token_expires_at > timezone.now() + datetime.timedelta(minutes=59)


@on_sqlite
@pytest.mark.django_db(transaction=True)
def test_workers_on_sqlite_make_exactly_one_refresh_through_the_claim(klaviyo):
    connection = connection_from_grant(klaviyo, expires_in=EXPIRED)
    old_token = connection.access_token
    klaviyo.configure(rate_limits_enabled=False)

    results = workers_meet_the_expired_token(connection.pk, WORKERS)

    stored = KlaviyoConnection.objects.get()
    stats = klaviyo.stats()
    assert stats["token_refreshes"] == 1
    assert stats["revocations"] == 0
    assert results == [(stored.access_token, 200)] * WORKERS
    assert stored.access_token != old_token
    assert stored.token_refresh_claimed_until is None


@on_sqlite
@pytest.mark.django_db(transaction=True)
def test_a_worker_waits_for_a_live_claim_and_takes_the_token_it_produced(klaviyo):
    connection = connection_from_grant(klaviyo, expires_in=EXPIRED)
    KlaviyoConnection.objects.update(
        token_refresh_claimed_until=timezone.now() + datetime.timedelta(seconds=30)
    )
    connection.refresh_from_db()
    fresh = klaviyo.issue_grant("DEMO01", ["accounts:read"])

    def the_other_worker_finishes():
        time.sleep(0.3)
        stored = KlaviyoConnection.objects.get()
        stored.access_token = fresh["access_token"]
        stored.refresh_token = fresh["refresh_token"]
        stored.token_expires_at = timezone.now() + datetime.timedelta(hours=1)
        stored.token_refresh_claimed_until = None
        stored.save()
        connections.close_all()

    other = threading.Thread(target=the_other_worker_finishes)
    other.start()
    started = time.monotonic()
    credentials = connection_credentials(connection)
    waited = time.monotonic() - started
    other.join()

    assert credentials.access_token == fresh["access_token"]
    assert waited >= 0.25
    assert klaviyo.stats()["token_requests"] == 0


@on_sqlite
@pytest.mark.django_db(transaction=True)
def test_a_lapsed_claim_is_taken_over(klaviyo):
    connection = connection_from_grant(klaviyo, expires_in=EXPIRED)
    KlaviyoConnection.objects.update(
        token_refresh_claimed_until=timezone.now() - datetime.timedelta(seconds=1)
    )
    connection.refresh_from_db()

    credentials = connection_credentials(connection)

    stored = KlaviyoConnection.objects.get()
    assert credentials.access_token == stored.access_token
    assert stored.token_refresh_claimed_until is None
    assert klaviyo.stats()["token_refreshes"] == 1
