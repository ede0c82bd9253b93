"""Klaviyo's OAuth server: the authorization URL, the code exchange, the
refresh and the revoke, through requests-oauthlib.

It knows nothing of models: callers hand it codes and tokens and store what
comes back. Refreshing is an explicit call made by the token service, never
requests-oauthlib's automatic refresh, which neither reacts to a 401 nor
keeps two workers from presenting the same refresh token. Nothing here logs
a token, a code or a verifier.
"""

import base64
import hashlib
import ipaddress
import logging
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.utils import timezone
from oauthlib.oauth2 import OAuth2Error
from requests.auth import HTTPBasicAuth
from requests_oauthlib import OAuth2Session

from integrations.klaviyo import conf
from integrations.klaviyo.client import user_agent
from integrations.klaviyo.errors import (
    KlaviyoError,
    KlaviyoReconnectRequired,
    KlaviyoRejected,
    KlaviyoRetryableError,
    error_for_response,
)

logger = logging.getLogger(__name__)

# PKCE (RFC 7636) allows 43 to 128 characters; 64 random bytes give 86.
CODE_VERIFIER_BYTES = 64
STATE_BYTES = 32


class OAuthErrorAnswer:
    """RFC 6749's ``error`` code and ``error_description`` of the answer."""

    error = ""
    description = ""


class OAuthInvalidGrant(OAuthErrorAnswer, KlaviyoReconnectRequired):
    """``invalid_grant``: the code or refresh token is spent, expired or
    revoked (the app was uninstalled); only the brand can fix it."""


class OAuthRefused(OAuthErrorAnswer, KlaviyoRejected):
    """Any other refusal by the OAuth server (4xx): sending the same request
    again changes nothing."""


class _LibraryDebugFilter(logging.Filter):
    """requests-oauthlib logs request bodies, answers and whole tokens at
    debug level; none of that may reach a log."""

    def filter(self, record):
        return record.levelno > logging.DEBUG


def _library_debug_silence():
    library_logger = logging.getLogger("requests_oauthlib.oauth2_session")
    if not any(
        type(existing).__name__ == _LibraryDebugFilter.__name__
        for existing in library_logger.filters
    ):
        library_logger.addFilter(_LibraryDebugFilter())


_library_debug_silence()


@dataclass(frozen=True)
class AuthorizationRequest:
    """Where to send the browser, and what the callback needs to finish."""

    url: str
    state: str
    code_verifier: str
    redirect_uri: str

    def __repr__(self):
        return f"AuthorizationRequest(redirect_uri={self.redirect_uri!r})"


@dataclass(frozen=True)
class TokenSet:
    """What the token endpoint answered, with the expiry made absolute."""

    access_token: str
    refresh_token: str
    expires_at: datetime
    scopes: str

    def __repr__(self):
        return f"TokenSet(<redacted>, expires_at={self.expires_at.isoformat()})"


