import re

import pytest
from django.core.management.base import CommandError

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import OutboundMessageEvent
from tests.commands.conftest import run_command
from tests.factories import BrandFactory, KlaviyoConnectionFactory
from tests.klaviyo_helpers import connect, send_messages

SUMMARY = re.compile(
    r"^Exported (\d+) events \((\d+) failed, (\d+) to retry\) for (\d+) "
    r"connection\(s\) in \d+\.\d s\.$"
)


def _summary(output):
    match = SUMMARY.match(output.strip())
    assert match, output
    exported, failed, to_retry, connections = map(int, match.groups())
    return {
        "exported": exported,
        "failed": failed,
        "to_retry": to_retry,
        "connections": connections,
    }


def _states(connection):
    counts = {}
    for state in connection.events.values_list("state", flat=True):
        counts[state] = counts.get(state, 0) + 1
    return counts


@pytest.mark.django_db(transaction=True)
def test_export_events_drains_every_exporting_connection_into_the_sandbox(
    klaviyo, connection
):
    other = connect(klaviyo, "DEMO03")
    waiting = KlaviyoConnectionFactory(needs_reconnect=True)
    send_messages(connection, 40, campaign_send=True)
    send_messages(connection, 3)
    send_messages(other, 5)
    send_messages(waiting, 2)

    output = run_command("export_events", "--quiet")

    assert _summary(output) == {
        "exported": 48,
        "failed": 0,
        "to_retry": 0,
        "connections": 2,
    }
    assert _states(connection) == {SyncState.EXPORTED: 43}
    assert _states(other) == {SyncState.EXPORTED: 5}
    assert klaviyo.stats(account="DEMO01")["events_accepted"] == 43
    assert klaviyo.stats(account="DEMO03")["events_accepted"] == 5
    # A connection that must reconnect is not drained: its events wait.
    assert _states(waiting) == {SyncState.PENDING: 2}
    assert waiting.events.filter(attempts__gt=0).count() == 0


@pytest.mark.django_db(transaction=True)
def test_export_events_for_one_brand_leaves_the_other_brands_pending(
    klaviyo, connection
):
    other = connect(klaviyo, "DEMO03")
    send_messages(connection, 4)
    send_messages(other, 6)

    output = run_command("export_events", "--brand", connection.brand.slug, "--quiet")

    assert _summary(output) == {
        "exported": 4,
        "failed": 0,
        "to_retry": 0,
        "connections": 1,
    }
    assert _states(connection) == {SyncState.EXPORTED: 4}
    assert _states(other) == {SyncState.PENDING: 6}
    assert klaviyo.stats(account="DEMO03")["events_accepted"] == 0


@pytest.mark.django_db(transaction=True)
def test_export_events_counts_refused_events_as_failed_and_errors_as_to_retry(
    klaviyo, connection
):
    send_messages(connection, 3)
    refused, retried, exported = OutboundMessageEvent.objects.order_by("id")
    # Sent one by one in id order: a refusal, a server error, a success.
    klaviyo.set_faults(next_responses=[400, 503])

    output = run_command("export_events", "--quiet", "--max-seconds", "3")

    assert _summary(output) == {
        "exported": 1,
        "failed": 1,
        "to_retry": 1,
        "connections": 1,
    }
    assert [
        (event.pk, event.state, event.last_status_code, event.attempts)
        for event in OutboundMessageEvent.objects.order_by("id")
    ] == [
        (refused.pk, SyncState.FAILED, 400, 1),
        (retried.pk, SyncState.PENDING, 503, 1),
        (exported.pk, SyncState.EXPORTED, 202, 1),
    ]
    assert klaviyo.stats(account="DEMO01")["events_accepted"] == 1


@pytest.mark.django_db
def test_export_events_refuses_an_unknown_brand():
    with pytest.raises(CommandError) as raised:
        run_command("export_events", "--brand", "nowhere")

    assert str(raised.value) == "No brand has the slug 'nowhere'."


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("connection_traits", "reason"),
    [
        (
            {"legacy": True},
            "it uses a legacy private API key; connect with OAuth to export",
        ),
        ({"needs_reconnect": True}, "the brand must reconnect it"),
        ({"export_off": True}, "export is switched off"),
    ],
)
def test_export_events_explains_why_a_brand_does_not_export(connection_traits, reason):
    brand = BrandFactory(name="Acme", slug="acme")
    KlaviyoConnectionFactory(brand=brand, **connection_traits)

    with pytest.raises(CommandError) as raised:
        run_command("export_events", "--brand", "acme")

    assert str(raised.value) == (
        f"Acme's Klaviyo connection does not export events now: {reason}."
    )


@pytest.mark.django_db
def test_export_events_refuses_a_brand_without_a_connection():
    BrandFactory(name="Acme", slug="acme")

    with pytest.raises(CommandError) as raised:
        run_command("export_events", "--brand", "acme")

    assert str(raised.value) == "Acme has no Klaviyo connection."


@pytest.mark.django_db
def test_export_events_with_nothing_to_export_says_so_and_sends_nothing():
    KlaviyoConnectionFactory(legacy=True)

    output = run_command("export_events", "--quiet")

    assert _summary(output) == {
        "exported": 0,
        "failed": 0,
        "to_retry": 0,
        "connections": 0,
    }


@pytest.mark.django_db
def test_export_events_refuses_a_budget_of_no_time():
    with pytest.raises(CommandError) as raised:
        run_command("export_events", "--max-seconds", "0")

    assert str(raised.value) == "--max-seconds must be more than 0."
