"""Helpers that point the site at the Klaviyo sandbox and play the person on
its consent page, for the web, token and browser tests."""

import datetime
from urllib.parse import parse_qsl, urlsplit

import requests
from django.utils import timezone

from integrations.sandbox.config import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.factories import KlaviyoConnectionFactory

CALLBACK_PATH = "/integrations/klaviyo/oauth/callback"
SCOPES = ["accounts:read", "events:write", "profiles:write"]


def site_point_at_sandbox(settings, sandbox, *, site_url):
    """Send the site's Klaviyo calls to ``sandbox`` and register the site's
    callback there."""
    settings.KLAVIYO_API_URL = sandbox.url
    settings.KLAVIYO_AUTHORIZE_URL = f"{sandbox.url}/oauth/authorize"
    settings.KLAVIYO_CLIENT_ID = DEFAULT_CLIENT_ID
    settings.KLAVIYO_CLIENT_SECRET = DEFAULT_CLIENT_SECRET
    settings.KLAVIYO_SCOPES = SCOPES
    sandbox.configure(redirect_uris=[f"{site_url}{CALLBACK_PATH}"])


def consent_answer(authorize_url, *, account_id="DEMO01", decision="allow"):
    """Submit the sandbox's consent form for ``authorize_url`` as a person
    would; the callback URL the browser is sent back to."""
    parts = urlsplit(authorize_url)
    response = requests.post(
        f"{parts.scheme}://{parts.netloc}{parts.path}",
        data={
            **dict(parse_qsl(parts.query)),
            "account_id": account_id,
            "decision": decision,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302, response.text
    return response.headers["Location"]


def query_of(url):
    return dict(parse_qsl(urlsplit(url).query))


def connection_from_grant(sandbox, *, account_id="DEMO01", expires_in=None, **fields):
    """A connection holding real sandbox tokens of ``account_id``; they expire
    (as far as the site knows) in ``expires_in``, an hour by default."""
    grant = sandbox.issue_grant(account_id, SCOPES)
    expires_in = expires_in or datetime.timedelta(seconds=grant["expires_in"])
    return KlaviyoConnectionFactory(
        account_id=account_id,
        access_token=grant["access_token"],
        refresh_token=grant["refresh_token"],
        token_expires_at=timezone.now() + expires_in,
        **fields,
    )
