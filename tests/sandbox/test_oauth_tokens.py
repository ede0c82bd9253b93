import requests

from tests.sandbox.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    REDIRECT_URI,
    TIMEOUT,
    authorization_code,
    exchange_code,
    get_accounts,
    pkce_pair,
    refresh,
    revoke,
    token_request,
)


def oauth_error(response):
    return response.status_code, response.json()["error"]


def test_a_code_and_its_verifier_buy_tokens_for_the_chosen_account(sandbox):
    code, verifier, _params = authorization_code(sandbox.url, account_id="DEMO02")

    answer = exchange_code(sandbox.url, code, verifier)

    assert answer.status_code == 200
    assert answer.headers["Cache-Control"] == "no-store"
    tokens = answer.json()
    assert sorted(tokens) == [
        "access_token",
        "expires_in",
        "refresh_token",
        "scope",
        "token_type",
    ]
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    assert tokens["scope"] == "accounts:read events:write profiles:write"
    accounts = get_accounts(sandbox.url, tokens["access_token"])
    assert accounts.json()["data"][0]["id"] == "DEMO02"


def test_a_wrong_code_verifier_fails_pkce_and_spends_the_code(sandbox):
    code, verifier, _params = authorization_code(sandbox.url)
    other_verifier, _challenge = pkce_pair()

    wrong = exchange_code(sandbox.url, code, other_verifier)
    right_after = exchange_code(sandbox.url, code, verifier)

    assert oauth_error(wrong) == (400, "invalid_grant")
    assert wrong.json()["error_description"] == (
        "code_verifier does not match the code_challenge."
    )
    assert oauth_error(right_after) == (400, "invalid_grant")
    assert sandbox.stats()["grants_active"] == 0


def test_a_malformed_code_verifier_is_refused(sandbox):
    code, _verifier, _params = authorization_code(sandbox.url)

    answer = exchange_code(sandbox.url, code, "short")

    assert oauth_error(answer) == (400, "invalid_grant")


def test_a_code_works_once_and_its_reuse_revokes_the_tokens_it_bought(sandbox):
    code, verifier, _params = authorization_code(sandbox.url)
    first = exchange_code(sandbox.url, code, verifier).json()

    second = exchange_code(sandbox.url, code, verifier)

    assert oauth_error(second) == (400, "invalid_grant")
    assert second.json()["error_description"] == (
        "The authorization code was already used."
    )
    assert get_accounts(sandbox.url, first["access_token"]).status_code == 401
    assert oauth_error(refresh(sandbox.url, first["refresh_token"])) == (
        400,
        "invalid_grant",
    )


def test_a_code_expires_after_the_code_lifetime(sandbox):
    sandbox.freeze_clock()
    code, verifier, _params = authorization_code(sandbox.url)
    sandbox.advance_clock(60)

    answer = exchange_code(sandbox.url, code, verifier)

    assert oauth_error(answer) == (400, "invalid_grant")
    assert answer.json()["error_description"] == "The authorization code expired."


def test_a_code_is_good_until_just_before_its_lifetime_ends(sandbox):
    sandbox.configure(authorization_code_ttl=5)
    sandbox.freeze_clock()
    code, verifier, _params = authorization_code(sandbox.url)
    sandbox.advance_clock(4.9)

    answer = exchange_code(sandbox.url, code, verifier)

    assert answer.status_code == 200


def test_the_redirect_uri_must_match_the_authorization_request(sandbox):
    other = "http://localhost:8000/integrations/klaviyo/oauth/callback"
    code, verifier, _params = authorization_code(sandbox.url)

    answer = exchange_code(sandbox.url, code, verifier, redirect_uri=other)

    assert oauth_error(answer) == (400, "invalid_grant")


def test_missing_parameters_are_invalid_requests(sandbox):
    code, verifier, _params = authorization_code(sandbox.url)

    without_verifier = token_request(
        sandbox.url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
        },
    )
    without_grant_type = token_request(sandbox.url, {"code": code})
    without_refresh_token = token_request(sandbox.url, {"grant_type": "refresh_token"})

    assert oauth_error(without_verifier) == (400, "invalid_request")
    assert oauth_error(without_grant_type) == (400, "invalid_request")
    assert oauth_error(without_refresh_token) == (400, "invalid_request")
    assert exchange_code(sandbox.url, code, verifier).status_code == 200


def test_a_parameter_sent_twice_is_an_invalid_request(sandbox):
    answer = requests.post(
        f"{sandbox.url}/oauth/token",
        data=[
            ("grant_type", "refresh_token"),
            ("refresh_token", "a"),
            ("refresh_token", "b"),
        ],
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=TIMEOUT,
    )

    assert oauth_error(answer) == (400, "invalid_request")


def test_a_json_body_is_an_invalid_request(sandbox):
    answer = requests.post(
        f"{sandbox.url}/oauth/token",
        json={"grant_type": "refresh_token", "refresh_token": "a"},
        auth=(CLIENT_ID, CLIENT_SECRET),
        timeout=TIMEOUT,
    )

    assert oauth_error(answer) == (400, "invalid_request")


def test_an_unknown_grant_type_is_unsupported(sandbox):
    answer = token_request(sandbox.url, {"grant_type": "client_credentials"})

    assert oauth_error(answer) == (400, "unsupported_grant_type")


