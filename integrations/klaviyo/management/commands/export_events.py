import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count, Q
from django.utils import timezone
from tqdm import tqdm

from integrations.klaviyo.choices import AuthType, ConnectionState
from integrations.klaviyo.exporter import (
    RunSummary,
    connection_export_run,
    is_exporting,
)
from integrations.klaviyo.models import KlaviyoConnection, OutboundMessageEvent
from integrations.messaging.models import Brand

# Each connection gets the exporter for this long at a time, in turn, so that
# the bar moves and one brand's backlog does not hold up the others.
SLICE_SECONDS = 2.0
# A run that sent nothing while events were due met another worker's backlog
# lease or a paused quota; waiting this long avoids spinning on it.
IDLE_WAIT_SECONDS = 0.2


class Command(BaseCommand):
    help = (
        "Export the due Klaviyo events now, in this process: every exporting "
        "connection (or one brand's) is drained until nothing is due or "
        "--max-seconds have passed. Events waiting for a retry later stay "
        "pending for the background workers."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--brand",
            metavar="SLUG",
            help="Export only this brand's events (its slug).",
        )
        parser.add_argument(
            "--max-seconds",
            type=float,
            default=600.0,
            help="Stop after this many seconds, leaving what remains to the "
            "workers (default 600).",
        )
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="Hide the progress bar; the summary line is still printed.",
        )

    def handle(self, *args, brand, max_seconds, quiet, **options):
        if max_seconds <= 0:
            raise CommandError("--max-seconds must be more than 0.")
        connections = _connections(brand)
        started = time.monotonic()
        deadline = started + max_seconds
        ids = [connection.pk for connection in connections]
        pending_at_start = _pending_counts(ids)
        with tqdm(
            total=sum(pending_at_start.values()),
            unit="event",
            file=sys.stderr,
            disable=True if quiet else None,
        ) as bar:
            total = _drain(ids, deadline, pending_at_start, bar)
        elapsed = time.monotonic() - started
        left = sum(_pending_counts(ids).values())
        self.stdout.write(
            f"Exported {total.exported} events ({total.failed} failed, {left} to "
            f"retry) for {len(ids)} connection(s) in {elapsed:.1f} s."
        )
        still_due = _still_draining(ids)
        if still_due and time.monotonic() >= deadline:
            self.stderr.write(
                f"Stopped after {max_seconds:g} s with events still due on "
                f"{len(still_due)} connection(s); the background workers will "
                "take them, or run this command again."
            )


def _drain(connection_ids, deadline, pending_at_start, bar):
    """Give each connection with due events a slice of export in turn until
    none has any or the deadline passes; return the sum of the runs."""
    total = RunSummary()
    draining = _still_draining(connection_ids)
    while draining and time.monotonic() < deadline:
        for connection_id in draining:
            seconds = min(SLICE_SECONDS, deadline - time.monotonic())
            if seconds <= 0:
                break
            summary = connection_export_run(
                connection_id, seconds=seconds, hand_over=False
            )
            total.add(summary)
            if not summary.requests:
                time.sleep(min(IDLE_WAIT_SECONDS, seconds))
        # Counted from the rows, so events other workers export move it too.
        pending = _pending_counts(connection_ids)
        bar.n = sum(
            max(0, count - pending.get(pk, 0)) for pk, count in pending_at_start.items()
        )
        bar.refresh()
        draining = _still_draining(draining)
    return total


def _connections(slug):
    """The connections to drain: every exporting one, or the brand's."""
    if slug is None:
        return list(
            KlaviyoConnection.objects.filter(
                auth_type=AuthType.OAUTH,
                state=ConnectionState.ACTIVE,
                export_enabled=True,
            ).order_by("pk")
        )
    brand = Brand.objects.filter(slug=slug).first()
    if brand is None:
        raise CommandError(f"No brand has the slug {slug!r}.")
    connection = KlaviyoConnection.objects.filter(brand=brand).first()
    if connection is None:
        raise CommandError(f"{brand} has no Klaviyo connection.")
    if not is_exporting(connection):
        raise CommandError(
            f"{brand}'s Klaviyo connection does not export events now: "
            f"{_why_not_exporting(connection)}."
        )
    return [connection]


def _why_not_exporting(connection):
    if connection.is_legacy:
        return "it uses a legacy private API key; connect with OAuth to export"
    if connection.state == ConnectionState.NEEDS_RECONNECT:
        return "the brand must reconnect it"
    if connection.state == ConnectionState.DISCONNECTED:
        return "the brand disconnected it"
    return "export is switched off"


def _pending_counts(connection_ids):
    """{connection id: pending events} for the connections that have any."""
    rows = (
        OutboundMessageEvent.objects.pending()
        .filter(connection_id__in=connection_ids)
        .values("connection_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    return {row["connection_id"]: row["count"] for row in rows}


def _still_draining(connection_ids):
    """The connections, among ``connection_ids``, that still export and have
    an event due now that no worker holds."""
    now = timezone.now()
    due = set(
        OutboundMessageEvent.objects.pending()
        .filter(
            connection_id__in=connection_ids,
            connection__auth_type=AuthType.OAUTH,
            connection__state=ConnectionState.ACTIVE,
            connection__export_enabled=True,
            next_attempt_at__lte=now,
        )
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .values_list("connection_id", flat=True)
        .distinct()
    )
    return [pk for pk in connection_ids if pk in due]
