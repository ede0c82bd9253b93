"""Exports a connection's outbox to Klaviyo.

One run drains what is due, within a time budget:

- Workers claim events with a lease in a short transaction (``FOR UPDATE
  SKIP LOCKED`` on PostgreSQL; SQLite serialises writers), so any number of
  workers on any number of machines never send one event at the same time,
  and a dead worker's claim lapses and is taken again.
- 1-on-1 events are served first, by every run. The campaign backlog is
  drained by one run per connection at a time (the backlog lease), so a
  brand's campaign never takes more than one worker from other brands.
- A handful of events go out one by one through ``POST /api/events``; more
  go through the bulk endpoint, up to 1,000 events and 5 MB a request.
  The two endpoints have separate quotas, paced per account (``pacing``).
- Every outcome lands on the event row: exported, failed with the reason,
  or pending with the next attempt time, the last status and error.
"""

import logging
import os
import random
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, fields
from datetime import timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from integrations.klaviyo import conf, tokens
from integrations.klaviyo.choices import AuthType, ConnectionState, Endpoint, SyncState
from integrations.klaviyo.client import KlaviyoClient
from integrations.klaviyo.errors import (
    KlaviyoError,
    KlaviyoRateLimited,
    KlaviyoReconnectRequired,
    KlaviyoRejected,
    KlaviyoUnauthorized,
)
from integrations.klaviyo.models import KlaviyoConnection, OutboundMessageEvent
from integrations.klaviyo.outbox import export_request
from integrations.klaviyo.pacing import (
    account_key,
    burst_spacing,
    quota_observe,
    quota_pause,
    quota_reserve,
)
from integrations.klaviyo.payloads import (
    BULK_MAX_BYTES,
    BULK_MAX_EVENTS,
    EventData,
    bulk_create_events_body,
    create_event_body,
    encoded_size,
    group_by_profile,
)
from integrations.messaging.choices import MessageKind

logger = logging.getLogger(__name__)

# A claim outlives any request (connect + read timeouts) with room to spare.
CLAIM_LEASE = timedelta(minutes=2)
BACKLOG_LEASE = timedelta(seconds=30)
# At most this many due events go out one by one; more use the bulk endpoint.
SINGLE_EVENTS_MAX = 20
# How long a run sleeps for a pacing slot before looking at 1-on-1 events
# again, and how far ahead it waits for retries instead of leaving them to
# the sweep.
REALTIME_MAX_WAIT = 1.0
BACKLOG_MAX_WAIT = 0.2
IDLE_POLL = 0.1
RETRY_HORIZON = timedelta(seconds=5)
# Retries: 5 s, 10 s, 20 s, ... up to 10 minutes, each +-20%.
RETRY_BASE_SECONDS = 5
RETRY_MAX_SECONDS = 600

_BULK_POINTER = re.compile(
    r"^/data/attributes/events-bulk-create/data/(\d+)(?:/attributes/events/data/(\d+))?"
)
_CLAIMED_FIELDS = (
    "id",
    "metric_name",
    "channel",
    "profile_identifier",
    "occurred_at",
    "unique_id",
    "properties",
    "attempts",
    "created_at",
)


@dataclass
class RunSummary:
    exported: int = 0
    failed: int = 0
    retried: int = 0
    requests: int = 0
    rate_limited: int = 0

    def add(self, other):
        for field in fields(self):
            setattr(
                self, field.name, getattr(self, field.name) + getattr(other, field.name)
            )


class _Stop(Exception):
    """The run cannot go on (the brand must reconnect)."""


class _NoRoom(Exception):
    """The account's quota has no room soon; the events go back unsent."""


def retry_delay(attempts, *, rng=random):
    """Seconds before retry number ``attempts`` (1-based), with jitter."""
    delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return delay * rng.uniform(0.8, 1.2)


def is_exporting(connection):
    return (
        connection.auth_type == AuthType.OAUTH
        and connection.state == ConnectionState.ACTIVE
        and connection.export_enabled
    )