def test_client_authentication_is_http_basic_with_the_right_secret(sandbox):
    code, verifier, _params = authorization_code(sandbox.url)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT_URI,
    }

    wrong_secret = token_request(sandbox.url, form, auth=(CLIENT_ID, "guess"))
    unknown_client = token_request(sandbox.url, form, auth=("other", CLIENT_SECRET))
    in_the_body = token_request(
        sandbox.url,
        {**form, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        auth=None,
    )

    for answer in (wrong_secret, unknown_client, in_the_body):
        assert oauth_error(answer) == (401, "invalid_client")
        assert answer.headers["WWW-Authenticate"] == 'Basic realm="Klaviyo sandbox"'
    # The refused attempts did not spend the code.
    assert exchange_code(sandbox.url, code, verifier).status_code == 200


def test_a_refresh_rotates_the_refresh_token(sandbox):
    code, verifier, _params = authorization_code(sandbox.url)
    first = exchange_code(sandbox.url, code, verifier).json()

    answer = refresh(sandbox.url, first["refresh_token"])

    assert answer.status_code == 200
    second = answer.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == first["scope"]
    assert get_accounts(sandbox.url, second["access_token"]).status_code == 200
    assert refresh(sandbox.url, second["refresh_token"]).status_code == 200
    assert sandbox.stats("DEMO01")["token_refreshes"] == 2


def test_replaying_a_used_refresh_token_revokes_the_whole_grant(sandbox):
    code, verifier, _params = authorization_code(sandbox.url)
    first = exchange_code(sandbox.url, code, verifier).json()
    rotated = refresh(sandbox.url, first["refresh_token"]).json()

    replay = refresh(sandbox.url, first["refresh_token"])

    assert oauth_error(replay) == (400, "invalid_grant")
    assert replay.json()["error_description"] == (
        "The refresh token was already used; the grant is revoked."
    )
    assert get_accounts(sandbox.url, rotated["access_token"]).status_code == 401
    assert get_accounts(sandbox.url, first["access_token"]).status_code == 401
    assert oauth_error(refresh(sandbox.url, rotated["refresh_token"])) == (
        400,
        "invalid_grant",
    )
    stats = sandbox.stats("DEMO01")
    assert stats["revocations"] == 1
    assert stats["grants_active"] == 0


def test_the_access_token_lifetime_is_configurable_and_enforced(sandbox):
    sandbox.configure(access_token_ttl=5)
    sandbox.freeze_clock()
    code, verifier, _params = authorization_code(sandbox.url)
    tokens = exchange_code(sandbox.url, code, verifier).json()

    before_expiry = get_accounts(sandbox.url, tokens["access_token"])
    sandbox.advance_clock(5)
    after_expiry = get_accounts(sandbox.url, tokens["access_token"])

    assert tokens["expires_in"] == 5
    assert before_expiry.status_code == 200
    assert after_expiry.status_code == 401
    assert after_expiry.json()["errors"][0]["detail"] == "The access token expired."
    assert refresh(sandbox.url, tokens["refresh_token"]).status_code == 200


def test_a_refresh_token_unused_for_90_days_expires(sandbox):
    sandbox.freeze_clock()
    tokens = sandbox.issue_grant("DEMO01", ["events:write"])

    sandbox.advance_clock(90 * 24 * 3600 + 1)
    answer = refresh(sandbox.url, tokens["refresh_token"])

    assert oauth_error(answer) == (400, "invalid_grant")
    assert answer.json()["error_description"] == "The refresh token expired."


def test_revoking_a_refresh_token_ends_the_grant(sandbox):
    tokens = sandbox.issue_grant("DEMO01", ["accounts:read"])

    answer = revoke(sandbox.url, tokens["refresh_token"])

    assert answer.status_code == 200
    assert answer.content == b""
    assert get_accounts(sandbox.url, tokens["access_token"]).status_code == 401
    assert oauth_error(refresh(sandbox.url, tokens["refresh_token"])) == (
        400,
        "invalid_grant",
    )
    assert sandbox.stats("DEMO01")["revocations"] == 1


def test_revoking_an_unknown_token_is_answered_200_and_changes_nothing(sandbox):
    tokens = sandbox.issue_grant("DEMO01", ["accounts:read"])

    answer = revoke(sandbox.url, "never-issued")

    assert answer.status_code == 200
    assert get_accounts(sandbox.url, tokens["access_token"]).status_code == 200
    assert sandbox.stats()["revocations"] == 0


def test_revoking_needs_client_authentication(sandbox):
    tokens = sandbox.issue_grant("DEMO01", ["accounts:read"])

    answer = revoke(sandbox.url, tokens["refresh_token"], auth=(CLIENT_ID, "guess"))

    assert oauth_error(answer) == (401, "invalid_client")
    assert get_accounts(sandbox.url, tokens["access_token"]).status_code == 200


def test_token_requests_are_counted(sandbox):
    code, verifier, _params = authorization_code(sandbox.url)
    tokens = exchange_code(sandbox.url, code, verifier).json()
    refresh(sandbox.url, tokens["refresh_token"])
    token_request(sandbox.url, {"grant_type": "password"})

    stats = sandbox.stats()

    assert stats["token_requests"] == 3
    assert stats["token_refreshes"] == 1
    assert stats["requests_by_endpoint"]["oauth_token"] == 3