def code_challenge(code_verifier):
    """The PKCE S256 challenge of ``code_verifier``."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorization_request(redirect_uri):
    """A new authorization URL with PKCE S256 and a random ``state``; the
    caller keeps the state and the verifier for the callback."""
    code_verifier = secrets.token_urlsafe(CODE_VERIFIER_BYTES)
    url = conf.authorize_url()
    _plain_http_allow_on_loopback(url)
    with _session(redirect_uri=redirect_uri, scope=conf.scopes()) as session:
        authorization_url, state = session.authorization_url(
            url,
            state=secrets.token_urlsafe(STATE_BYTES),
            code_challenge=code_challenge(code_verifier),
            code_challenge_method="S256",
        )
    return AuthorizationRequest(
        url=authorization_url,
        state=state,
        code_verifier=code_verifier,
        redirect_uri=redirect_uri,
    )


def token_exchange(*, code, code_verifier, redirect_uri):
    """Trade an authorization code for tokens; raises a KlaviyoError."""
    url = conf.token_url()
    _plain_http_allow_on_loopback(url)
    started_at = timezone.now()
    with _session(redirect_uri=redirect_uri) as session, _errors_translated():
        token = session.fetch_token(
            url,
            code=code,
            code_verifier=code_verifier,
            auth=_client_authentication(),
            timeout=conf.timeouts(),
        )
    logger.info("Klaviyo exchanged an authorization code for tokens")
    return _token_set(token, started_at)


def token_refresh(refresh_token):
    """New tokens for ``refresh_token``, which Klaviyo may spend in the
    process; raises OAuthInvalidGrant when the grant is gone."""
    url = conf.token_url()
    _plain_http_allow_on_loopback(url)
    started_at = timezone.now()
    with _session() as session, _errors_translated():
        token = session.refresh_token(
            url,
            refresh_token=refresh_token,
            auth=_client_authentication(),
            timeout=conf.timeouts(),
        )
    return _token_set(token, started_at)


def token_revoke(refresh_token):
    """Revoke the grant of ``refresh_token`` at Klaviyo (RFC 7009)."""
    url = conf.revoke_url()
    _plain_http_allow_on_loopback(url)
    with _session() as session, _errors_translated():
        response = session.post(
            url,
            data={"token": refresh_token, "token_type_hint": "refresh_token"},
            auth=_client_authentication(),
            timeout=conf.timeouts(),
            withhold_token=True,
            allow_redirects=False,
        )
    if not 200 <= response.status_code < 300:
        raise _error_for_answer(response)
    logger.info("Klaviyo revoked a grant")


def _session(*, redirect_uri=None, scope=None):
    session = OAuth2Session(conf.client_id(), redirect_uri=redirect_uri, scope=scope)
    session.headers["User-Agent"] = user_agent()
    # The token endpoint never redirects; a redirect is refused, not followed.
    session.max_redirects = 0
    session.register_compliance_hook("access_token_response", _answer_checked)
    session.register_compliance_hook("refresh_token_response", _answer_checked)
    return session


def _client_authentication():
    return HTTPBasicAuth(conf.client_id(), conf.client_secret())


def _answer_checked(response):
    # requests-oauthlib parses any answer as a token; errors are classified
    # here first, while the status code is still at hand.
    if not 200 <= response.status_code < 300:
        raise _error_for_answer(response)
    return response


def _error_for_answer(response):
    """The KlaviyoError for an OAuth endpoint's non-2xx answer."""
    status_code = response.status_code
    body = response.text
    if status_code == 429 or status_code >= 500:
        return error_for_response(status_code, body, response.headers)
    error, description = _oauth_error(response)
    details = {"status_code": status_code, "body": body}
    if error == "invalid_grant":
        refused = OAuthInvalidGrant(
            f"Klaviyo refused the grant (invalid_grant): {description}", **details
        )
    elif error == "invalid_client":
        refused = OAuthRefused(
            "Klaviyo refused the app's credentials (invalid_client); check "
            "KLAVIYO_CLIENT_ID and KLAVIYO_CLIENT_SECRET",
            **details,
        )
    else:
        refused = OAuthRefused(
            f"Klaviyo refused the OAuth request ({error or 'no error code'}): "
            f"{description}",
            **details,
        )
    refused.error = error
    refused.description = description
    return refused


def _oauth_error(response):
    """RFC 6749's ``error`` and ``error_description`` of an answer."""
    try:
        document = response.json()
    except ValueError:
        return "", response.text.strip()[:200] or "no response body"
    if not isinstance(document, dict):
        return "", "unreadable error answer"
    error = str(document.get("error") or "")
    description = str(document.get("error_description") or "no description")
    return error, description[:200]


@contextmanager
def _errors_translated():
    try:
        yield
    except requests.Timeout as error:
        raise KlaviyoRetryableError(
            f"Klaviyo's OAuth server did not answer in time: {type(error).__name__}"
        ) from None
    except requests.TooManyRedirects:
        raise KlaviyoError("Klaviyo's OAuth server answered with a redirect") from None
    except requests.ConnectionError as error:
        raise KlaviyoRetryableError(
            f"Klaviyo's OAuth server could not be reached: {type(error).__name__}"
        ) from None
    except (OAuth2Error, ValueError, Warning) as error:
        # A 2xx answer that is not a usable token (no access_token, no JSON).
        raise KlaviyoError(
            f"Klaviyo's token answer could not be read: {type(error).__name__}"
        ) from None


def _token_set(token, started_at):
    scopes = token.get("scope") or []
    if isinstance(scopes, str):
        scopes = scopes.split()
    try:
        expires_in = float(token["expires_in"])
    except (KeyError, TypeError, ValueError):
        raise KlaviyoError("Klaviyo's token answer has no expires_in") from None
    refresh_token = token.get("refresh_token") or ""
    if not refresh_token:
        raise KlaviyoError("Klaviyo's token answer has no refresh_token")
    return TokenSet(
        access_token=token["access_token"],
        refresh_token=refresh_token,
        # Measured from before the request, so the expiry is never late.
        expires_at=started_at + timedelta(seconds=expires_in),
        scopes=" ".join(scopes),
    )


def _plain_http_allow_on_loopback(url):
    # oauthlib refuses plain http unless OAUTHLIB_INSECURE_TRANSPORT is set.
    # Klaviyo is https; the local sandbox is plain http on the loopback
    # interface, and only for such a URL is the variable set.
    parts = urlsplit(url)
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        os.environ.setdefault("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
