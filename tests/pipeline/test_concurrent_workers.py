"""Several processes drain one outbox: their claims never overlap."""

import re
import signal
import time

import pytest

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import KlaviyoConnection, OutboundMessageEvent
from integrations.messaging.choices import MessageKind
from tests.klaviyo_helpers import send_messages
from tests.processes import manage, product_env, stop, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_four_processes_drain_10000_events_and_none_is_sent_twice(klaviyo, connection):
    send_messages(connection, 5000, kind=MessageKind.ONE_TO_ONE)
    send_messages(connection, 5000, campaign_send=True)
    env = product_env(klaviyo.url)

    workers = [
        manage("export_events", "--max-seconds", "90", "--quiet", env=env)
        for _ in range(4)
    ]
    for worker in workers:
        worker.wait(timeout=120)
    outputs = [stop(worker) for worker in workers]

    exported = [
        int(re.search(r"Exported (\d+) events", output).group(1)) for output in outputs
    ]
    assert sum(exported) == 10_000
    assert sum(1 for count in exported if count) >= 2, outputs
    stats = klaviyo.stats(account="DEMO01")
    assert stats["events_accepted"] == 10_000
    assert stats["events_deduplicated"] == 0
    assert (
        OutboundMessageEvent.objects.filter(state=SyncState.EXPORTED).count() == 10_000
    )


def test_a_killed_workers_claims_lapse_and_another_worker_sends_them_once(
    klaviyo, connection
):
    """A worker killed mid-request leaves its events claimed; once the lease
    lapses another worker sends them, and Klaviyo's unique_id keeps the
    events it had already accepted from counting twice."""
    send_messages(connection, 3000, campaign_send=True)
    klaviyo.set_faults(latency_ms=1500)
    env = product_env(klaviyo.url)
    victim = manage("export_events", "--max-seconds", "60", "--quiet", env=env)
    wait_until(
        lambda: OutboundMessageEvent.objects.filter(
            claimed_until__isnull=False
        ).exists(),
        timeout=30,
        message="a claim",
    )
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    claimed = OutboundMessageEvent.objects.filter(
        state=SyncState.PENDING, claimed_until__isnull=False
    )
    stranded = claimed.count()
    assert stranded > 0
    klaviyo.clear_faults()
    # The leases lapse, as they would two minutes later.
    claimed.update(claimed_until=None)
    KlaviyoConnection.objects.update(backlog_lease_until=None)

    survivor = manage("export_events", "--max-seconds", "60", "--quiet", env=env)
    survivor.wait(timeout=90)

    stats = klaviyo.stats(account="DEMO01")
    assert OutboundMessageEvent.objects.filter(state=SyncState.EXPORTED).count() == 3000
    assert len(klaviyo.events(account="DEMO01")) == 3000
    assert stats["events_accepted"] == 3000
    assert stats["events_deduplicated"] <= stranded
