"""Pacing of requests to Klaviyo, per connected account and endpoint, shared
by every worker on every machine through the database.

Klaviyo counts requests in fixed windows: one second (burst) and one minute
(steady). Each worker reserves its requests here before sending: the
reservation spaces requests so that no burst window overflows, and counts
them against the steady window. Klaviyo's own answers correct the picture:
``RateLimit-Remaining`` and ``RateLimit-Reset`` align the steady window
with Klaviyo's, and a 429 pauses the account for ``Retry-After`` seconds.
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from integrations.klaviyo.choices import Endpoint
from integrations.klaviyo.models import KlaviyoQuota

logger = logging.getLogger(__name__)

STEADY_WINDOW = timedelta(seconds=60)
# Klaviyo's RateLimit-Reset is whole seconds: two windows whose ends are
# closer than this are the same window.
_SAME_WINDOW = timedelta(seconds=1.5)


@dataclass(frozen=True)
class Limits:
    burst: int  # requests per second
    steady: int  # requests per minute


# Klaviyo's documented limits for an OAuth app in one account.
KLAVIYO_LIMITS = {
    Endpoint.EVENTS: Limits(burst=350, steady=3500),
    Endpoint.BULK: Limits(burst=10, steady=150),
}


def endpoint_limits(endpoint):
    """The limits to keep for ``endpoint``, times KLAVIYO_RATE_LIMIT_SCALE
    (1 for Klaviyo; a scaled sandbox in tests and benchmarks)."""
    scale = settings.KLAVIYO_RATE_LIMIT_SCALE
    limits = KLAVIYO_LIMITS[endpoint]
    return Limits(
        burst=max(1, int(round(limits.burst * scale, 6))),
        steady=max(1, int(round(limits.steady * scale, 6))),
    )


def burst_spacing(endpoint):
    """The time between two requests to ``endpoint``: a little over
    1/burst, so that clock jitter never puts burst + 1 requests into one of
    Klaviyo's one-second windows."""
    return timedelta(seconds=1.02 / endpoint_limits(endpoint).burst)


def account_key(connection):
    """Klaviyo's quota belongs to the account, whichever brand connects it."""
    return connection.account_id or f"connection-{connection.pk}"


def _locked_quota(key, endpoint):
    quota, _ = KlaviyoQuota.objects.select_for_update().get_or_create(
        account_key=key,
        endpoint=endpoint,
        defaults={"steady_limit": endpoint_limits(endpoint).steady},
    )
    return quota


def quota_reserve(key, endpoint, *, requests=1, max_wait=1.0):
    """Reserve ``requests`` calls to ``endpoint``; return the seconds to wait
    before sending them, or None when there is no room within ``max_wait``
    seconds (then nothing is reserved)."""
    with transaction.atomic():
        quota = _locked_quota(key, endpoint)
        now = timezone.now()
        horizon = now + timedelta(seconds=max_wait)
        start = max(now, quota.paused_until or now)
        if quota.window_ends_at is None or quota.window_ends_at <= start:
            window_ends_at, used = start + STEADY_WINDOW, 0
        else:
            window_ends_at, used = quota.window_ends_at, quota.window_used
        if used + requests > quota.steady_limit:
            start, window_ends_at, used = (
                window_ends_at,
                window_ends_at + STEADY_WINDOW,
                0,
            )
        slot = max(start, quota.next_slot_at or start)
        if slot > horizon:
            return None
        spacing = burst_spacing(endpoint)
        quota.window_ends_at = window_ends_at
        quota.window_used = used + requests
        quota.next_slot_at = slot + spacing * requests
        quota.requests += requests
        quota.save(
            update_fields=["window_ends_at", "window_used", "next_slot_at", "requests"]
        )
        return (slot - now).total_seconds()


def quota_observe(key, endpoint, rate_limit, *, sent_at):
    """Align the steady window with what Klaviyo reported in a successful
    answer to a request sent at ``sent_at``."""
    if rate_limit.reset_seconds is None or rate_limit.remaining is None:
        return
    with transaction.atomic():
        quota = _locked_quota(key, endpoint)
        now = timezone.now()
        if rate_limit.limit:
            quota.steady_limit = rate_limit.limit
        klaviyo_ends_at = now + timedelta(seconds=rate_limit.reset_seconds)
        klaviyo_used = quota.steady_limit - rate_limit.remaining
        ours = quota.window_ends_at
        if ours is None or klaviyo_ends_at > ours + _SAME_WINDOW:
            adopt = True  # Klaviyo is already in a later window
        elif klaviyo_ends_at < ours - _SAME_WINDOW:
            # Klaviyo's window ends earlier than we assumed; unless the
            # answer is to a request from our previous window, ours is wrong.
            adopt = sent_at >= ours - STEADY_WINDOW
        else:
            adopt = False
            quota.window_used = max(quota.window_used, klaviyo_used)
        if adopt:
            quota.window_ends_at = klaviyo_ends_at
            quota.window_used = klaviyo_used
        quota.save(update_fields=["steady_limit", "window_ends_at", "window_used"])


def quota_pause(key, endpoint, seconds):
    """Klaviyo answered 429: no worker calls ``endpoint`` for this account
    for ``seconds``. Other accounts are not affected."""
    with transaction.atomic():
        quota = _locked_quota(key, endpoint)
        until = timezone.now() + timedelta(seconds=max(1.0, seconds))
        quota.paused_until = max(until, quota.paused_until or until)
        quota.rate_limited += 1
        quota.save(update_fields=["paused_until", "rate_limited"])
    logger.warning(
        "Klaviyo rate limit reached; account paused",
        extra={"account": key, "endpoint": endpoint, "seconds": seconds},
    )
