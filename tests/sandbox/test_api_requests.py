import json

import pytest
import requests

from tests.klaviyo_spec import requires_klaviyo_spec, response_body_errors
from tests.sandbox.helpers import (
    TIMEOUT,
    api_headers,
    error_summary,
    event_body,
    get_accounts,
    post_bulk,
    post_event,
)


def test_an_accepted_event_is_answered_202_with_no_body(sandbox, token):
    answer = post_event(sandbox.url, token, event_body(unique_id="m-1"))

    assert answer.status_code == 202
    assert answer.content == b""
    assert "Content-Type" not in answer.headers
    assert sandbox.stats()["events_accepted"] == 1


def test_paths_work_with_and_without_the_trailing_slash(sandbox, token):
    answer = requests.post(
        f"{sandbox.url}/api/events/",
        data=json.dumps(event_body()),
        headers=api_headers(token),
        timeout=TIMEOUT,
    )

    assert answer.status_code == 202


def test_every_error_is_a_json_api_error_object(sandbox, token):
    answer = post_event(sandbox.url, token, {"data": []})

    assert answer.status_code == 400
    assert answer.headers["Content-Type"] == "application/vnd.api+json"
    (error,) = answer.json()["errors"]
    assert sorted(error) == ["code", "detail", "id", "source", "status", "title"]
    assert error["status"] == 400
    assert error["code"] == "invalid"
    assert error["title"] == "Invalid input."
    assert error["source"] == {"pointer": "/data"}


def test_the_revision_header_is_required(sandbox, token):
    answer = post_event(sandbox.url, token, event_body(), revision=None)

    assert answer.status_code == 400
    assert error_summary(answer) == [("invalid", "revision")]
    assert sandbox.stats()["events_accepted"] == 0


def test_a_malformed_revision_is_refused(sandbox, token):
    answer = get_accounts(sandbox.url, token, revision="latest")

    assert answer.status_code == 400
    assert error_summary(answer) == [("invalid", "revision")]


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "text/plain", "application/vnd.api+json; charset=utf-8", None],
)
def test_a_post_needs_the_json_api_content_type(sandbox, token, content_type):
    answer = post_event(
        sandbox.url, token, event_body(), **{"Content-Type": content_type}
    )

    assert answer.status_code == 415
    assert error_summary(answer) == [("unsupported_media_type", "Content-Type")]
    assert sandbox.stats()["events_accepted"] == 0


def test_without_credentials_the_answer_is_401(sandbox):
    answer = requests.post(
        f"{sandbox.url}/api/events",
        data=json.dumps(event_body()),
        headers={"revision": "2026-07-15", "Content-Type": "application/vnd.api+json"},
        timeout=TIMEOUT,
    )

    assert answer.status_code == 401
    assert error_summary(answer) == [("not_authenticated", "Authorization")]


def test_an_unknown_access_token_is_401(sandbox):
    answer = post_event(sandbox.url, "never-issued", event_body())

    assert answer.status_code == 401
    assert error_summary(answer) == [("authentication_failed", "Authorization")]
    assert answer.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_a_revoked_grant_is_401(sandbox, token):
    sandbox.revoke_grants("DEMO01")

    answer = post_event(sandbox.url, token, event_body())

    assert answer.status_code == 401
    assert answer.json()["errors"][0]["detail"] == "The access token was revoked."
    assert sandbox.stats()["events_accepted"] == 0


def test_a_missing_scope_is_403(sandbox):
    token = sandbox.issue_grant("DEMO01", ["accounts:read"])["access_token"]

    answer = post_event(sandbox.url, token, event_body())
    accounts = get_accounts(sandbox.url, token)

    assert answer.status_code == 403
    assert error_summary(answer) == [("permission_denied", "Authorization")]
    assert answer.json()["errors"][0]["detail"] == (
        "The access token lacks the events:write scope."
    )
    assert accounts.status_code == 200
    assert sandbox.stats()["events_accepted"] == 0


def test_a_registered_private_api_key_has_full_access(sandbox):
    key = sandbox.register_api_key("DEMO03")

    event = post_event(sandbox.url, key, event_body(), api_key=True)
    accounts = get_accounts(sandbox.url, key, api_key=True)

    assert event.status_code == 202
    assert accounts.json()["data"][0]["id"] == "DEMO03"
    assert sandbox.stats("DEMO03")["events_accepted"] == 1


def test_an_unknown_private_api_key_is_401(sandbox):
    answer = post_event(sandbox.url, "pk_unknown", event_body(), api_key=True)

    assert answer.status_code == 401
    assert error_summary(answer) == [("authentication_failed", "Authorization")]


def test_an_unknown_api_path_is_a_json_api_404(sandbox, token):
    answer = requests.get(
        f"{sandbox.url}/api/metrics", headers=api_headers(token), timeout=TIMEOUT
    )

    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "not_found"


def test_a_wrong_method_is_a_json_api_405(sandbox, token):
    answer = requests.get(
        f"{sandbox.url}/api/events", headers=api_headers(token), timeout=TIMEOUT
    )

    assert answer.status_code == 405
    assert answer.json()["errors"][0]["code"] == "method_not_allowed"
    assert answer.headers["Allow"] == "POST"


def test_accounts_names_the_connected_account(sandbox):
    token = sandbox.issue_grant("DEMO02", ["accounts:read"])["access_token"]

    answer = get_accounts(sandbox.url, token)

    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/vnd.api+json"
    (account,) = answer.json()["data"]
    assert account["type"] == "account"
    assert account["id"] == "DEMO02"
    assert account["attributes"]["contact_information"]["organization_name"] == (
        "Demo Coffee Roasters"
    )
    assert answer.headers["RateLimit-Limit"] == "15"
    assert answer.headers["RateLimit-Remaining"] == "14"


@requires_klaviyo_spec
def test_the_accounts_answer_matches_the_spec(sandbox, token):
    answer = get_accounts(sandbox.url, token)

    assert response_body_errors("get_accounts", "200", answer.json()) == []


@requires_klaviyo_spec
def test_error_answers_match_the_spec(sandbox, token):
    answer = post_event(sandbox.url, token, {"data": {}})

    assert answer.status_code == 400
    assert response_body_errors("create_event", "4XX", answer.json()) == []


def test_bulk_and_single_endpoints_are_counted_apart(sandbox, token):
    post_event(sandbox.url, token, event_body(unique_id="a"))
    post_bulk(sandbox.url, token, {"data": None})

    stats = sandbox.stats()

    assert stats["requests"] == 2
    assert stats["requests_by_endpoint"] == {
        "bulk_create_events": 1,
        "create_event": 1,
    }
    assert stats["responses_by_status"] == {"202": 1, "400": 1}
