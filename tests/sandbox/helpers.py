"""Request bodies and HTTP calls that the sandbox tests share."""

import base64
import copy
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlsplit

import requests

REVISION = "2026-07-15"
JSON_API = "application/vnd.api+json"
CLIENT_ID = "sandbox-client-id"
CLIENT_SECRET = "sandbox-client-secret"
REDIRECT_URI = "http://127.0.0.1:8000/integrations/klaviyo/oauth/callback"
EXPORTER_SCOPES = ["accounts:read", "events:write", "profiles:write"]
TIMEOUT = (3.05, 10)

BULK_EVENTS_POINTER = "/data/attributes/events-bulk-create/data"


# -- bodies -------------------------------------------------------------------


def event_attributes(
    *, name="Message Delivered", unique_id=None, properties=None, **extra
):
    """The attributes of one event, without its profile."""
    attributes = {
        "properties": {"channel": "email"} if properties is None else properties,
        "metric": {"data": {"type": "metric", "attributes": {"name": name}}},
        **extra,
    }
    if unique_id is not None:
        attributes["unique_id"] = unique_id
    return attributes


def event_body(*, profile=None, **attributes):
    """A valid ``POST /api/events`` body; keyword arguments change it."""
    body_attributes = event_attributes(**attributes)
    body_attributes["profile"] = {
        "data": {
            "type": "profile",
            "attributes": {"email": "ada@example.com"} if profile is None else profile,
        }
    }
    return {"data": {"type": "event", "attributes": body_attributes}}


def bulk_event(**attributes):
    return {"type": "event", "attributes": event_attributes(**attributes)}


def bulk_group(profile, events):
    return {
        "type": "event-bulk-create",
        "attributes": {
            "profile": {"data": {"type": "profile", "attributes": profile}},
            "events": {"data": events},
        },
    }


def bulk_body(*groups):
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {"events-bulk-create": {"data": list(groups)}},
        }
    }


def bulk_of(count, *, profile=None, prefix="e"):
    """A bulk body of ``count`` events for one profile, each its own unique_id."""
    return bulk_body(
        bulk_group(
            profile or {"email": "ada@example.com"},
            [bulk_event(unique_id=f"{prefix}{index}") for index in range(count)],
        )
    )


def with_change(body, path, value):
    """A deep copy of ``body`` with the member at ``path`` set (or removed)."""
    changed = copy.deepcopy(body)
    node = changed
    for key in path[:-1]:
        node = node[key]
    if value is _REMOVE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return changed


_REMOVE = object()
REMOVE = _REMOVE


def nested(levels):
    """An object that nests ``levels`` objects deep, counting itself."""
    value = {"leaf": True}
    for _ in range(levels - 1):
        value = {"child": value}
    return value


# -- API calls ----------------------------------------------------------------


def api_headers(token, *, api_key=False, **overrides):
    scheme = "Klaviyo-API-Key" if api_key else "Bearer"
    headers = {
        "Authorization": f"{scheme} {token}",
        "revision": REVISION,
        "Accept": JSON_API,
        "Content-Type": JSON_API,
    }
    headers.update(overrides)
    return {name: value for name, value in headers.items() if value is not None}


def post_event(url, token, body, **headers):
    return requests.post(
        f"{url}/api/events",
        data=json.dumps(body),
        headers=api_headers(token, **headers),
        timeout=TIMEOUT,
    )


def post_bulk(url, token, body, **headers):
    return requests.post(
        f"{url}/api/event-bulk-create-jobs",
        data=json.dumps(body),
        headers=api_headers(token, **headers),
        timeout=TIMEOUT,
    )


def get_accounts(url, token, **headers):
    return requests.get(
        f"{url}/api/accounts", headers=api_headers(token, **headers), timeout=TIMEOUT
    )


def error_summary(response):
    """(code, pointer or parameter) of each JSON:API error of an answer."""
    return [
        (
            error["code"],
            error["source"].get("pointer", error["source"].get("parameter")),
        )
        for error in response.json()["errors"]
    ]


def pointers(response):
    return [error["source"]["pointer"] for error in response.json()["errors"]]


# -- OAuth --------------------------------------------------------------------


def pkce_pair():
    """A fresh (code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return verifier, challenge


def authorize_params(challenge, **overrides):
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": " ".join(EXPORTER_SCOPES),
        "state": "state-123",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value is not None}


def authorize(url, params):
    return requests.get(
        f"{url}/oauth/authorize",
        params=params,
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def consent(url, params, *, account_id="DEMO01", decision="allow"):
    """Submit the consent form as a person would; the redirect answer."""
    return requests.post(
        f"{url}/oauth/authorize",
        data={**params, "account_id": account_id, "decision": decision},
        allow_redirects=False,
        timeout=TIMEOUT,
    )


def redirect_query(response):
    location = response.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    return {name: values[0] for name, values in query.items()}


def authorization_code(url, *, account_id="DEMO01", **overrides):
    """(code, verifier, params) after a person allowed the app."""
    verifier, challenge = pkce_pair()
    params = authorize_params(challenge, **overrides)
    answer = consent(url, params, account_id=account_id)
    return redirect_query(answer)["code"], verifier, params


def token_request(url, form, auth=(CLIENT_ID, CLIENT_SECRET)):
    return requests.post(f"{url}/oauth/token", data=form, auth=auth, timeout=TIMEOUT)


def exchange_code(url, code, verifier, redirect_uri=REDIRECT_URI, **extra):
    return token_request(
        url,
        {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
            **extra,
        },
    )


def refresh(url, refresh_token):
    return token_request(
        url, {"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def revoke(url, token, auth=(CLIENT_ID, CLIENT_SECRET)):
    return requests.post(
        f"{url}/oauth/revoke",
        data={"token": token, "token_type_hint": "refresh_token"},
        auth=auth,
        timeout=TIMEOUT,
    )
