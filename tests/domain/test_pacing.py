import itertools

import pytest
from django.utils import timezone

from integrations.klaviyo.choices import Endpoint
from integrations.klaviyo.client import RateLimit
from integrations.klaviyo.models import KlaviyoQuota
from integrations.klaviyo.pacing import (
    endpoint_limits,
    quota_observe,
    quota_pause,
    quota_reserve,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiny_limits(settings):
    # The events endpoint at 1/100: 3 requests a second, 35 a minute.
    settings.KLAVIYO_RATE_LIMIT_SCALE = 0.01
    return endpoint_limits(Endpoint.EVENTS)


def test_the_scaled_limits_never_fall_below_one(tiny_limits, settings):
    settings.KLAVIYO_RATE_LIMIT_SCALE = 0.001

    assert (tiny_limits.burst, tiny_limits.steady) == (3, 35)
    bulk = endpoint_limits(Endpoint.BULK)
    assert (bulk.burst, bulk.steady) == (1, 1)


def test_requests_are_spaced_to_stay_inside_the_burst_window(tiny_limits):
    waits = [quota_reserve("ACCT", Endpoint.EVENTS, max_wait=2.0) for _ in range(4)]

    assert waits[0] == pytest.approx(0, abs=0.05)
    # A little over a third of a second apart: 3 a second at most.
    for earlier, later in itertools.pairwise(waits):
        assert later - earlier == pytest.approx(1.02 / 3, abs=0.05)


def test_a_reservation_beyond_the_wait_allowed_reserves_nothing(tiny_limits):
    quota_reserve("ACCT", Endpoint.EVENTS, requests=3, max_wait=2.0)
    used = KlaviyoQuota.objects.get().window_used

    assert quota_reserve("ACCT", Endpoint.EVENTS, max_wait=0.1) is None
    assert KlaviyoQuota.objects.get().window_used == used


def test_a_full_steady_window_waits_for_the_next_one(tiny_limits):
    assert quota_reserve("ACCT", Endpoint.EVENTS, requests=35, max_wait=20) is not None

    assert quota_reserve("ACCT", Endpoint.EVENTS, max_wait=30) is None
    wait = quota_reserve("ACCT", Endpoint.EVENTS, max_wait=61)
    assert 55 < wait <= 61


def test_klaviyos_answer_aligns_the_window_with_its_own(tiny_limits):
    quota_reserve("ACCT", Endpoint.EVENTS, max_wait=1)
    sent_at = timezone.now()

    quota_observe(
        "ACCT",
        Endpoint.EVENTS,
        RateLimit(limit=35, remaining=0, reset_seconds=10),
        sent_at=sent_at,
    )

    assert quota_reserve("ACCT", Endpoint.EVENTS, max_wait=5) is None
    wait = quota_reserve("ACCT", Endpoint.EVENTS, max_wait=15)
    assert 9 < wait <= 11


def test_a_429_pauses_that_account_and_endpoint_only(tiny_limits):
    quota_pause("ACCT", Endpoint.EVENTS, 3)

    assert quota_reserve("ACCT", Endpoint.EVENTS, max_wait=1) is None
    assert 2.5 < quota_reserve("ACCT", Endpoint.EVENTS, max_wait=5) <= 3.1
    assert quota_reserve("OTHER", Endpoint.EVENTS, max_wait=1) == pytest.approx(
        0, abs=0.05
    )
    assert quota_reserve("ACCT", Endpoint.BULK, max_wait=1) == pytest.approx(
        0, abs=0.05
    )
    assert (
        KlaviyoQuota.objects.get(
            account_key="ACCT", endpoint=Endpoint.EVENTS
        ).rate_limited
        == 1
    )
