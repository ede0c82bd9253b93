import datetime

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import OutboundMessageEvent
from integrations.messaging.choices import Channel, MessageStatus
from integrations.messaging.services import message_status_record
from tests.commands.conftest import run_command
from tests.factories import BrandFactory, KlaviyoConnectionFactory, MessageFactory

pytestmark = pytest.mark.django_db

SWITCHED_ON = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
MARCH_1 = datetime.datetime(2025, 3, 1, 10, 0, tzinfo=datetime.UTC)
DRY_RUN = "Dry run: nothing changed. Run again with --apply to queue them again.\n"


def _connection(slug):
    return KlaviyoConnectionFactory(
        brand=BrandFactory(slug=slug), export_enabled_at=SWITCHED_ON
    )


def _event(connection, state, *, channel=Channel.SMS, occurred_at=MARCH_1, **fields):
    """An outbox event in ``state``, after a first attempt went wrong."""
    message = MessageFactory(brand=connection.brand, channel=channel, **fields)
    message_status_record(message, MessageStatus.SENT, occurred_at=occurred_at)
    event = OutboundMessageEvent.objects.get(message=message)
    if state != event.state:
        OutboundMessageEvent.objects.filter(pk=event.pk).update(
            state=state,
            state_reason="Klaviyo rejected the event",
            attempts=3,
            last_status_code=400,
            last_error="Klaviyo rejected the event",
            next_attempt_at=MARCH_1,
        )
    return event


def _snapshot():
    return {
        event["id"]: event
        for event in OutboundMessageEvent.objects.values(
            "id",
            "state",
            "state_reason",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
        )
    }


def test_resync_events_is_a_dry_run_that_counts_and_changes_nothing():
    acme = _connection("acme")
    other = _connection("other")
    _event(acme, SyncState.FAILED)
    _event(acme, SyncState.FAILED, channel=Channel.EMAIL)
    _event(acme, SyncState.EXPORTED)
    _event(other, SyncState.FAILED)
    before = _snapshot()

    output = run_command("resync_events", "--brand", "acme")

    assert output == "2 event(s) match: 2 failed.\n" + DRY_RUN
    assert _snapshot() == before


def test_resync_events_apply_queues_exactly_the_matching_events_again():
    acme = _connection("acme")
    other = _connection("other")
    matching = [
        _event(acme, SyncState.FAILED),
        _event(acme, SyncState.FAILED, channel=Channel.WHATSAPP),
    ]
    _event(acme, SyncState.FAILED, channel=Channel.EMAIL)
    _event(acme, SyncState.EXPORTED)
    _event(acme, SyncState.PENDING)
    _event(other, SyncState.FAILED)
    before = _snapshot()
    started = timezone.now()

    output = run_command(
        "resync_events",
        "--brand",
        "acme",
        "--channel",
        "sms",
        "--channel",
        "whatsapp",
        "--apply",
        "--quiet",
    )

    assert output == (
        "2 event(s) match: 2 failed.\n"
        "Queued 2 of 2 event(s) again (0 still skipped: no usable contact "
        "details; 0 being sent, left to their worker).\n"
    )
    after = _snapshot()
    for event in matching:
        changed = after.pop(event.pk)
        assert changed["state"] == SyncState.PENDING
        assert (changed["attempts"], changed["last_error"]) == (0, "")
        assert changed["state_reason"] == ""
        assert changed["next_attempt_at"] >= started
        before.pop(event.pk)
    assert after == before


def test_resync_events_reads_the_contact_details_of_skipped_events_again():
    acme = _connection("acme")
    fixed = _event(acme, SyncState.SKIPPED, customer__phone_input="12-34")
    unfixed = _event(acme, SyncState.SKIPPED, customer__phone_input="")
    failed = _event(acme, SyncState.FAILED)
    fixed.message.customer.phone_input = "+1 415 555 0199"
    fixed.message.customer.save()

    output = run_command(
        "resync_events", "--state", "skipped", "--state", "failed", "--apply"
    )

    assert output == (
        "3 event(s) match: 1 failed, 2 skipped.\n"
        "Queued 2 of 3 event(s) again (1 still skipped: no usable contact "
        "details; 0 being sent, left to their worker).\n"
    )
    states = dict(OutboundMessageEvent.objects.values_list("pk", "state"))
    assert states == {
        fixed.pk: SyncState.PENDING,
        unfixed.pk: SyncState.SKIPPED,
        failed.pk: SyncState.PENDING,
    }
    fixed.refresh_from_db()
    assert fixed.profile_identifier == "+14155550199"


@pytest.mark.parametrize(
    ("since", "until", "expected_days"),
    [
        ("2025-03-02", None, [2, 3]),
        (None, "2025-03-02", [1, 2]),
        ("2025-03-02", "2025-03-02", [2]),
        ("2025-03-01T10:00:00Z", "2025-03-02T10:00:00Z", [1, 2]),
        ("2025-03-01T10:00:01", None, [2, 3]),
        (None, "2025-03-03T00:00:00+01:00", [1, 2]),
    ],
)
def test_resync_events_selects_by_the_time_of_the_status_change(
    since, until, expected_days
):
    acme = _connection("acme")
    days = {
        day: _event(acme, SyncState.FAILED, occurred_at=MARCH_1.replace(day=day))
        for day in (1, 2, 3)
    }
    bounds = [
        *(["--since", since] if since else []),
        *(["--until", until] if until else []),
    ]

    run_command("resync_events", *bounds, "--apply", "--quiet")

    pending = set(
        OutboundMessageEvent.objects.filter(state=SyncState.PENDING).values_list(
            "pk", flat=True
        )
    )
    assert pending == {days[day].pk for day in expected_days}


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--brand", "nowhere"], "No brand has the slug 'nowhere'."),
        (
            ["--state", "lost"],
            "Error: argument --state: invalid choice: 'lost' (choose from "
            "'pending', 'exported', 'failed', 'skipped')",
        ),
        (
            ["--channel", "fax"],
            "Error: argument --channel: invalid choice: 'fax' (choose from "
            "'email', 'sms', 'whatsapp')",
        ),
        (
            ["--since", "last tuesday"],
            "Error: argument --since: 'last tuesday' is not an ISO 8601 date or "
            "datetime (for example 2025-03-01 or 2025-03-01T14:30:00+00:00)",
        ),
        (
            ["--since", "2025-03-02", "--until", "2025-03-01"],
            "--since must be earlier than --until.",
        ),
    ],
)
def test_resync_events_refuses_bad_options_and_changes_nothing(arguments, message):
    acme = _connection("acme")
    _event(acme, SyncState.FAILED)
    before = _snapshot()

    with pytest.raises(CommandError) as raised:
        run_command("resync_events", *arguments, "--apply")

    assert str(raised.value) == message
    assert _snapshot() == before
