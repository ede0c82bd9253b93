import argparse
import datetime
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Count
from django.utils import timezone
from tqdm import tqdm

from integrations.klaviyo.choices import SyncState
from integrations.klaviyo.models import OutboundMessageEvent
from integrations.klaviyo.resync import events_resync
from integrations.messaging.choices import Channel
from integrations.messaging.models import Brand

CHUNK_SIZE = 1000


def _moment(value):
    """An ISO 8601 date or datetime; a date stays a date, a datetime without
    an offset is read in the current time zone."""
    try:
        return datetime.date.fromisoformat(value)
    except ValueError:
        pass
    try:
        moment = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 date or datetime (for example "
            "2025-03-01 or 2025-03-01T14:30:00+00:00)"
        ) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _start_of(moment):
    """The first instant ``moment`` covers."""
    if isinstance(moment, datetime.datetime):
        return moment
    return timezone.make_aware(datetime.datetime.combine(moment, datetime.time.min))


def _end_of(moment):
    """The instant just after the last one ``moment`` covers: the next
    midnight for a date, a microsecond later for a datetime."""
    if isinstance(moment, datetime.datetime):
        return moment + datetime.timedelta(microseconds=1)
    return _start_of(moment + datetime.timedelta(days=1))


class Command(BaseCommand):
    help = (
        "Send Klaviyo events again after a fix on either side: select them by "
        "brand, state, channel and time, and count them by state. A dry run "
        "that changes nothing unless --apply is given; then the events are "
        "made pending and due now, and skipped ones have their customer's "
        "contact details read again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--brand",
            metavar="SLUG",
            help="Only this brand's events (its slug).",
        )
        parser.add_argument(
            "--state",
            action="append",
            dest="states",
            choices=SyncState.values,
            help="Only events in this sync state; repeat for several "
            "(default: failed).",
        )
        parser.add_argument(
            "--channel",
            action="append",
            dest="channels",
            choices=Channel.values,
            help="Only events of this channel; repeat for several (default: all).",
        )
        parser.add_argument(
            "--since",
            type=_moment,
            help="Only events whose status changed at or after this ISO 8601 "
            "date or datetime (a date means its first moment).",
        )
        parser.add_argument(
            "--until",
            type=_moment,
            help="Only events whose status changed at or before this ISO 8601 "
            "date or datetime (a date includes the whole day).",
        )
        parser.add_argument(
            "--apply",
            action="store_true",
            help="Queue the matching events again. Without it, only count them.",
        )
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="Hide the progress bar; the summary line is still printed.",
        )

    def handle(self, *args, states, apply, quiet, **options):
        states = states or [SyncState.FAILED]
        events = _events(states=states, **options)
        by_state = dict(
            events.values_list("state").annotate(count=Count("id")).order_by()
        )
        total = sum(by_state.values())
        breakdown = ", ".join(
            f"{by_state.get(state, 0)} {SyncState(state).label.lower()}"
            for state in SyncState.values
            if state in states
        )
        self.stdout.write(f"{total} event(s) match: {breakdown}.")
        if not apply:
            self.stdout.write(
                "Dry run: nothing changed. Run again with --apply to queue them again."
            )
            return
        with tqdm(
            total=total,
            unit="event",
            file=sys.stderr,
            disable=True if quiet else None,
        ) as bar:
            resynced, still_skipped = events_resync(
                events, chunk_size=CHUNK_SIZE, progress=bar.update
            )
        being_sent = max(0, total - resynced - still_skipped)
        self.stdout.write(
            f"Queued {resynced} of {total} event(s) again ({still_skipped} still "
            f"skipped: no usable contact details; {being_sent} being sent, left "
            "to their worker)."
        )


def _events(*, states, brand, channels, since, until, **options):
    """The events the options select; raises CommandError for an unknown
    brand or an empty time range."""
    events = OutboundMessageEvent.objects.filter(state__in=states)
    if brand is not None:
        found = Brand.objects.filter(slug=brand).first()
        if found is None:
            raise CommandError(f"No brand has the slug {brand!r}.")
        events = events.filter(connection__brand=found)
    if channels:
        events = events.filter(channel__in=channels)
    lower = None if since is None else _start_of(since)
    upper = None if until is None else _end_of(until)
    if lower is not None and upper is not None and lower >= upper:
        raise CommandError("--since must be earlier than --until.")
    if lower is not None:
        events = events.filter(occurred_at__gte=lower)
    if upper is not None:
        events = events.filter(occurred_at__lt=upper)
    return events
