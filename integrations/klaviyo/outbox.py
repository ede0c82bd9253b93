"""Writes the outbox rows of new message statuses, inside the caller's
transaction, and asks for their export once it commits."""

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from integrations.klaviyo import conf
from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import KlaviyoConnection, OutboundMessageEvent
from integrations.klaviyo.payloads import (
    InvalidContact,
    event_properties,
    profile_identifier,
)
from integrations.klaviyo.rules import ExportSwitch, is_status_exported, metric_name
from integrations.klaviyo.signals import export_requested
from integrations.messaging.choices import MessageStatus

logger = logging.getLogger(__name__)

# A queued export request older than this is taken as lost (a worker died
# with it), and the next status change queues a new one.
EXPORT_REQUEST_STALE_AFTER = timedelta(minutes=2)

MESSAGE_RELATIONS = (
    "brand__klaviyo_connection",
    "customer",
    "campaign",
    "store",
    "staff_member",
)


def connection_of(message):
    """The brand's Klaviyo connection, or None; ``message`` should have been
    loaded with MESSAGE_RELATIONS."""
    try:
        return message.brand.klaviyo_connection
    except KlaviyoConnection.DoesNotExist:
        return None


def outbox_event_for(message, status, occurred_at, *, now):
    """The unsaved outbox row for ``message`` reaching ``status``, or None
    when that status is not exported.

    ``message`` already carries the new status time. A customer Klaviyo could
    not identify gives a row that is skipped with the reason, so the gap is
    visible and never blocks other events.
    """
    connection = connection_of(message)
    switch = (
        None
        if connection is None
        else ExportSwitch(
            connection.auth_type,
            connection.export_enabled,
            connection.export_enabled_at,
        )
    )
    left_at = [
        moment
        for moment in (message.sent_at, message.delivered_at, message.failed_at)
        if moment is not None
    ]
    if not is_status_exported(
        switch=switch,
        direction=message.direction,
        kind=message.kind,
        channel=message.channel,
        status=status,
        sent_at=min(left_at, default=None),
    ):
        return None
    customer = message.customer
    event = OutboundMessageEvent(
        connection=connection,
        message=message,
        status=status,
        channel=message.channel,
        kind=message.kind,
        metric_name=metric_name(message.channel, status, conf.platform_name()),
        occurred_at=occurred_at,
        unique_id=message.public_id,
        properties=event_properties(
            channel=message.channel,
            kind=message.kind,
            message_id=message.public_id,
            customer_url=conf.customer_url(customer.public_id),
            campaign_id=message.campaign.public_id if message.campaign else "",
            campaign_name=message.campaign.name if message.campaign else "",
            store_name=message.store.name if message.store else "",
            staff_member_name=message.staff_member.name if message.staff_member else "",
            failure_reason=(
                message.failure_reason if status == MessageStatus.FAILED else ""
            ),
        ),
        next_attempt_at=now,
        created_at=now,
    )
    try:
        event.profile_identifier = profile_identifier(
            message.channel,
            email=customer.email,
            phone=customer.phone,
            phone_input=customer.phone_input,
        )
    except InvalidContact as error:
        event.state = SyncState.SKIPPED
        event.state_reason = str(error)
    return event


def outbox_record(events):
    """Insert ``events``; return the ids of the connections that now have
    pending events, for ``export_request``."""
    if not events:
        return set()
    OutboundMessageEvent.objects.bulk_create(
        events, batch_size=1000, ignore_conflicts=True
    )
    return {event.connection_id for event in events if event.state == SyncState.PENDING}


def export_request(connection_id, *, now):
    """Mark the connection as having an export queued and send
    ``export_requested`` after commit, unless a fresh request is already
    queued: a campaign of 100,000 changes queues one task, not 100,000."""
    claimed = (
        KlaviyoConnection.objects.filter(pk=connection_id)
        .filter(
            Q(export_requested_at__isnull=True)
            | Q(export_requested_at__lt=now - EXPORT_REQUEST_STALE_AFTER)
        )
        .update(export_requested_at=now)
    )
    if claimed:
        transaction.on_commit(
            lambda: export_requested.send(
                sender=KlaviyoConnection, connection_id=connection_id
            )
        )
