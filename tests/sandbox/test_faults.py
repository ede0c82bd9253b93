import json
import time

import pytest
import requests

from integrations.sandbox.control import SandboxControlError
from tests.sandbox.helpers import (
    api_headers,
    event_body,
    get_accounts,
    post_event,
    refresh,
    token_request,
)


def statuses_of(sandbox, token, count):
    return [
        post_event(sandbox.url, token, event_body(unique_id=str(n))).status_code
        for n in range(count)
    ]


def test_queued_responses_are_answered_in_order_before_processing(sandbox, token):
    sandbox.set_faults(next_responses=[503, 503, 429])

    answers = [
        post_event(sandbox.url, token, event_body(unique_id="m-1")) for _ in range(4)
    ]

    assert [answer.status_code for answer in answers] == [503, 503, 429, 202]
    assert answers[2].headers["Retry-After"] == "1"
    assert "RateLimit-Remaining" not in answers[2].headers
    assert answers[0].json()["errors"][0]["status"] == 503
    stats = sandbox.stats()
    assert stats["events_accepted"] == 1
    assert stats["events_deduplicated"] == 0
    assert stats["faults_injected"] == 3
    assert stats["responses_by_status"] == {"202": 1, "429": 1, "503": 2}


def test_a_queued_429_may_carry_its_own_retry_after(sandbox, token):
    sandbox.set_faults(next_responses=[{"status": 429, "retry_after": 7}])

    answer = post_event(sandbox.url, token, event_body())

    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"


def test_queued_responses_spend_no_rate_limit_quota(sandbox, token):
    sandbox.freeze_clock()
    sandbox.set_faults(next_responses=[500, 502, 504])

    refused = [get_accounts(sandbox.url, token).status_code for _ in range(3)]
    answer = get_accounts(sandbox.url, token)

    assert refused == [500, 502, 504]
    assert answer.status_code == 200
    assert answer.headers["RateLimit-Remaining"] == "14"


def test_an_error_rate_of_one_fails_every_request(sandbox, token):
    sandbox.set_faults(error_rates={"503": 1.0})

    assert statuses_of(sandbox, token, 5) == [503] * 5
    assert sandbox.stats()["events_accepted"] == 0


def test_seeded_error_rates_repeat_exactly(sandbox, token):
    sandbox.configure(rate_limits_enabled=False)
    faults = {"error_rates": {"500": 0.2, "502": 0.1, "504": 0.2}, "seed": 42}
    sandbox.set_faults(**faults)
    first_run = statuses_of(sandbox, token, 40)
    sandbox.reset()
    token = sandbox.issue_grant("DEMO01", ["events:write"])["access_token"]
    sandbox.set_faults(**faults)

    second_run = statuses_of(sandbox, token, 40)

    assert second_run == first_run
    assert set(first_run) == {202, 500, 502, 504}
    assert sandbox.stats()["events_accepted"] == first_run.count(202)


def test_latency_delays_every_api_answer(sandbox, token):
    sandbox.set_faults(latency_ms=250)

    started = time.monotonic()
    answer = post_event(sandbox.url, token, event_body())
    elapsed = time.monotonic() - started

    assert answer.status_code == 202
    assert elapsed >= 0.25


def test_hang_after_accept_records_the_event_then_outlasts_the_client(sandbox, token):
    sandbox.set_faults(hang_after_accept={"count": 1, "seconds": 2})

    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(
            f"{sandbox.url}/api/events",
            data=json.dumps(event_body(unique_id="m-1")),
            headers=api_headers(token),
            timeout=(3, 0.3),
        )
    retried = post_event(sandbox.url, token, event_body(unique_id="m-1"))

    assert retried.status_code == 202
    stats = sandbox.stats()
    assert stats["events_accepted"] == 1
    assert stats["events_deduplicated"] == 1
    assert [event["unique_id"] for event in sandbox.events()] == ["m-1"]


