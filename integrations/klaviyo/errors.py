"""Errors from Klaviyo, classified once.

Every failed call raises a KlaviyoError subclass chosen from the status code
and body by ``error_for_response``; callers act on the class, never on the
code: retry later, fail the event, refresh the token, or ask the brand to
reconnect.
"""

import json

# Enough of a response body to diagnose, never a whole payload.
MAX_BODY_CHARS = 500


class KlaviyoError(Exception):
    """A call to Klaviyo failed. Carries the status code (None when no
    response came), the truncated body, and the JSON:API errors if any."""

    retryable = False

    def __init__(
        self, message, *, status_code=None, body="", errors=(), retry_after=None
    ):
        super().__init__(message)
        self.status_code = status_code
        self.body = body[:MAX_BODY_CHARS]
        self.errors = list(errors)
        self.retry_after = retry_after

    def __str__(self):
        text = super().__str__()
        if self.status_code is None:
            return text
        return f"{text} (HTTP {self.status_code})"


class KlaviyoRetryableError(KlaviyoError):
    """Worth trying again later: 5xx, timeouts, connection resets."""

    retryable = True


class KlaviyoRateLimited(KlaviyoRetryableError):
    """429: wait ``retry_after`` seconds before the next call to the account."""


class KlaviyoUnauthorized(KlaviyoError):
    """401: the access token expired or was revoked; refresh once, retry once."""


class KlaviyoReconnectRequired(KlaviyoError):
    """The brand must reconnect: a missing scope, a revoked or expired grant."""


class KlaviyoRejected(KlaviyoError):
    """The request itself is wrong (400, 404, 405, 409, 410, 415, 413):
    sending it again changes nothing."""


def _parse_errors(body):
    try:
        document = json.loads(body)
    except ValueError:
        return []
    if isinstance(document, dict) and isinstance(document.get("errors"), list):
        return document["errors"]
    return []


def _summary(errors, body):
    for error in errors:
        if isinstance(error, dict) and (error.get("detail") or error.get("title")):
            return str(error.get("detail") or error.get("title"))
    return body.strip()[:200] or "no response body"


def retry_after_seconds(value):
    """``Retry-After`` as seconds, or None when absent or unreadable."""
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def error_for_response(status_code, body, headers):
    """The KlaviyoError for a non-2xx API response."""
    errors = _parse_errors(body)
    summary = _summary(errors, body)
    details = {"status_code": status_code, "body": body, "errors": errors}
    if status_code == 429:
        return KlaviyoRateLimited(
            "Klaviyo rate limit reached",
            retry_after=retry_after_seconds(headers.get("Retry-After")),
            **details,
        )
    if status_code in (500, 502, 503, 504, 524) or status_code >= 500:
        return KlaviyoRetryableError(
            f"Klaviyo server error: {summary}",
            retry_after=retry_after_seconds(headers.get("Retry-After")),
            **details,
        )
    if status_code == 401:
        return KlaviyoUnauthorized(
            f"Klaviyo refused the credentials: {summary}", **details
        )
    if status_code == 403:
        # An edge proxy answers 403 with an HTML page; Klaviyo itself with a
        # JSON:API error naming the missing scope. Both need the brand.
        return KlaviyoReconnectRequired(
            f"Klaviyo refused access; reconnect the account: {summary}", **details
        )
    if status_code == 410:
        return KlaviyoRejected(
            f"Klaviyo retired the API revision in use (KLAVIYO_REVISION): {summary}",
            **details,
        )
    return KlaviyoRejected(f"Klaviyo rejected the request: {summary}", **details)
