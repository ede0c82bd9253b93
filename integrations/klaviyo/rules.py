"""Which status changes become Klaviyo events, and under which metric.

Pure functions of plain values: no I/O, no settings, no queries.
"""

from dataclasses import dataclass
from datetime import datetime

from integrations.klaviyo.choices import AuthType
from integrations.messaging.choices import (
    Channel,
    Direction,
    MessageKind,
    MessageStatus,
)

EXPORTED_CHANNELS = frozenset({Channel.EMAIL, Channel.SMS, Channel.WHATSAPP})
EXPORTED_STATUSES = frozenset(
    {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.FAILED}
)
EXPORTED_KINDS = frozenset({MessageKind.ONE_TO_ONE, MessageKind.CAMPAIGN})

_CHANNEL_WORDS = {
    Channel.EMAIL: "Email",
    Channel.SMS: "SMS",
    Channel.WHATSAPP: "WhatsApp",
}
# Klaviyo's own SMS metrics say "Failed to Deliver"; email and WhatsApp
# failures happen before hand-off, hence "Failed to Send".
_FAILED_VERBS = {
    Channel.EMAIL: "Failed to Send",
    Channel.SMS: "Failed to Deliver",
    Channel.WHATSAPP: "Failed to Send",
}


@dataclass(frozen=True)
class ExportSwitch:
    """What eligibility needs to know of a brand's Klaviyo connection."""

    auth_type: AuthType
    export_enabled: bool
    export_enabled_at: datetime | None


def is_status_exported(*, switch, direction, kind, channel, status, sent_at):
    """Whether a message reaching ``status`` becomes a Klaviyo event.

    ``switch`` is None when the brand has no connection. ``sent_at`` is when
    the message left: the earliest of its sent, delivered and failed times.
    A message that left before export was switched on is history: none of
    its statuses is exported, later ones included. The connection's state is
    not a condition: while it needs reconnecting, events are recorded and
    wait.
    """
    return (
        switch is not None
        and switch.auth_type == AuthType.OAUTH
        and switch.export_enabled
        and switch.export_enabled_at is not None
        and direction == Direction.OUTBOUND
        and kind in EXPORTED_KINDS
        and channel in EXPORTED_CHANNELS
        and status in EXPORTED_STATUSES
        and sent_at is not None
        and sent_at >= switch.export_enabled_at
    )


def metric_name(channel, status, platform_name):
    """The Klaviyo metric of a message reaching ``status``, e.g. "Sent SMS in
    Endear"."""
    word = _CHANNEL_WORDS[channel]
    if status == MessageStatus.SENT:
        return f"Sent {word} in {platform_name}"
    if status == MessageStatus.DELIVERED:
        return f"Delivered {word} in {platform_name}"
    if status == MessageStatus.FAILED:
        return f"{_FAILED_VERBS[channel]} {word} in {platform_name}"
    raise ValueError(f"Status {status!r} has no Klaviyo metric")
