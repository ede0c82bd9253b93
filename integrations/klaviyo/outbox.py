"""Writes the outbox rows of new message statuses, inside the caller's
transaction, and asks for their export once it commits."""

import json
import logging
from datetime import timedelta

from django.db import connection as db_connection
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

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


def connections_by_brand(brand_ids):
    """{brand id: KlaviyoConnection} for the brands that have one."""
    return {
        connection.brand_id: connection
        for connection in KlaviyoConnection.objects.filter(brand_id__in=brand_ids)
    }


def customer_profile_identifier(channel, customer):
    """The customer's Klaviyo identifier on ``channel``; InvalidContact with
    the reason when there is none Klaviyo would accept."""
    return profile_identifier(
        channel,
        email=customer.email,
        phone=customer.phone,
        phone_input=customer.phone_input,
    )


def outbox_event_for(message, status, occurred_at, *, connection, now):
    """The unsaved outbox row for ``message`` reaching ``status``, or None
    when that status is not exported.

    ``message`` already carries the new status time, its customer, campaign,
    store and staff member; ``connection`` is its brand's connection or
    None. A customer Klaviyo could not identify gives a row that is skipped
    with the reason, so the gap is visible and never blocks other events.
    """
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
        event.profile_identifier = customer_profile_identifier(
            message.channel, customer
        )
    except InvalidContact as error:
        event.state = SyncState.SKIPPED
        event.state_reason = str(error)
    return event


def outbox_record(events):
    """Insert ``events``, leaving out any whose message and status already
    have a row; return the ids of the connections that now have pending
    events, for ``export_request``."""
    if not events:
        return set()
    for start in range(0, len(events), _INSERT_BATCH):
        _insert(events[start : start + _INSERT_BATCH])
    return {event.connection_id for event in events if event.state == SyncState.PENDING}


_INSERT_BATCH = 1000


def _insert(events):
    """One multi-row INSERT ... ON CONFLICT DO NOTHING (PostgreSQL, SQLite).

    The same as bulk_create(ignore_conflicts=True), without preparing every
    value of every row through its field, which at campaign sizes cost more
    than the database's own work.
    """
    ops = db_connection.ops
    fields = [
        field
        for field in OutboundMessageEvent._meta.concrete_fields
        if not field.primary_key
    ]
    convert = []
    for field in fields:
        if isinstance(field, models.DateTimeField):
            convert.append(ops.adapt_datetimefield_value)
        elif isinstance(field, models.JSONField):
            convert.append(json.dumps)
        else:
            convert.append(None)
    values = []
    for event in events:
        for field, converter in zip(fields, convert, strict=True):
            value = getattr(event, field.attname)
            if converter is not None and value is not None:
                value = converter(value)
            values.append(value)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns = ", ".join(ops.quote_name(field.column) for field in fields)
    table = ops.quote_name(OutboundMessageEvent._meta.db_table)
    with db_connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(events))} "
            "ON CONFLICT (message_id, status) DO NOTHING",
            values,
        )


def export_request(connection_id):
    """Ask for an export of the connection once the current transaction
    commits (at once outside a transaction).

    Coalesced: the request marks the connection and sends
    ``export_requested`` only when no fresh request is already queued, so a
    campaign of 100,000 changes queues one task, not 100,000. Marking after
    the commit leaves no gap: either the mark is found cleared and a task is
    queued, or a queued task has not started yet and will see the new rows.
    """
    transaction.on_commit(lambda: _request_now(connection_id))


def _request_now(connection_id):
    now = timezone.now()
    claimed = (
        KlaviyoConnection.objects.filter(pk=connection_id)
        .filter(
            Q(export_requested_at__isnull=True)
            | Q(export_requested_at__lt=now - EXPORT_REQUEST_STALE_AFTER)
        )
        .update(export_requested_at=now)
    )
    if claimed:
        export_requested.send(sender=KlaviyoConnection, connection_id=connection_id)
