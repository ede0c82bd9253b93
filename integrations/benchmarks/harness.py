"""The export benchmark: every figure of the README, in one run, on the
configured database, against a sandbox of its own over real HTTP.

Phases, in order:

1. ingest overhead: 10,000 single status changes, export on against off;
2. bulk ingest: one campaign's status change, outbox rows included, which
   leaves the backlog for the next phases;
3. capacity: a worker cluster drains the backlog, sandbox limits off;
4. ceiling: the same backlog again with the limits on (scaled), while
   1-on-1 messages of the same brand are sent, and a naive exporter (one
   ``POST /api/events`` per event) sends the same events for another
   account under the same limits.
"""

import datetime
import math
import os
import platform
import secrets
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import psutil
from django.conf import settings
from django.db import connection as db_connection
from django.db.models import Max, Min
from django.utils import timezone

from integrations.benchmarks.processes import (
    free_port,
    manage,
    product_env,
    stop,
    wait_until,
)
from integrations.klaviyo import conf
from integrations.klaviyo.choices import AuthType, Endpoint, SyncState
from integrations.klaviyo.client import Credentials, KlaviyoClient
from integrations.klaviyo.errors import KlaviyoError, KlaviyoRateLimited
from integrations.klaviyo.models import (
    KlaviyoConnection,
    KlaviyoQuota,
    OutboundMessageEvent,
)
from integrations.klaviyo.outbox import export_request
from integrations.klaviyo.pacing import KLAVIYO_LIMITS
from integrations.klaviyo.payloads import EventData, create_event_body
from integrations.klaviyo.rules import metric_name
from integrations.klaviyo.secrets import encryption_keys
from integrations.messaging.choices import Channel, MessageKind, MessageStatus
from integrations.messaging.models import Brand, Campaign, Customer, Message
from integrations.messaging.services import (
    StatusUpdate,
    message_status_record,
    message_status_record_many,
)
from integrations.sandbox.control import SandboxControl, SandboxControlError

OURS, NAIVE = "DEMO01", "DEMO02"
WINDOW = 60


@dataclass
class Plan:
    backlog: int = 100_000
    singles: int = 10_000
    ceiling_seconds: float = 200
    limit_scale: float = 0.1
    workers: int = 2


