"""The one way message statuses change.

Each change is written with the outbox rows of its export in one
transaction; the export is asked for once that transaction commits.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from integrations.klaviyo.outbox import (
    connections_by_brand,
    export_request,
    outbox_event_for,
    outbox_record,
)
from integrations.messaging.choices import MessageStatus
from integrations.messaging.models import (
    STATUS_TIME_FIELDS,
    Campaign,
    Message,
    StaffMember,
    Store,
    status_writes_allowed,
)

logger = logging.getLogger(__name__)

# Later statuses outrank earlier ones; a message's current status never moves
# to a lower rank. Delivered, failed and expired are all final.
STATUS_RANKS = {
    MessageStatus.CREATED: 0,
    MessageStatus.AWAITING_OPT_IN: 1,
    MessageStatus.QUEUED: 2,
    MessageStatus.SENT: 3,
    MessageStatus.DELIVERED: 4,
    MessageStatus.FAILED: 4,
    MessageStatus.EXPIRED: 4,
}
_CHUNK_SIZE = 1000


@dataclass(frozen=True)
class StatusUpdate:
    """A provider's report that a message reached a status at a time."""

    message_id: int
    status: MessageStatus
    occurred_at: datetime
    failure_reason: str = ""


@dataclass(frozen=True)
class StatusRecordResult:
    changed: int = 0  # updates that set a status time not known before
    unchanged: int = 0  # repeats of a status the message already had
    unknown: int = 0  # updates naming a message that does not exist
    events_recorded: int = 0  # outbox rows written


def status_changes(message, status, occurred_at):
    """The fields of ``message`` that a report of ``status`` at
    ``occurred_at`` changes; empty when the status is a repeat.

    A late report keeps its own time; a report that ranks below the current
    status is recorded (its time is set) without moving the status back.
    """
    time_field = STATUS_TIME_FIELDS[status]
    if status == MessageStatus.CREATED or getattr(message, time_field) is not None:
        return {}
    changes = {time_field: occurred_at}
    if (
        status != message.status
        and STATUS_RANKS[status] >= STATUS_RANKS[message.status]
    ):
        changes["status"] = status
        changes["status_changed_at"] = occurred_at
    return changes


def message_status_record(message, status, *, occurred_at=None, failure_reason=""):
    """Record that ``message`` reached ``status`` (now, by default), with its
    export events; ``message`` is updated in place."""
    update = StatusUpdate(
        message.pk, MessageStatus(status), occurred_at or timezone.now(), failure_reason
    )
    result, recorded = _record([update])
    if message.pk in recorded:
        fresh = recorded[message.pk]
        for name in (
            *STATUS_TIME_FIELDS.values(),
            "status",
            "status_changed_at",
            "failure_reason",
        ):
            setattr(message, name, getattr(fresh, name))
        message._loaded_status_values = message._status_values()
    return result


def message_status_record_many(updates):
    """Record many status updates (a campaign's provider callbacks) in one
    transaction, with a number of queries that does not grow with the count
    of messages."""
    result, _ = _record(updates)
    return result


def _record(updates):
    now = timezone.now()
    totals = {"changed": 0, "unchanged": 0, "unknown": 0, "events_recorded": 0}
    recorded = {}
    connections_to_export = set()
    with transaction.atomic(), status_writes_allowed():
        for chunk in _chunks(updates, _CHUNK_SIZE):
            messages, connections = _load_for_update(
                {update.message_id for update in chunk}
            )
            changed_fields = {}
            events = []
            for update in chunk:
                message = messages.get(update.message_id)
                if message is None:
                    totals["unknown"] += 1
                    continue
                changes = status_changes(message, update.status, update.occurred_at)
                if not changes:
                    totals["unchanged"] += 1
                    continue
                if update.status == MessageStatus.FAILED and update.failure_reason:
                    changes["failure_reason"] = update.failure_reason
                for name, value in changes.items():
                    setattr(message, name, value)
                changed_fields.setdefault(message.pk, set()).update(changes)
                totals["changed"] += 1
                event = outbox_event_for(
                    message,
                    update.status,
                    update.occurred_at,
                    connection=connections.get(message.brand_id),
                    now=now,
                )
                if event is not None:
                    events.append(event)
            _write_changes(messages, changed_fields)
            connections_to_export |= outbox_record(events)
            totals["events_recorded"] += len(events)
            recorded.update({pk: messages[pk] for pk in changed_fields})
        for connection_id in sorted(connections_to_export):
            export_request(connection_id)
    if totals["unknown"]:
        logger.warning(
            "Status updates for unknown messages were ignored",
            extra={"unknown": totals["unknown"]},
        )
    return StatusRecordResult(**totals), recorded


def _chunks(items, size):
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _load_for_update(message_ids):
    """Lock and load the messages, with what their export events need: the
    customer by join, and the few campaigns, stores, staff members and
    connections behind them by one query each."""
    messages = (
        Message.objects.select_for_update(of=("self",))
        .select_related("customer")
        .in_bulk(message_ids)
    )
    related = {
        "campaign": Campaign.objects.only("public_id", "name"),
        "store": Store.objects.only("name"),
        "staff_member": StaffMember.objects.only("name"),
    }
    for name, queryset in related.items():
        ids = {getattr(message, f"{name}_id") for message in messages.values()} - {None}
        if not ids:
            continue
        found = queryset.in_bulk(ids)
        for message in messages.values():
            key = getattr(message, f"{name}_id")
            if key is not None:
                setattr(message, name, found[key])
    brand_ids = {message.brand_id for message in messages.values()}
    return messages, connections_by_brand(brand_ids)


def _write_changes(messages, changed_fields):
    """Write the changed fields: one UPDATE from a list of values for each
    set of fields that changed together (a few per chunk).

    Django's bulk_update builds a CASE expression per row and field, which
    costs more than the database's own work at campaign sizes.
    """
    by_fields = {}
    for pk, names in changed_fields.items():
        by_fields.setdefault(tuple(sorted(names)), []).append(messages[pk])
    for names, group in by_fields.items():
        _update_from_values(group, names)


def _update_from_values(messages, names):
    table = Message._meta.db_table
    fields = [Message._meta.get_field(name) for name in names]
    columns = ", ".join(["id", *(field.column for field in fields)])
    assignments = ", ".join(
        f"{connection.ops.quote_name(field.column)} = v.{field.column}"
        for field in fields
    )
    row = "(" + ", ".join(["%s"] * (len(fields) + 1)) + ")"
    for start in range(0, len(messages), _CHUNK_SIZE):
        part = messages[start : start + _CHUNK_SIZE]
        values = []
        for message in part:
            values.append(message.pk)
            values.extend(
                field.get_db_prep_save(getattr(message, field.attname), connection)
                for field in fields
            )
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH v ({columns}) AS (VALUES {', '.join([row] * len(part))}) "
                f"UPDATE {connection.ops.quote_name(table)} SET {assignments} "
                f"FROM v WHERE {connection.ops.quote_name(table)}.id = v.id",
                values,
            )
