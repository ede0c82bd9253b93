"""Fixed 1 s and 60 s windows, per account and endpoint, on a frozen clock.

``frozen_clock`` stops the clock half a second past a minute boundary, so a
burst window ends in 0.5 s (Retry-After 1) and the steady one in 59.5 s
(Retry-After 60).
"""

from tests.sandbox.helpers import (
    bulk_of,
    event_body,
    get_accounts,
    post_bulk,
    post_event,
)

RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")


def test_a_successful_answer_describes_the_steady_window(sandbox, token, frozen_clock):
    answer = post_event(sandbox.url, token, event_body())

    assert answer.status_code == 202
    assert answer.headers["RateLimit-Limit"] == "3500"
    assert answer.headers["RateLimit-Remaining"] == "3499"
    assert answer.headers["RateLimit-Reset"] == "60"
    assert "Retry-After" not in answer.headers


def test_the_burst_window_refuses_the_second_accounts_call(
    sandbox, token, frozen_clock
):
    first = get_accounts(sandbox.url, token)

    second = get_accounts(sandbox.url, token)

    assert first.status_code == 200
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "1"
    for header in RATE_LIMIT_HEADERS:
        assert header not in second.headers
    assert second.json()["errors"][0]["code"] == "throttled"
    assert sandbox.stats()["rate_limited"] == 1


def test_the_next_burst_window_lets_requests_in_again(sandbox, token, frozen_clock):
    get_accounts(sandbox.url, token)
    get_accounts(sandbox.url, token)

    sandbox.advance_clock(0.5)
    answer = get_accounts(sandbox.url, token)

    assert answer.status_code == 200
    assert answer.headers["RateLimit-Remaining"] == "13"


def test_the_steady_window_refuses_the_sixteenth_accounts_call(
    sandbox, token, frozen_clock
):
    statuses = []
    for _ in range(15):
        statuses.append(get_accounts(sandbox.url, token).status_code)
        sandbox.advance_clock(1)

    refused = get_accounts(sandbox.url, token)

    assert statuses == [200] * 15
    assert refused.status_code == 429
    # 15 s into a window that ends 59.5 s after the start: 44.5 s, rounded up.
    assert refused.headers["Retry-After"] == "45"
    sandbox.advance_clock(44.5)
    assert get_accounts(sandbox.url, token).status_code == 200


def test_bulk_burst_and_steady_windows_at_scale_one(sandbox, token, frozen_clock):
    body = bulk_of(1)
    burst = [post_bulk(sandbox.url, token, body).status_code for _ in range(11)]
    sandbox.advance_clock(1)
    for _ in range(14):
        for _ in range(10):
            post_bulk(sandbox.url, token, body)
        sandbox.advance_clock(1)

    refused = post_bulk(sandbox.url, token, body)

    assert burst == [202] * 10 + [429]
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "45"
    stats = sandbox.stats()
    assert stats["requests_by_endpoint"]["bulk_create_events"] == 152
    assert stats["rate_limited"] == 2


def test_scaling_shrinks_every_window(sandbox, token, frozen_clock):
    sandbox.configure(rate_limit_scale=0.01)

    burst = [post_event(sandbox.url, token, event_body()) for _ in range(4)]
    statuses = []
    for _ in range(11):
        sandbox.advance_clock(1)
        statuses += [post_event(sandbox.url, token, event_body()) for _ in range(3)]

    # 350 and 3,500 scaled by 0.01: 3 a second, 35 a minute.
    assert [answer.status_code for answer in burst] == [202, 202, 202, 429]
    assert burst[3].headers["Retry-After"] == "1"
    assert [answer.status_code for answer in statuses] == [202] * 32 + [429]
    # Eleven seconds into a window that ends after 59.5 s.
    assert statuses[-1].headers["Retry-After"] == "49"


def test_a_scaled_limit_never_drops_below_one(sandbox, token, frozen_clock):
    sandbox.configure(rate_limit_scale=0.001)

    first = get_accounts(sandbox.url, token)
    second = get_accounts(sandbox.url, token)

    assert first.status_code == 200
    assert first.headers["RateLimit-Limit"] == "1"
    assert second.status_code == 429
    assert second.headers["Retry-After"] == "60"


def test_refused_requests_consume_no_quota(sandbox, token, frozen_clock):
    get_accounts(sandbox.url, token)
    for _ in range(5):
        get_accounts(sandbox.url, token)

    sandbox.advance_clock(1)
    answer = get_accounts(sandbox.url, token)

    assert answer.status_code == 200
    assert answer.headers["RateLimit-Remaining"] == "13"
    assert sandbox.stats()["rate_limited"] == 5


def test_a_request_refused_before_the_limiter_consumes_no_quota(
    sandbox, token, frozen_clock
):
    post_event(sandbox.url, "unknown-token", event_body())
    post_event(sandbox.url, token, event_body(), revision=None)

    answer = post_event(sandbox.url, token, event_body())

    assert answer.headers["RateLimit-Remaining"] == "3499"


def test_each_account_has_its_own_quota(sandbox, token, frozen_clock):
    other = sandbox.issue_grant("DEMO02", ["accounts:read"])["access_token"]
    get_accounts(sandbox.url, token)

    answer = get_accounts(sandbox.url, other)

    assert answer.status_code == 200
    assert sandbox.stats("DEMO01")["rate_limited"] == 0
    assert sandbox.stats("DEMO02")["rate_limited"] == 0


def test_each_endpoint_has_its_own_quota(sandbox, token, frozen_clock):
    get_accounts(sandbox.url, token)

    answer = post_event(sandbox.url, token, event_body())

    assert answer.status_code == 202


def test_an_oauth_app_and_a_private_key_have_separate_quotas(
    sandbox, token, frozen_clock
):
    key = sandbox.register_api_key("DEMO01")
    get_accounts(sandbox.url, token)

    with_key = get_accounts(sandbox.url, key, api_key=True)

    assert with_key.status_code == 200


def test_rate_limits_can_be_switched_off(sandbox, token, frozen_clock):
    sandbox.configure(rate_limits_enabled=False)

    statuses = [get_accounts(sandbox.url, token).status_code for _ in range(20)]

    assert statuses == [200] * 20
    assert sandbox.stats()["rate_limited"] == 0


def test_429_comes_back_until_the_window_resets(sandbox, token, frozen_clock):
    get_accounts(sandbox.url, token)
    get_accounts(sandbox.url, token)

    sandbox.advance_clock(0.4)
    still_refused = get_accounts(sandbox.url, token)

    assert still_refused.status_code == 429
    assert still_refused.headers["Retry-After"] == "1"
