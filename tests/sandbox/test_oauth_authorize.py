import pytest

from tests.sandbox.helpers import (
    REDIRECT_URI,
    authorize,
    authorize_params,
    consent,
    pkce_pair,
    redirect_query,
)


def test_consent_page_names_the_accounts_and_the_scopes_asked_for(sandbox):
    _verifier, challenge = pkce_pair()

    answer = authorize(sandbox.url, authorize_params(challenge))

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "text/html; charset=utf-8"
    page = answer.text
    assert '<option value="DEMO01" selected>Demo Outfitters (DEMO01)</option>' in page
    assert "Demo Coffee Roasters (DEMO02)" in page
    assert "Demo Pet Supplies (DEMO03)" in page
    for scope in ("accounts:read", "events:write", "profiles:write"):
        assert f"<li><code>{scope}</code></li>" in page
    assert 'name="decision" value="allow">Allow</button>' in page
    assert 'name="decision" value="deny">Deny</button>' in page


def test_allow_redirects_back_with_a_code_and_the_state(sandbox):
    _verifier, challenge = pkce_pair()
    params = authorize_params(challenge, state="opaque value/with+signs")

    answer = consent(sandbox.url, params, account_id="DEMO02")

    assert answer.status_code == 302
    assert answer.headers["Location"].startswith(REDIRECT_URI + "?code=")
    query = redirect_query(answer)
    assert sorted(query) == ["code", "state"]
    assert query["state"] == "opaque value/with+signs"
    assert sandbox.stats("DEMO02")["authorization_codes_issued"] == 1


def test_deny_redirects_back_with_access_denied_and_the_state(sandbox):
    _verifier, challenge = pkce_pair()

    answer = consent(sandbox.url, authorize_params(challenge), decision="deny")

    assert answer.status_code == 302
    query = redirect_query(answer)
    assert query["error"] == "access_denied"
    assert query["state"] == "state-123"
    assert "code" not in query
    assert sandbox.stats()["authorization_codes_issued"] == 0


def test_a_redirect_uri_with_a_query_keeps_it(sandbox):
    registered = "http://127.0.0.1:8000/callback?brand=7"
    sandbox.configure(redirect_uris=[registered])
    _verifier, challenge = pkce_pair()

    answer = consent(sandbox.url, authorize_params(challenge, redirect_uri=registered))

    assert answer.headers["Location"].startswith(
        "http://127.0.0.1:8000/callback?brand=7&code="
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"client_id": "someone-else"}, "Unknown client_id &#x27;someone-else&#x27;"),
        ({"client_id": None}, "The client_id parameter is missing."),
        (
            {
                "redirect_uri": "http://127.0.0.1:8000/integrations/klaviyo/oauth/callback/"
            },
            "is not registered for this app",
        ),
        ({"redirect_uri": "https://evil.example/callback"}, "is not registered"),
        ({"redirect_uri": None}, "The redirect_uri parameter is missing."),
        ({"response_type": "token"}, "response_type must be &#x27;code&#x27;"),
        ({"code_challenge_method": "plain"}, "code_challenge_method must be"),
        ({"code_challenge_method": None}, "code_challenge_method must be"),
        ({"code_challenge": None}, "code_challenge must be the 43-character"),
        ({"code_challenge": "too-short"}, "code_challenge must be the 43-character"),
        ({"scope": "events:write lists:delete"}, "Unknown scope: lists:delete."),
        ({"scope": None}, "The scope parameter is missing."),
    ],
)
def test_a_bad_authorization_request_gets_an_error_page_and_no_redirect(
    sandbox, change, reason
):
    _verifier, challenge = pkce_pair()
    params = authorize_params(challenge, **change)

    shown = authorize(sandbox.url, params)
    submitted = consent(sandbox.url, params)

    assert shown.status_code == 400
    assert "Location" not in shown.headers
    assert reason in shown.text
    assert submitted.status_code == 400
    assert "Location" not in submitted.headers
    assert sandbox.stats()["authorization_codes_issued"] == 0


def test_consent_for_an_unknown_account_is_refused(sandbox):
    _verifier, challenge = pkce_pair()

    answer = consent(sandbox.url, authorize_params(challenge), account_id="NOPE99")

    assert answer.status_code == 400
    assert "Location" not in answer.headers
    assert "Unknown account &#x27;NOPE99&#x27;." in answer.text


def test_the_consent_page_escapes_what_the_request_carries(sandbox):
    _verifier, challenge = pkce_pair()

    answer = authorize(
        sandbox.url, authorize_params(challenge, state='"><script>alert(1)</script>')
    )

    assert answer.status_code == 200
    assert "<script>alert(1)</script>" not in answer.text
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