class Benchmark:
    def __init__(self, plan, *, say):
        self.plan = plan
        self.say = say
        self.tag = secrets.token_hex(3)
        self.brands = []
        self.results = {}
        self.peak_rss = 0

    def run(self):
        # Queries are not kept in memory, whatever DEBUG says; the keys that
        # DEBUG allowed stay in use.
        settings.ENCRYPTION_KEYS = encryption_keys()
        settings.DEBUG = False
        started = time.monotonic()
        try:
            with self._sandbox() as sandbox:
                self.sandbox = sandbox
                self._ingest_overhead()
                connection = self._bulk_ingest()
                self._capacity(connection)
                self._ceiling(connection)
        finally:
            self._clean_up()
        self.results["peak_rss_mb"] = round(self.peak_rss / 2**20, 1)
        self.results["seconds"] = round(time.monotonic() - started, 1)
        self.results["machine"] = {
            "database": db_connection.vendor,
            "broker": "redis" if settings.REDIS_URL else "orm",
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
        }
        self.results["plan"] = vars(self.plan)
        return self.results

    # Phases

    def _ingest_overhead(self):
        """Single status changes, each in its own transaction, for a brand
        that exports and for one that does not, in alternating slices."""
        count = self.plan.singles
        self.say(f"ingest overhead: {count:,} single status changes, export on and off")
        on = self._brand("on", export=True)
        off = self._brand("off", export=False)
        messages = {
            brand.pk: self._messages(brand, count, kind=MessageKind.ONE_TO_ONE)
            for brand in (on, off)
        }
        elapsed = {on.pk: 0.0, off.pk: 0.0}
        for start in range(0, count, 1000):
            for brand in (off, on):
                began = time.perf_counter()
                for message in messages[brand.pk][start : start + 1000]:
                    message_status_record(message, MessageStatus.SENT)
                elapsed[brand.pk] += time.perf_counter() - began
        self.results["ingest_overhead_ratio"] = round(
            elapsed[on.pk] / elapsed[off.pk], 3
        )
        self.results["single_changes_per_s_export_on"] = round(count / elapsed[on.pk])
        self.results["single_changes_per_s_export_off"] = round(count / elapsed[off.pk])

    def _bulk_ingest(self):
        count = self.plan.backlog
        self.say(f"bulk ingest: a campaign of {count:,} messages reaches 'sent'")
        brand = self._brand("campaign", export=True)
        messages = self._messages(brand, count, kind=MessageKind.CAMPAIGN)
        now = timezone.now()
        updates = [
            StatusUpdate(message.pk, MessageStatus.SENT, now) for message in messages
        ]
        began = time.perf_counter()
        result = message_status_record_many(updates)
        elapsed = time.perf_counter() - began
        assert result.events_recorded == count, result
        self.results["bulk_ingest_per_s"] = round(count / elapsed)
        return brand.klaviyo_connection

    def _capacity(self, connection):
        count = self.plan.backlog
        self.say(
            f"capacity: {self.plan.workers} workers drain {count:,} events, limits off"
        )
        self.sandbox.configure(rate_limits_enabled=False)
        events = OutboundMessageEvent.objects.filter(connection=connection)
        env = self._worker_env(rate_limit_scale=1000)
        with self._cluster(env):
            _kick(connection)
            self._wait_drained(events, timeout=600)
        span = events.aggregate(first=Min("exported_at"), last=Max("exported_at"))
        seconds = (span["last"] - span["first"]).total_seconds()
        self.results["capacity_events_per_s"] = round(count / seconds)
        self._count_losses(events, "capacity")

    def _ceiling(self, connection):
        plan = self.plan
        self.say(
            f"ceiling: {plan.ceiling_seconds:g} s at {plan.limit_scale:g} of Klaviyo's "
            "limits, with 1-on-1 messages and a naive exporter alongside"
        )
        self.sandbox.reset()
        self.sandbox.configure(
            rate_limits_enabled=True, rate_limit_scale=plan.limit_scale
        )
        self._grant(connection, OURS)
        KlaviyoQuota.objects.filter(account_key=OURS).delete()
        events = OutboundMessageEvent.objects.filter(connection=connection)
        naive_events = [_event(row) for row in events.values(*_EVENT_FIELDS)]
        events.update(
            state=SyncState.PENDING,
            next_attempt_at=timezone.now(),
            attempts=0,
            exported_at=None,
            endpoint="",
            last_status_code=None,
        )
        chats = self._messages(
            connection.brand,
            int(plan.ceiling_seconds) + 10,
            kind=MessageKind.ONE_TO_ONE,
        )
        naive = _NaiveExporter(
            self._naive_credentials(), self.sandbox.url, naive_events
        )
        committed = {}
        env = self._worker_env(rate_limit_scale=plan.limit_scale)
        with self._cluster(env):
            _kick(connection)
            naive.start()
            deadline = time.monotonic() + plan.ceiling_seconds
            for message in chats:
                if time.monotonic() >= deadline:
                    break
                message_status_record(message, MessageStatus.SENT)
                committed[message.public_id] = time.time()
                self._sample_rss()
                time.sleep(1.0)
            naive.stop()
            self._wait_delivered(committed)
        ours = self.sandbox.events(account=OURS)
        theirs = self.sandbox.events(account=NAIVE)
        bulk_ceiling = (
            _scaled(KLAVIYO_LIMITS[Endpoint.BULK].steady, plan.limit_scale) * 1000
        )
        campaign = [event for event in ours if event["unique_id"] not in committed]
        per_window = _full_windows(campaign)
        naive_per_window = _full_windows(theirs)
        stats = self.sandbox.stats(account=OURS)
        latencies = sorted(
            event["received_at"] - committed[event["unique_id"]]
            for event in ours
            if event["unique_id"] in committed
        )
        ours_per_window = _mean(per_window)
        naive_mean = _mean(naive_per_window)
        self.results.update(
            {
                "ceiling_use": _ratio(ours_per_window, bulk_ceiling, 3),
                "ceiling_full_windows": len(per_window),
                "exporter_events_per_s": _ratio(ours_per_window, WINDOW, 1),
                "rate_limited_share": _ratio(
                    stats["rate_limited"], stats["requests"], 4
                ),
                "naive_events_per_s": _ratio(naive_mean, WINDOW, 2),
                "speedup_vs_naive": _ratio(ours_per_window, naive_mean, 1),
                "one_to_one_samples": len(latencies),
                "one_to_one_p50_s": round(_percentile(latencies, 50), 3),
                "one_to_one_p99_s": round(_percentile(latencies, 99), 3),
            }
        )
        exported = events.filter(state=SyncState.EXPORTED)
        self._count_losses(exported, "ceiling")

    # Measurements

    def _count_losses(self, exported, phase):
        """Events the outbox calls exported but the sandbox lacks, and events
        the sandbox received twice."""
        stored = {
            (event["unique_id"], event["metric"])
            for event in self.sandbox.events(account=OURS)
        }
        rows = set(
            exported.filter(state=SyncState.EXPORTED).values_list(
                "unique_id", "metric_name"
            )
        )
        lost = len(rows - stored)
        duplicates = self.sandbox.stats(account=OURS)["events_deduplicated"]
        self.results["lost"] = self.results.get("lost", 0) + lost
        self.results["duplicates"] = self.results.get("duplicates", 0) + duplicates
        self.say(
            f"  {phase}: {len(rows):,} exported, {lost} lost, {duplicates} duplicates"
        )

    def _wait_drained(self, events, *, timeout):
        def drained():
            self._sample_rss()
            return not events.filter(state=SyncState.PENDING).exists()

        wait_until(drained, timeout=timeout, interval=0.5, message="an empty outbox")

    def _wait_delivered(self, committed):
        wanted = set(committed)

        def delivered():
            sent_sms = metric_name(
                Channel.SMS, MessageStatus.SENT, conf.platform_name()
            )
            found = {
                event["unique_id"]
                for event in self.sandbox.events(account=OURS, metric=sent_sms)
            }
            return wanted <= found

        wait_until(delivered, timeout=60, interval=0.5, message="every 1-on-1 event")

    def _sample_rss(self):
        """The largest resident memory of any process of the cluster."""
        root = getattr(self, "_cluster_root", None)
        if root is None:
            return
        try:
            processes = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        for process in processes:
            try:
                self.peak_rss = max(self.peak_rss, process.memory_info().rss)
            except psutil.Error:
                continue

    # Set-up

    @contextmanager
    def _sandbox(self):
        port = free_port()
        process = manage(
            "klaviyo_sandbox",
            "--port",
            str(port),
            "--no-rate-limits",
            env=os.environ.copy(),
        )
        control = SandboxControl(f"http://127.0.0.1:{port}")
        try:
            wait_until(_answers(control), timeout=30, message="the sandbox")
            yield control
        finally:
            stop(process)

    @contextmanager
    def _cluster(self, env):
        process = manage("qcluster", env=env)
        self._cluster_root = psutil.Process(process.pid)
        try:
            yield process
        finally:
            self._sample_rss()
            self._cluster_root = None
            output = stop(process)
            if process.returncode not in (0, -15, -9):
                self.say(output)

    def _worker_env(self, *, rate_limit_scale):
        return product_env(
            self.sandbox.url,
            Q_WORKERS=self.plan.workers,
            KLAVIYO_RATE_LIMIT_SCALE=rate_limit_scale,
        )

    def _brand(self, name, *, export):
        brand = Brand.objects.create(
            name=f"Benchmark {name}", slug=f"benchmark-{self.tag}-{name}"
        )
        self.brands.append(brand)
        connection = KlaviyoConnection(
            brand=brand,
            auth_type=AuthType.OAUTH,
            export_enabled=export,
            export_enabled_at=timezone.now() - datetime.timedelta(days=1)
            if export
            else None,
        )
        self._grant(connection, OURS)
        return brand

    def _grant(self, connection, account_id):
        grant = self.sandbox.issue_grant(account_id=account_id, scopes=conf.scopes())
        connection.account_id = account_id
        connection.access_token = grant["access_token"]
        connection.refresh_token = grant["refresh_token"]
        connection.token_expires_at = timezone.now() + datetime.timedelta(
            seconds=grant["expires_in"]
        )
        connection.save()

    def _naive_credentials(self):
        grant = self.sandbox.issue_grant(account_id=NAIVE, scopes=conf.scopes())
        return Credentials(access_token=grant["access_token"])

    def _messages(self, brand, count, *, kind):
        campaign = None
        if kind == MessageKind.CAMPAIGN:
            campaign = Campaign.objects.create(
                brand=brand, name="Benchmark", channel=Channel.SMS
            )
        customers = Customer.objects.bulk_create(
            [
                Customer(
                    brand=brand,
                    email=f"bench-{self.tag}-{index}@example.com",
                    phone=f"+1415{index // 10000 % 1000:03d}{index % 10000:04d}",
                    phone_input=f"+1415{index // 10000 % 1000:03d}{index % 10000:04d}",
                )
                for index in range(count)
            ],
            batch_size=2000,
        )
        return Message.objects.bulk_create(
            [
                Message(
                    brand=brand,
                    customer=customer,
                    campaign=campaign,
                    channel=Channel.SMS,
                    kind=kind,
                    status=MessageStatus.QUEUED,
                )
                for customer in customers
            ],
            batch_size=2000,
        )

    def _clean_up(self):
        if not self.brands:
            return
        self.say("cleaning up")
        brand_ids = [brand.pk for brand in self.brands]
        OutboundMessageEvent.objects.filter(connection__brand_id__in=brand_ids).delete()
        Message.objects.filter(brand_id__in=brand_ids).delete()
        Brand.objects.filter(pk__in=brand_ids).delete()


