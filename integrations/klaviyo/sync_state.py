"""Each connection's sync state, read with a few grouped queries whatever the
number of connections or events (the admin, `klaviyo_status` and any
dashboard read it here)."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min
from django.utils import timezone

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import OutboundMessageEvent


@dataclass(frozen=True)
class SyncStatus:
    pending: int = 0
    oldest_pending_at: datetime | None = None
    failed: int = 0
    exported_last_hour: int = 0

    def lag(self, now):
        """Age of the oldest pending event, or None when nothing is pending."""
        if self.oldest_pending_at is None:
            return None
        return max(timedelta(0), now - self.oldest_pending_at)


def sync_statuses(connection_ids, *, now=None):
    """{connection id: SyncStatus} for ``connection_ids``."""
    now = now or timezone.now()
    ids = list(connection_ids)
    values = {connection_id: {} for connection_id in ids}
    grouped = (
        OutboundMessageEvent.objects.filter(
            connection_id__in=ids, state__in=[SyncState.PENDING, SyncState.FAILED]
        )
        .values("connection_id", "state")
        .annotate(count=Count("id"), oldest=Min("created_at"))
        .order_by()
    )
    for row in grouped:
        entry = values[row["connection_id"]]
        if row["state"] == SyncState.PENDING:
            entry["pending"] = row["count"]
            entry["oldest_pending_at"] = row["oldest"]
        else:
            entry["failed"] = row["count"]
    recent = (
        OutboundMessageEvent.objects.filter(
            connection_id__in=ids,
            state=SyncState.EXPORTED,
            exported_at__gte=now - timedelta(hours=1),
        )
        .values("connection_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    for row in recent:
        values[row["connection_id"]]["exported_last_hour"] = row["count"]
    return {
        connection_id: SyncStatus(**entry) for connection_id, entry in values.items()
    }
