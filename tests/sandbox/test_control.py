import pytest
import requests

from integrations.sandbox.control import SandboxControlError
from tests.sandbox.helpers import (
    TIMEOUT,
    authorize,
    authorize_params,
    event_body,
    get_accounts,
    pkce_pair,
    post_event,
)


def test_reset_forgets_events_profiles_grants_and_settings(sandbox, token):
    post_event(sandbox.url, token, event_body(unique_id="m-1"))
    sandbox.configure(access_token_ttl=5, rate_limit_scale=0.5)
    key = sandbox.register_api_key("DEMO02")

    sandbox.reset()

    stats = sandbox.stats()
    assert stats["events_accepted"] == 0
    assert stats["requests"] == 0
    assert stats["profiles"] == 0
    assert stats["grants_active"] == 0
    assert sandbox.events() == []
    assert sandbox.config()["access_token_ttl"] == 3600
    assert sandbox.config()["rate_limit_scale"] == 1.0
    assert post_event(sandbox.url, token, event_body()).status_code == 401
    assert post_event(sandbox.url, key, event_body(), api_key=True).status_code == 401


def test_reset_lets_a_previously_sent_event_in_again(sandbox, token):
    post_event(sandbox.url, token, event_body(unique_id="m-1"))
    sandbox.reset()
    token = sandbox.issue_grant("DEMO01", ["events:write"])["access_token"]

    post_event(sandbox.url, token, event_body(unique_id="m-1"))

    assert sandbox.stats()["events_accepted"] == 1


def test_stats_carry_every_documented_counter(sandbox):
    stats = sandbox.stats()

    assert {
        "requests",
        "events_accepted",
        "events_deduplicated",
        "events_rejected",
        "rate_limited",
        "profiles_created",
        "token_requests",
        "token_refreshes",
        "authorization_codes_issued",
        "revocations",
        "requests_by_endpoint",
        "responses_by_status",
    } <= set(stats)


def test_configuration_changes_apply_at_once(sandbox):
    _verifier, challenge = pkce_pair()
    registered = "https://brand.example/klaviyo/callback"

    settings = sandbox.configure(redirect_uris=[registered])

    assert settings["redirect_uris"] == [registered]
    assert (
        authorize(
            sandbox.url, authorize_params(challenge, redirect_uri=registered)
        ).status_code
        == 200
    )
    assert authorize(sandbox.url, authorize_params(challenge)).status_code == 400


@pytest.mark.parametrize(
    "changes",
    [
        {"rate_limit_scale": 0},
        {"rate_limits_enabled": "yes"},
        {"access_token_ttl": 0},
        {"redirect_uris": "https://one.example"},
        {"colour": "blue"},
    ],
)
def test_a_bad_configuration_is_refused_and_changes_nothing(sandbox, changes):
    with pytest.raises(SandboxControlError) as refused:
        sandbox.configure(**changes)

    assert refused.value.status_code == 400
    assert sandbox.config()["rate_limit_scale"] == 1.0


def test_issued_grants_carry_what_a_token_answer_carries(sandbox):
    grant = sandbox.issue_grant("DEMO03", ["accounts:read"])

    assert sorted(grant) == [
        "access_token",
        "account_id",
        "expires_in",
        "refresh_token",
        "scope",
        "token_type",
    ]
    assert grant["account_id"] == "DEMO03"
    assert grant["scope"] == "accounts:read"
    accounts = get_accounts(sandbox.url, grant["access_token"])
    assert accounts.json()["data"][0]["id"] == "DEMO03"


def test_grants_for_unknown_accounts_or_scopes_are_refused(sandbox):
    with pytest.raises(SandboxControlError):
        sandbox.issue_grant("NOPE99", ["events:write"])
    with pytest.raises(SandboxControlError):
        sandbox.issue_grant("DEMO01", ["events:delete"])


def test_the_demo_accounts_are_listed(sandbox):
    accounts = sandbox.accounts()

    assert accounts == [
        {"id": "DEMO01", "organization_name": "Demo Outfitters"},
        {"id": "DEMO02", "organization_name": "Demo Coffee Roasters"},
        {"id": "DEMO03", "organization_name": "Demo Pet Supplies"},
    ]


def test_the_events_page_lists_recent_events_escaped_and_refreshes(sandbox, token):
    post_event(
        sandbox.url,
        token,
        event_body(
            name="Message <b>Delivered</b>",
            properties={"note": "<script>x</script>"},
        ),
    )

    page = requests.get(f"{sandbox.url}/sandbox/", timeout=TIMEOUT)

    assert page.status_code == 200
    assert '<meta http-equiv="refresh" content="2">' in page.text
    assert "Message &lt;b&gt;Delivered&lt;/b&gt;" in page.text
    assert "<script>x</script>" not in page.text
    assert "ada@example.com" in page.text
    assert "Demo Outfitters" in page.text
    assert "events accepted: 1" in page.text


def test_event_listing_rejects_bad_paging(sandbox):
    answer = requests.get(
        f"{sandbox.url}/sandbox/events", params={"limit": 0}, timeout=TIMEOUT
    )

    assert answer.status_code == 400


def test_wait_for_events_returns_once_enough_arrived(sandbox, token):
    post_event(sandbox.url, token, event_body())

    stats = sandbox.wait_for_events(1, timeout=1)

    assert stats["events_accepted"] == 1
    with pytest.raises(TimeoutError):
        sandbox.wait_for_events(2, timeout=0.1)


def test_the_clock_freezes_advances_and_resumes(sandbox):
    frozen = sandbox.freeze_clock(2_000_000_000)

    advanced = sandbox.advance_clock(90)
    resumed = sandbox.unfreeze_clock()

    assert frozen == 2_000_000_000
    assert advanced == 2_000_000_090
    assert resumed < 2_000_000_000