class _NaiveExporter(threading.Thread):
    """What most integrations do: one ``POST /api/events`` per event, in
    order, waiting ``Retry-After`` when told to."""

    def __init__(self, credentials, api_url, events):
        super().__init__(daemon=True)
        self.client = KlaviyoClient(credentials, base_url=api_url)
        self.events = events
        self._stopping = threading.Event()

    def run(self):
        for event in self.events:
            while not self._stopping.is_set():
                try:
                    self.client.create_event(create_event_body(event))
                    break
                except KlaviyoRateLimited as error:
                    self._stopping.wait(error.retry_after or 1.0)
                except KlaviyoError:
                    self._stopping.wait(1.0)
            if self._stopping.is_set():
                return

    def stop(self):
        self._stopping.set()
        self.join()


_EVENT_FIELDS = (
    "metric_name",
    "channel",
    "profile_identifier",
    "occurred_at",
    "unique_id",
    "properties",
)


def _kick(connection):
    """Ask for an export now, whatever request an earlier phase left."""
    KlaviyoConnection.objects.filter(pk=connection.pk).update(export_requested_at=None)
    export_request(connection.pk)


def _event(row):
    return EventData(**row)


def _answers(control):
    def probe():
        try:
            control.stats()
        except (OSError, SandboxControlError):
            # requests' connection errors are OSErrors: not listening yet.
            return False
        return True

    return probe


def _scaled(limit, scale):
    return max(1, math.floor(round(limit * scale, 6)))


def _full_windows(events):
    """Events received in each of Klaviyo's one-minute windows, leaving out
    the first and the last, which the run only partly covers."""
    counts = {}
    for event in events:
        window = int(event["received_at"] // WINDOW)
        counts[window] = counts.get(window, 0) + 1
    windows = sorted(counts)
    return [counts[window] for window in windows[1:-1]]


def _mean(values):
    """The mean, or None for no values (a run too short for a full window)."""
    return statistics.mean(values) if values else None


def _ratio(numerator, denominator, digits):
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, digits)


def _percentile(values, percent):
    if not values:
        return float("nan")
    index = min(len(values) - 1, math.ceil(percent / 100 * len(values)) - 1)
    return values[max(0, index)]
