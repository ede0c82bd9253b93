import datetime
import itertools

import pytest

from integrations.klaviyo.choices import AuthType
from integrations.klaviyo.rules import ExportSwitch, is_status_exported, metric_name
from integrations.messaging.choices import (
    Channel,
    Direction,
    MessageKind,
    MessageStatus,
)

SWITCHED_ON_AT = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
BEFORE = SWITCHED_ON_AT - datetime.timedelta(seconds=1)
AFTER = SWITCHED_ON_AT + datetime.timedelta(seconds=1)

CONNECTIONS = {
    "oauth, export on": ExportSwitch(AuthType.OAUTH, True, SWITCHED_ON_AT),
    "oauth, export off": ExportSwitch(AuthType.OAUTH, False, None),
    "legacy key, export on": ExportSwitch(
        AuthType.LEGACY_API_KEY, True, SWITCHED_ON_AT
    ),
    "legacy key, export off": ExportSwitch(AuthType.LEGACY_API_KEY, False, None),
    "no connection": None,
}

# Written out, not derived: the only combinations that are exported.
EXPORTED = {
    (channel, status, Direction.OUTBOUND, kind, "oauth, export on", "after")
    for channel in ("email", "sms", "whatsapp")
    for status in ("sent", "delivered", "failed")
    for kind in ("one_to_one", "campaign")
}

ALL_COMBINATIONS = list(
    itertools.product(
        Channel.values,
        MessageStatus.values,
        Direction.values,
        MessageKind.values,
        CONNECTIONS,
        ("before", "after"),
    )
)


def test_the_table_covers_every_combination():
    assert len(ALL_COMBINATIONS) == 3 * 7 * 2 * 3 * 5 * 2
    assert len(EXPORTED) == 18
    assert EXPORTED.issubset(ALL_COMBINATIONS)


@pytest.mark.parametrize(
    ("channel", "status", "direction", "kind", "connection", "sent"),
    ALL_COMBINATIONS,
)
def test_a_status_is_exported_only_in_the_listed_combinations(
    channel, status, direction, kind, connection, sent
):
    exported = is_status_exported(
        switch=CONNECTIONS[connection],
        direction=direction,
        kind=kind,
        channel=channel,
        status=status,
        sent_at=AFTER if sent == "after" else BEFORE,
    )

    assert exported is (
        (channel, status, direction, kind, connection, sent) in EXPORTED
    )


def test_a_message_sent_at_the_instant_export_was_switched_on_is_exported():
    assert is_status_exported(
        switch=CONNECTIONS["oauth, export on"],
        direction=Direction.OUTBOUND,
        kind=MessageKind.ONE_TO_ONE,
        channel=Channel.SMS,
        status=MessageStatus.SENT,
        sent_at=SWITCHED_ON_AT,
    )


def test_a_message_that_never_left_is_not_exported():
    assert not is_status_exported(
        switch=CONNECTIONS["oauth, export on"],
        direction=Direction.OUTBOUND,
        kind=MessageKind.ONE_TO_ONE,
        channel=Channel.SMS,
        status=MessageStatus.SENT,
        sent_at=None,
    )


def test_the_nine_metric_names_are_exactly_these():
    names = {
        (channel, status): metric_name(channel, status, "Endear")
        for channel in Channel.values
        for status in ("sent", "delivered", "failed")
    }

    assert names == {
        ("email", "sent"): "Sent Email in Endear",
        ("email", "delivered"): "Delivered Email in Endear",
        ("email", "failed"): "Failed to Send Email in Endear",
        ("sms", "sent"): "Sent SMS in Endear",
        ("sms", "delivered"): "Delivered SMS in Endear",
        ("sms", "failed"): "Failed to Deliver SMS in Endear",
        ("whatsapp", "sent"): "Sent WhatsApp in Endear",
        ("whatsapp", "delivered"): "Delivered WhatsApp in Endear",
        ("whatsapp", "failed"): "Failed to Send WhatsApp in Endear",
    }


def test_the_platform_word_comes_from_the_caller():
    assert (
        metric_name("whatsapp", "failed", "Acme") == "Failed to Send WhatsApp in Acme"
    )


@pytest.mark.parametrize("status", ["created", "awaiting_opt_in", "expired", "queued"])
def test_pre_delivery_statuses_have_no_metric(status):
    with pytest.raises(ValueError, match=f"Status '{status}' has no Klaviyo metric"):
        metric_name("sms", status, "Endear")
