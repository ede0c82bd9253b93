"""With REDIS_URL set, tasks travel through Redis instead of the database."""

import os

import pytest
import redis
from django_q.models import OrmQ

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import OutboundMessageEvent
from tests.processes import manage, product_env, qcluster, stop, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REDIS_URL = os.environ.get("REDIS_URL_FOR_TESTS", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {error}")
    return REDIS_URL


def test_status_changes_are_exported_through_the_redis_broker(
    klaviyo, connection, redis_url
):
    env = product_env(
        klaviyo.url, REDIS_URL=redis_url, Q_CLUSTER_NAME=f"redis-test-{os.getpid()}"
    )

    with qcluster(env):
        traffic = manage(
            "simulate_messages",
            "--brand",
            connection.brand.slug,
            "--one-to-one",
            "40",
            "--campaign-size",
            "300",
            "--hours",
            "0.5",
            "--seed",
            "5",
            "--quiet",
            env=env,
        )
        assert traffic.wait(timeout=120) == 0, stop(traffic)
        events = OutboundMessageEvent.objects.filter(connection=connection)
        wait_until(
            lambda: (
                events.exists() and not events.filter(state=SyncState.PENDING).exists()
            ),
            timeout=60,
            message="every event exported",
        )

    exported = events.filter(state=SyncState.EXPORTED).count()
    assert exported > 300
    stats = klaviyo.stats(account="DEMO01")
    assert stats["events_accepted"] == exported
    assert stats["events_deduplicated"] == 0
    assert OrmQ.objects.count() == 0