def connection_export_run(connection_id, *, seconds=None, hand_over=True):
    """Export the connection's due events for up to ``seconds`` (default
    KLAVIYO_EXPORT_RUN_SECONDS). With ``hand_over``, a run that stops with
    events due asks for another run in the background."""
    KlaviyoConnection.objects.filter(pk=connection_id).update(export_requested_at=None)
    connection = KlaviyoConnection.objects.filter(pk=connection_id).first()
    if connection is None or not is_exporting(connection):
        return RunSummary()
    budget = settings.KLAVIYO_EXPORT_RUN_SECONDS if seconds is None else seconds
    run = _Run(connection, deadline=time.monotonic() + budget)
    try:
        run.drain()
    except _Stop:
        pass
    finally:
        run.release_backlog_lease()
    if hand_over and run.stopped_with_work_due:
        export_request(connection.pk)
    s = run.summary
    if s.requests:
        logger.info(
            "Klaviyo export run finished",
            extra={
                "connection": connection.pk,
                "brand": connection.brand_id,
                "exported": s.exported,
                "failed": s.failed,
                "retried": s.retried,
                "requests": s.requests,
            },
        )
    return s


class _Run:
    def __init__(self, connection, *, deadline):
        self.connection = connection
        self.deadline = deadline
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.key = account_key(connection)
        self.summary = RunSummary()
        self.stopped_with_work_due = False
        self._credentials = None
        self._lease_until = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Set by whichever thread learns that the brand must reconnect.
        self._stopped_for_reconnect = False

    def _tally(self, **counts):
        with self._lock:
            for name, count in counts.items():
                setattr(self.summary, name, getattr(self.summary, name) + count)

    # The loop

    def drain(self):
        """Serve 1-on-1 events first, then the backlog while holding its
        lease. Extra threads send more backlog requests side by side, so
        that the database work of one overlaps Klaviyo's answer to another."""
        helpers = [
            threading.Thread(target=self._drain_backlog, daemon=True)
            for _ in range(max(0, settings.KLAVIYO_EXPORT_BACKLOG_THREADS - 1))
        ]
        for helper in helpers:
            helper.start()
        try:
            self._drain()
        finally:
            self._stop.set()
            for helper in helpers:
                helper.join()
        if self._stopped_for_reconnect:
            raise _Stop

    def _drain(self):
        while time.monotonic() < self.deadline and not self._stopped_for_reconnect:
            if self._serve_lane((MessageKind.ONE_TO_ONE,), REALTIME_MAX_WAIT):
                continue
            if self._take_backlog_lease() and self._serve_lane(
                (MessageKind.CAMPAIGN,), BACKLOG_MAX_WAIT
            ):
                continue
            wait = self._seconds_to_next_due()
            if wait is None:
                return
            time.sleep(min(max(wait, 0.01), IDLE_POLL))
        if not self._stopped_for_reconnect:
            self.stopped_with_work_due = self._seconds_to_next_due() is not None

    def _drain_backlog(self):
        try:
            while not self._stop.is_set() and time.monotonic() < self.deadline:
                if self._lease_until is None or not self._serve_lane(
                    (MessageKind.CAMPAIGN,), BACKLOG_MAX_WAIT
                ):
                    self._stop.wait(IDLE_POLL)
        except _Stop:
            self._stopped_for_reconnect = True
        finally:
            connections.close_all()

    def _serve_lane(self, kinds, max_wait):
        rows = self._claim(kinds, BULK_MAX_EVENTS)
        if not rows:
            return False
        try:
            if len(rows) <= SINGLE_EVENTS_MAX:
                self._send_singles(rows, max_wait)
            else:
                self._send_bulk(rows, max_wait)
        except _NoRoom:
            return False
        except _Stop:
            self._stopped_for_reconnect = True
            raise
        return True

    def _seconds_to_next_due(self):
        """Seconds until an event this run may send is due, or None when
        nothing is due within RETRY_HORIZON (the sweep takes it from there)."""
        now = timezone.now()
        lanes = Q(kind=MessageKind.ONE_TO_ONE)
        if self._lease_until is not None:
            lanes |= Q(kind=MessageKind.CAMPAIGN)
        next_due = (
            OutboundMessageEvent.objects.pending()
            .filter(
                connection=self.connection, next_attempt_at__lte=now + RETRY_HORIZON
            )
            .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
            .filter(lanes)
            .aggregate(next_due=Min("next_attempt_at"))["next_due"]
        )
        if next_due is None:
            return None
        return max(0.0, (next_due - now).total_seconds())

    # Claims and leases

    def _claim(self, kinds, limit):
        now = timezone.now()
        with transaction.atomic():
            ids = list(
                OutboundMessageEvent.objects.pending()
                .filter(
                    connection=self.connection, kind__in=kinds, next_attempt_at__lte=now
                )
                .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
                .order_by("next_attempt_at", "id")
                .select_for_update(skip_locked=True)
                .values_list("id", flat=True)[:limit]
            )
            if not ids:
                return []
            OutboundMessageEvent.objects.filter(id__in=ids).update(
                claimed_until=now + CLAIM_LEASE,
                claimed_by=self.holder,
                attempts=F("attempts") + 1,
            )
        return list(
            OutboundMessageEvent.objects.filter(id__in=ids, claimed_by=self.holder)
            .order_by("next_attempt_at", "id")
            .values(*_CLAIMED_FIELDS)
        )

    def _take_backlog_lease(self):
        now = timezone.now()
        if (
            self._lease_until is not None
            and self._lease_until - now > BACKLOG_LEASE / 2
        ):
            return True
        until = now + BACKLOG_LEASE
        taken = (
            KlaviyoConnection.objects.filter(pk=self.connection.pk)
            .filter(
                Q(backlog_lease_until__isnull=True)
                | Q(backlog_lease_until__lt=now)
                | Q(backlog_lease_holder=self.holder)
            )
            .update(backlog_lease_until=until, backlog_lease_holder=self.holder)
        )
        self._lease_until = until if taken else None
        return bool(taken)

    def release_backlog_lease(self):
        if self._lease_until is None:
            return
        KlaviyoConnection.objects.filter(
            pk=self.connection.pk, backlog_lease_holder=self.holder
        ).update(backlog_lease_until=None, backlog_lease_holder="")
        self._lease_until = None

    # Sending

    def _client(self):
        if self._credentials is None:
            try:
                self._credentials = tokens.connection_credentials(self.connection)
            except tokens.ReconnectRequired:
                raise _Stop from None
        return KlaviyoClient(self._credentials)

    def _reserve(self, endpoint, requests, max_wait):
        """Wait for room in the account's quota for ``requests`` calls."""
        wait = quota_reserve(self.key, endpoint, requests=requests, max_wait=max_wait)
        if wait is None:
            raise _NoRoom
        if wait > 0:
            time.sleep(wait)

    def _send(self, endpoint, send):
        """Make one reserved call, handling what only the connection can fix:
        one refresh after a 401, reconnection after a refused grant."""
        self._tally(requests=1)
        sent_at = timezone.now()
        try:
            try:
                answer = send(self._client())
            except KlaviyoUnauthorized:
                self._credentials = tokens.connection_credentials_after_unauthorized(
                    self.connection, self._credentials
                )
                answer = send(self._client())
        except tokens.ReconnectRequired:
            raise _Stop from None
        except (KlaviyoUnauthorized, KlaviyoReconnectRequired) as error:
            tokens.connection_needs_reconnect(self.connection, str(error))
            raise _Stop from None
        except KlaviyoRateLimited as error:
            self._tally(rate_limited=1)
            quota_pause(self.key, endpoint, error.retry_after or 1.0)
            raise
        quota_observe(self.key, endpoint, answer.rate_limit, sent_at=sent_at)
        return answer

    def _send_singles(self, rows, max_wait):
        try:
            self._reserve(Endpoint.EVENTS, len(rows), max_wait)
        except _NoRoom:
            self._release(rows)
            raise
        # The reservation booked one slot per event, burst_spacing apart.
        spacing = burst_spacing(Endpoint.EVENTS).total_seconds()
        first_slot = time.monotonic()
        for position, row in enumerate(rows):
            delay = first_slot + position * spacing - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            body = create_event_body(_event(row))
            try:
                self._send(
                    Endpoint.EVENTS, lambda client, body=body: client.create_event(body)
                )
            except _Stop:
                self._release(rows[position:])
                raise
            except KlaviyoRateLimited as error:
                self._release(rows[position:], delay=error.retry_after or 1.0)
                return
            except KlaviyoRejected as error:
                self._fail([row], str(error), error.status_code)
            except KlaviyoError as error:
                self._retry([row], error)
            else:
                self._exported([row], Endpoint.EVENTS)

    def _send_bulk(self, rows, max_wait):
        groups = group_by_profile([_event(row) for row in rows])
        body = bulk_create_events_body(groups)
        if len(rows) > 1 and encoded_size(body) > BULK_MAX_BYTES:
            middle = len(rows) // 2
            self._send_bulk(rows[:middle], max_wait)
            self._send_bulk(rows[middle:], max_wait)
            return
        try:
            self._reserve(Endpoint.BULK, 1, max_wait)
            self._send(Endpoint.BULK, lambda client: client.bulk_create_events(body))
        except (_Stop, _NoRoom):
            self._release(rows)
            raise
        except KlaviyoRateLimited as error:
            self._release(rows, delay=error.retry_after or 1.0)
            return
        except KlaviyoRejected as error:
            self._isolate_rejected(rows, groups, error, max_wait)
            return
        except KlaviyoError as error:
            self._retry(rows, error)
            return
        self._exported(rows, Endpoint.BULK)

    def _isolate_rejected(self, rows, groups, error, max_wait):
        """Fail only the events Klaviyo named; send the others again. When it
        named none, split the request in halves until the bad one is alone."""
        by_unique = {(row["unique_id"], row["metric_name"]): row for row in rows}
        bad = {}
        for item in error.errors:
            if not isinstance(item, dict):
                continue
            detail = item.get("detail") or item.get("title") or "invalid"
            pointer = (item.get("source") or {}).get("pointer") or ""
            match = _BULK_POINTER.match(pointer)
            if not match or int(match.group(1)) >= len(groups):
                continue
            group = groups[int(match.group(1))]
            named = (
                group if match.group(2) is None else group[int(match.group(2)) :][:1]
            )
            for event in named:
                row = by_unique[(event.unique_id, event.metric_name)]
                bad.setdefault(row["id"], (row, detail))
        if len(rows) == 1 and not bad:
            self._fail(rows, str(error), error.status_code)
            return
        if bad:
            for row, detail in bad.values():
                self._fail(
                    [row], f"Klaviyo rejected the event: {detail}", error.status_code
                )
            rest = [row for row in rows if row["id"] not in bad]
            if rest:
                self._send_bulk(rest, max_wait)
            return
        middle = len(rows) // 2
        self._send_bulk(rows[:middle], max_wait)
        self._send_bulk(rows[middle:], max_wait)

    # Outcomes, always written on the rows

    def _mine(self, rows):
        return OutboundMessageEvent.objects.filter(
            id__in=[row["id"] for row in rows], claimed_by=self.holder
        )

    def _exported(self, rows, endpoint):
        count = self._mine(rows).update(
            state=SyncState.EXPORTED,
            exported_at=timezone.now(),
            endpoint=endpoint,
            last_status_code=202,
            last_error="",
            state_reason="",
            claimed_until=None,
            claimed_by="",
        )
        self._tally(exported=count)

    def _fail(self, rows, reason, status_code):
        count = self._mine(rows).update(
            state=SyncState.FAILED,
            state_reason=reason,
            last_status_code=status_code,
            last_error=reason,
            claimed_until=None,
            claimed_by="",
        )
        self._tally(failed=count)
        logger.warning(
            "Klaviyo refused events",
            extra={
                "connection": self.connection.pk,
                "events": len(rows),
                "first_event": rows[0]["id"],
                "status_code": status_code,
            },
        )

    def _retry(self, rows, error):
        """Put the events back with a backoff, or fail those too old to keep
        trying."""
        now = timezone.now()
        max_age = conf.export_max_age()
        too_old = now - max_age
        expired = [row for row in rows if row["created_at"] < too_old]
        if expired:
            hours = max_age.total_seconds() / 3600
            self._fail(
                expired,
                f"Not accepted by Klaviyo within {hours:g} hours; last error: {error}",
                error.status_code,
            )
        live = [row for row in rows if row["created_at"] >= too_old]
        if not live:
            return
        attempts = max(row["attempts"] for row in live)
        count = self._mine(live).update(
            next_attempt_at=now + timedelta(seconds=retry_delay(attempts)),
            last_status_code=error.status_code,
            last_error=str(error),
            claimed_until=None,
            claimed_by="",
        )
        self._tally(retried=count)
        logger.warning(
            "Klaviyo export will be retried",
            extra={
                "connection": self.connection.pk,
                "events": len(live),
                "status_code": error.status_code,
                "attempts": attempts,
            },
        )

    def _release(self, rows, *, delay=0.0):
        """Give claimed events back unsent; the claim does not count as an
        attempt."""
        if not rows:
            return
        self._mine(rows).update(
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
            attempts=F("attempts") - 1,
            claimed_until=None,
            claimed_by="",
        )


def _event(row):
    return EventData(
        metric_name=row["metric_name"],
        channel=row["channel"],
        profile_identifier=row["profile_identifier"],
        occurred_at=row["occurred_at"],
        unique_id=row["unique_id"],
        properties=row["properties"],
    )
