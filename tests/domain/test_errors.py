import json

import pytest

from integrations.klaviyo.client import RateLimit
from integrations.klaviyo.errors import (
    MAX_BODY_CHARS,
    KlaviyoRateLimited,
    KlaviyoReconnectRequired,
    KlaviyoRejected,
    KlaviyoRetryableError,
    KlaviyoUnauthorized,
    error_for_response,
)

JSON_API_ERROR = json.dumps(
    {
        "errors": [
            {
                "id": "e1",
                "status": 400,
                "code": "invalid",
                "title": "Invalid input.",
                "detail": "'phone_number' must be E.164.",
                "source": {"pointer": "/data/attributes/profile"},
            }
        ]
    }
)


@pytest.mark.parametrize(
    ("status", "kind", "retryable"),
    [
        (400, KlaviyoRejected, False),
        (401, KlaviyoUnauthorized, False),
        (403, KlaviyoReconnectRequired, False),
        (404, KlaviyoRejected, False),
        (405, KlaviyoRejected, False),
        (409, KlaviyoRejected, False),
        (410, KlaviyoRejected, False),
        (415, KlaviyoRejected, False),
        (429, KlaviyoRateLimited, True),
        (500, KlaviyoRetryableError, True),
        (502, KlaviyoRetryableError, True),
        (503, KlaviyoRetryableError, True),
        (504, KlaviyoRetryableError, True),
        (524, KlaviyoRetryableError, True),
    ],
)
def test_each_status_is_classified_once(status, kind, retryable):
    error = error_for_response(status, JSON_API_ERROR, {})

    assert type(error) is kind
    assert error.retryable is retryable
    assert error.status_code == status
    assert str(error).endswith(f"(HTTP {status})")


def test_the_detail_of_klaviyos_error_is_kept_in_the_message():
    error = error_for_response(400, JSON_API_ERROR, {})

    assert (
        str(error)
        == "Klaviyo rejected the request: 'phone_number' must be E.164. (HTTP 400)"
    )
    assert error.errors[0]["source"] == {"pointer": "/data/attributes/profile"}


def test_a_429_carries_retry_after_in_seconds():
    error = error_for_response(429, "", {"Retry-After": "7"})

    assert error.retry_after == 7.0


def test_an_unreadable_retry_after_is_none_not_zero():
    assert error_for_response(429, "", {"Retry-After": "soon"}).retry_after is None
    assert error_for_response(429, "", {}).retry_after is None


def test_an_edge_proxys_html_403_asks_the_brand_to_reconnect_and_keeps_a_short_body():
    page = "<html><body>Access denied" + " " * 2000 + "</body></html>"

    error = error_for_response(403, page, {"Content-Type": "text/html"})

    assert isinstance(error, KlaviyoReconnectRequired)
    assert error.errors == []
    assert len(error.body) == MAX_BODY_CHARS
    assert str(error).startswith(
        "Klaviyo refused access; reconnect the account: <html>"
    )


def test_the_410_of_a_retired_revision_names_the_setting():
    error = error_for_response(410, "", {})

    assert "KLAVIYO_REVISION" in str(error)
    assert not error.retryable


def test_rate_limit_headers_are_read_into_numbers():
    limit = RateLimit.from_headers(
        {"RateLimit-Limit": "150", "RateLimit-Remaining": "12", "RateLimit-Reset": "31"}
    )

    assert limit == RateLimit(limit=150, remaining=12, reset_seconds=31.0)


def test_missing_or_malformed_rate_limit_headers_are_none():
    assert RateLimit.from_headers({"RateLimit-Limit": "many"}) == RateLimit()
