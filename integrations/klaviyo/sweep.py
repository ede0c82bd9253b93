"""The periodic safety net: nothing pending is left without a worker."""

import logging

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from integrations.klaviyo import conf
from integrations.klaviyo.choices import AuthType, ConnectionState, SyncState
from integrations.klaviyo.models import KlaviyoConnection, OutboundMessageEvent
from integrations.klaviyo.outbox import export_request

logger = logging.getLogger(__name__)


def outbox_sweep():
    """Fail pending events past the maximum age, and ask for an export of
    every connection with due events (coalesced as usual). Returns the
    numbers of events failed and exports asked for."""
    now = timezone.now()
    max_age = conf.export_max_age()
    hours = max_age.total_seconds() / 3600
    expired = (
        OutboundMessageEvent.objects.pending()
        .filter(created_at__lt=now - max_age)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(
            state=SyncState.FAILED,
            state_reason=f"Not accepted by Klaviyo within {hours:g} hours.",
            claimed_until=None,
            claimed_by="",
        )
    )
    if expired:
        logger.warning("Pending events expired", extra={"events": expired})
    due_events = OutboundMessageEvent.objects.pending().filter(
        connection=OuterRef("pk"), next_attempt_at__lte=now
    )
    due_connections = KlaviyoConnection.objects.filter(
        Exists(due_events),
        auth_type=AuthType.OAUTH,
        state=ConnectionState.ACTIVE,
        export_enabled=True,
    ).values_list("pk", flat=True)
    requested = 0
    for connection_id in due_connections:
        export_request(connection_id)
        requested += 1
    return expired, requested