def test_an_outage_answers_503_to_the_api_and_the_token_endpoint(sandbox, token):
    sandbox.freeze_clock()
    tokens = sandbox.issue_grant("DEMO01", ["accounts:read", "events:write"])
    sandbox.set_faults(outage_seconds=30)

    during_api = post_event(sandbox.url, token, event_body())
    during_token = refresh(sandbox.url, tokens["refresh_token"])
    sandbox.advance_clock(30)
    after_api = post_event(sandbox.url, token, event_body())
    after_token = refresh(sandbox.url, tokens["refresh_token"])

    assert during_api.status_code == 503
    assert during_token.status_code == 503
    assert during_token.json()["error"] == "temporarily_unavailable"
    assert after_api.status_code == 202
    assert after_token.status_code == 200
    assert sandbox.stats()["events_accepted"] == 1


def test_an_edge_403_is_an_html_page(sandbox, token):
    sandbox.set_faults(html_403=2)

    answers = [
        post_event(sandbox.url, token, event_body(unique_id=str(n))) for n in range(3)
    ]

    assert [answer.status_code for answer in answers] == [403, 403, 202]
    assert answers[0].headers["Content-Type"] == "text/html; charset=utf-8"
    assert answers[0].text.startswith("<!DOCTYPE html>")
    assert sandbox.stats()["events_accepted"] == 1


def test_revoking_grants_as_a_fault_ends_the_connection(sandbox, token):
    tokens = sandbox.issue_grant("DEMO01", ["events:write"])

    answer = sandbox.set_faults(revoke_grants="DEMO01")

    assert answer["grants_revoked"] == 2
    assert post_event(sandbox.url, token, event_body()).status_code == 401
    assert refresh(sandbox.url, tokens["refresh_token"]).json()["error"] == (
        "invalid_grant"
    )


def test_revoke_grants_through_the_control_api_spares_other_accounts(sandbox, token):
    other = sandbox.issue_grant("DEMO02", ["events:write"])["access_token"]

    revoked = sandbox.revoke_grants("DEMO01")

    assert revoked == 1
    assert post_event(sandbox.url, token, event_body()).status_code == 401
    assert post_event(sandbox.url, other, event_body()).status_code == 202


def test_expiring_access_tokens_forces_a_refresh(sandbox):
    tokens = sandbox.issue_grant("DEMO01", ["events:write"])

    sandbox.set_faults(expire_access_tokens=True)
    expired = post_event(sandbox.url, tokens["access_token"], event_body())
    renewed = refresh(sandbox.url, tokens["refresh_token"]).json()

    assert expired.status_code == 401
    assert expired.json()["errors"][0]["detail"] == "The access token expired."
    assert (
        post_event(sandbox.url, renewed["access_token"], event_body()).status_code
        == 202
    )


def test_faults_merge_and_clear(sandbox, token):
    sandbox.set_faults(latency_ms=5)
    sandbox.set_faults(html_403=1)

    merged = sandbox.faults()
    cleared = sandbox.clear_faults()

    assert (merged["latency_ms"], merged["html_403"]) == (5, 1)
    assert (cleared["latency_ms"], cleared["html_403"]) == (0, 0)
    assert post_event(sandbox.url, token, event_body()).status_code == 202


def test_reset_clears_faults(sandbox, token):
    sandbox.set_faults(error_rates={"500": 1.0}, next_responses=[502])

    sandbox.reset()
    token = sandbox.issue_grant("DEMO01", ["events:write"])["access_token"]

    assert post_event(sandbox.url, token, event_body()).status_code == 202


def test_faults_do_not_touch_the_token_endpoint_except_outages(sandbox):
    tokens = sandbox.issue_grant("DEMO01", ["events:write"])
    sandbox.set_faults(next_responses=[503], html_403=1, error_rates={"500": 1.0})

    answer = refresh(sandbox.url, tokens["refresh_token"])

    assert answer.status_code == 200


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rates": {"418": 0.5}},
        {"error_rates": {"500": 0.7, "503": 0.7}},
        {"next_responses": [201]},
        {"latency_ms": -1},
        {"hang_after_accept": {"count": 1}},
        {"unplugged": True},
        {"revoke_grants": "NOPE99"},
    ],
)
def test_a_fault_the_sandbox_cannot_honour_is_refused(sandbox, faults):
    with pytest.raises(SandboxControlError) as refused:
        sandbox.set_faults(**faults)

    assert refused.value.status_code == 400


def test_a_token_request_is_still_checked_during_faults(sandbox):
    sandbox.set_faults(latency_ms=1)

    answer = token_request(sandbox.url, {"grant_type": "password"})

    assert answer.status_code == 400
