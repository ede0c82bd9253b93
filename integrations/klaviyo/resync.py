"""Re-sync: send events again, after a fix on either side.

Sending an exported event again is harmless: Klaviyo keeps the first event
with a given ``unique_id`` per profile and metric and drops the repeat.
"""

from django.db import transaction
from django.utils import timezone

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import OutboundMessageEvent
from integrations.klaviyo.outbox import customer_profile_identifier, export_request
from integrations.klaviyo.payloads import InvalidContact


def events_resync(events, *, chunk_size=1000, progress=None):
    """Make ``events`` (a queryset) pending and due now, reading the contact
    details of skipped ones again. Returns (resynced, still_skipped).

    Works in chunks of ``chunk_size`` events, each in its own transaction;
    ``progress`` is called with the size of each chunk done.
    """
    ids = list(events.order_by("pk").values_list("pk", flat=True))
    resynced = still_skipped = 0
    for start in range(0, len(ids), chunk_size):
        chunk = ids[start : start + chunk_size]
        done, skipped = _resync_chunk(chunk)
        resynced += done
        still_skipped += skipped
        if progress is not None:
            progress(len(chunk))
    return resynced, still_skipped


def _resync_chunk(ids):
    now = timezone.now()
    still_skipped = []
    with transaction.atomic():
        skipped = OutboundMessageEvent.objects.filter(
            pk__in=ids, state=SyncState.SKIPPED
        ).select_related("message__customer")
        for event in skipped:
            try:
                event.profile_identifier = customer_profile_identifier(
                    event.channel, event.message.customer
                )
            except InvalidContact as error:
                event.state_reason = str(error)
                event.save(update_fields=["state_reason"])
                still_skipped.append(event.pk)
            else:
                event.save(update_fields=["profile_identifier"])
        # An event a worker is sending right now is left to that worker.
        resendable = (
            OutboundMessageEvent.objects.filter(pk__in=ids)
            .exclude(pk__in=still_skipped)
            .exclude(state=SyncState.PENDING, claimed_until__gt=now)
        )
        connection_ids = set(
            resendable.values_list("connection_id", flat=True).distinct()
        )
        resynced = resendable.update(
            state=SyncState.PENDING,
            state_reason="",
            attempts=0,
            next_attempt_at=now,
            claimed_until=None,
            claimed_by="",
            last_error="",
        )
        for connection_id in sorted(connection_ids):
            export_request(connection_id)
    return resynced, len(still_skipped)
