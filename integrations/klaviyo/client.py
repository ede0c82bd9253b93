"""The one place that speaks HTTP to Klaviyo's API.

It knows nothing of models: callers hand it credentials and bodies. Every
request has a (connect, read) timeout, the pinned ``revision`` header, the
JSON:API content type and a versioned User-Agent, and never follows a
redirect. Nothing it logs contains a token, a key or a body.
"""

import json
import logging
import threading
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter

from integrations import __version__
from integrations.klaviyo import conf
from integrations.klaviyo.errors import (
    KlaviyoRetryableError,
    error_for_response,
)

logger = logging.getLogger(__name__)

JSON_API = "application/vnd.api+json"

_local = threading.local()


def http_session():
    """This thread's session, with a connection pool and no automatic
    retries (the exporter decides when to retry)."""
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = user_agent()
        _local.session = session
    return session


def user_agent():
    return f"{conf.platform_name()}-klaviyo-export/{__version__}"


@dataclass(frozen=True)
class Credentials:
    """An OAuth access token or a legacy private API key; never both."""

    access_token: str = ""
    legacy_api_key: str = ""

    def __repr__(self):
        return "Credentials(<redacted>)"

    @property
    def authorization(self):
        if self.access_token:
            return f"Bearer {self.access_token}"
        return f"Klaviyo-API-Key {self.legacy_api_key}"


@dataclass(frozen=True)
class RateLimit:
    """What Klaviyo said of the account's quota on a successful answer."""

    limit: int | None = None
    remaining: int | None = None
    reset_seconds: float | None = None

    @classmethod
    def from_headers(cls, headers):
        def number(name, kind):
            try:
                return kind(headers[name])
            except (KeyError, TypeError, ValueError):
                return None

        return cls(
            limit=number("RateLimit-Limit", int),
            remaining=number("RateLimit-Remaining", int),
            reset_seconds=number("RateLimit-Reset", float),
        )


@dataclass(frozen=True)
class Answer:
    status_code: int
    data: dict | None
    rate_limit: RateLimit


class KlaviyoClient:
    """Klaviyo's API for one account, with one set of credentials."""

    def __init__(self, credentials, *, base_url=None, timeouts=None):
        self.credentials = credentials
        self.base_url = (base_url or conf.api_url()).rstrip("/")
        self.timeouts = timeouts or conf.timeouts()

    def create_event(self, body):
        """``POST /api/events``: one event; 202 with no body."""
        return self._request("POST", "/api/events", body)

    def bulk_create_events(self, body):
        """``POST /api/event-bulk-create-jobs``: up to 1,000 events; 202."""
        return self._request("POST", "/api/event-bulk-create-jobs", body)

    def get_accounts(self):
        """``GET /api/accounts``: the account the credentials belong to."""
        return self._request("GET", "/api/accounts")

    def _request(self, method, path, body=None):
        headers = {
            "Authorization": self.credentials.authorization,
            "Accept": JSON_API,
            "revision": conf.revision(),
        }
        data = None
        if body is not None:
            headers["Content-Type"] = JSON_API
            data = json.dumps(body, separators=(",", ":")).encode()
        started = time.monotonic()
        try:
            response = http_session().request(
                method,
                self.base_url + path,
                data=data,
                headers=headers,
                timeout=self.timeouts,
                allow_redirects=False,
            )
        except requests.Timeout as error:
            raise KlaviyoRetryableError(
                f"Klaviyo did not answer in time: {type(error).__name__}"
            ) from None
        except requests.ConnectionError as error:
            raise KlaviyoRetryableError(
                f"Klaviyo could not be reached: {type(error).__name__}"
            ) from None
        elapsed = time.monotonic() - started
        logger.debug(
            "Klaviyo answered",
            extra={
                "method": method,
                "path": path,
                "status_code": response.status_code,
                "elapsed": round(elapsed, 3),
            },
        )
        if not 200 <= response.status_code < 300:
            raise error_for_response(
                response.status_code, response.text, response.headers
            )
        return Answer(
            status_code=response.status_code,
            data=response.json() if response.content else None,
            rate_limit=RateLimit.from_headers(response.headers),
        )
