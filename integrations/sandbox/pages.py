"""The sandbox's HTML: consent, OAuth error and recent-events pages.

Every value that reaches a page goes through ``html.escape``.
"""

import json
import time
from html import escape

from integrations.sandbox.config import DemoAccount

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1f2933; }
h1 { font-size: 1.4rem; }
.banner { background: #fff4d6; border: 1px solid #e8c36a; padding: .5rem 1rem; }
.error { background: #fde8e8; border: 1px solid #e59a9a; padding: .5rem 1rem; }
button { font-size: 1rem; padding: .5rem 1.5rem; margin-right: 1rem; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { border-bottom: 1px solid #d9e2ec; padding: .3rem .5rem; text-align: left;
         vertical-align: top; }
code, pre { font-size: .8rem; white-space: pre-wrap; word-break: break-all; }
"""

_HTML_403 = """<!DOCTYPE html>
<html><head><title>403 Forbidden</title></head>
<body><h1>403 Forbidden</h1>
<p>The request was blocked at the network edge before it reached the API.</p>
<hr><p>edge-proxy (Klaviyo sandbox)</p></body></html>
"""


def _page(title: str, body: str, refresh_seconds: int | None = None) -> str:
    refresh = (
        f'<meta http-equiv="refresh" content="{refresh_seconds}">'
        if refresh_seconds
        else ""
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"{refresh}<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f'<body><p class="banner">Klaviyo sandbox: a local stand-in for Klaviyo. '
        f"Nothing here reaches the real Klaviyo.</p>{body}</body></html>\n"
    )


def consent_page(
    *,
    client_id: str,
    scopes: tuple[str, ...],
    accounts: list[DemoAccount],
    redirect_uri: str,
    hidden_fields: dict[str, str],
) -> str:
    """Ask which demo account to connect, and whether to allow the scopes."""
    options = "".join(
        f'<option value="{escape(account.id)}"{" selected" if index == 0 else ""}>'
        f"{escape(account.organization_name)} ({escape(account.id)})</option>"
        for index, account in enumerate(accounts)
    )
    scope_items = "".join(f"<li><code>{escape(scope)}</code></li>" for scope in scopes)
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in hidden_fields.items()
    )
    body = (
        "<h1>Connect your Klaviyo account</h1>"
        f"<p>The app <code>{escape(client_id)}</code> asks for access to the "
        "account below.</p>"
        '<form method="post" action="/oauth/authorize">'
        f"{hidden}"
        '<p><label for="account_id">Account</label> '
        f'<select id="account_id" name="account_id">{options}</select></p>'
        f"<p>It will be allowed to:</p><ul>{scope_items}</ul>"
        f"<p>You will return to <code>{escape(redirect_uri)}</code>.</p>"
        '<p><button type="submit" name="decision" value="allow">Allow</button>'
        '<button type="submit" name="decision" value="deny">Deny</button></p>'
        "</form>"
    )
    return _page("Connect your Klaviyo account", body)


def authorization_error_page(reason: str) -> str:
    """Why an authorization request was refused, without redirecting."""
    body = (
        "<h1>This authorization request cannot be served</h1>"
        f'<p class="error">{escape(reason)}</p>'
        "<p>The app that sent you here is misconfigured. No redirect was made.</p>"
    )
    return _page("Authorization request refused", body)


def edge_forbidden_page() -> str:
    """The kind of 403 page a CDN in front of an API answers with."""
    return _HTML_403


def events_page(*, events: list[dict], stats: dict, accounts: list[DemoAccount]) -> str:
    """The newest events, refreshed every two seconds."""
    names = {account.id: account.organization_name for account in accounts}
    rows = "".join(
        "<tr>"
        f"<td>{escape(_clock_time(event['received_at']))}</td>"
        f"<td>{escape(names.get(event['account_id'], event['account_id']))}</td>"
        f"<td>{escape(event['endpoint'])}</td>"
        f"<td>{escape(event['metric'])}</td>"
        f"<td>{escape(_profile_label(event['profile']))}</td>"
        f"<td><code>{escape(str(event['unique_id']))}</code></td>"
        f"<td>{escape(event['time'])}</td>"
        f"<td><pre>{escape(json.dumps(event['properties'], indent=1))}</pre></td>"
        "</tr>"
        for event in events
    )
    if not rows:
        rows = '<tr><td colspan="8">No events yet.</td></tr>'
    counters = ", ".join(
        f"{escape(name.replace('_', ' '))}: {stats[name]:,}"
        for name in (
            "events_accepted",
            "events_deduplicated",
            "events_rejected",
            "rate_limited",
            "profiles_created",
        )
    )
    body = (
        "<h1>Recent events</h1>"
        f"<p>{counters}</p>"
        "<table><thead><tr><th>Received</th><th>Account</th><th>Endpoint</th>"
        "<th>Metric</th><th>Profile</th><th>unique_id</th><th>Time</th>"
        f"<th>Properties</th></tr></thead><tbody>{rows}</tbody></table>"
    )
    return _page("Klaviyo sandbox: recent events", body, refresh_seconds=2)


def _clock_time(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def _profile_label(profile: dict) -> str:
    for name in ("email", "phone_number", "external_id", "anonymous_id", "_kx"):
        if profile.get(name):
            return profile[name]
    return profile["id"]
