"""The Integrations pages: the brand list and each brand's Klaviyo card.

A user sees only the brands they belong to (a superuser sees all); another
brand's pages and actions answer 404, whatever the method. Actions are
POST-only, need CSRF, and are for the brand's admins.
"""

import logging
from dataclasses import dataclass
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import (
    ImproperlyConfigured,
    ObjectDoesNotExist,
    PermissionDenied,
)
from django.http import HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from integrations.klaviyo import selectors
from integrations.klaviyo.choices import ConnectionState
from integrations.klaviyo.connections import (
    ConnectFailed,
    ConnectOutcome,
    ExportSwitchRefused,
    connection_authorize_complete,
    connection_authorize_start,
    connection_disconnect,
    connection_export_switch,
)
from integrations.klaviyo.forms import ExportSwitchForm, OAuthCallbackForm

logger = logging.getLogger(__name__)

READ_METHODS = ("GET", "HEAD")


def brand_view(*, methods, manage=False):
    """Load the brand named by ``slug`` among those the user may see (404
    otherwise), then refuse other methods (405) and, for ``manage``, users
    who are not the brand's admins (403)."""

    def decorator(view):
        @wraps(view)
        def wrapper(request, slug):
            brand = get_object_or_404(
                selectors.brands_visible_to(request.user), slug=slug
            )
            if request.method not in methods:
                return HttpResponseNotAllowed(methods)
            if manage and not selectors.brand_is_manageable_by(request.user, brand):
                raise PermissionDenied
            return view(request, brand)

        return login_required(wrapper)

    return decorator


@dataclass(frozen=True)
class ConnectionCard:
    """What the Klaviyo card shows of a brand's connection."""

    connection: object

    @property
    def is_connected(self):
        return (
            self.connection is not None
            and self.connection.is_oauth
            and self.connection.state == ConnectionState.ACTIVE
        )

    @property
    def needs_reconnect(self):
        return (
            self.connection is not None
            and self.connection.state == ConnectionState.NEEDS_RECONNECT
        )

    @property
    def is_legacy(self):
        return (
            self.connection is not None
            and self.connection.is_legacy
            and self.connection.state != ConnectionState.DISCONNECTED
        )

    @property
    def is_not_connected(self):
        return (
            self.connection is None
            or self.connection.state == ConnectionState.DISCONNECTED
        )

    @property
    def has_export_switch(self):
        return self.is_connected or (self.needs_reconnect and self.connection.is_oauth)


@login_required
@require_GET
def brand_list(request):
    brands = selectors.brands_with_connections_visible_to(request.user)
    rows = [(brand, ConnectionCard(_connection_of(brand))) for brand in brands]
    return render(request, "klaviyo/brand_list.html", {"rows": rows})


@brand_view(methods=READ_METHODS)
def integration(request, brand):
    card = ConnectionCard(selectors.brand_connection(brand))
    return render(
        request,
        "klaviyo/integration.html",
        {
            "brand": brand,
            "card": card,
            "connection": card.connection,
            "can_manage": selectors.brand_is_manageable_by(request.user, brand),
        },
    )


@brand_view(methods=("POST",), manage=True)
def connect(request, brand):
    redirect_uri = request.build_absolute_uri(reverse("klaviyo:oauth-callback"))
    try:
        url = connection_authorize_start(
            request.session, brand=brand, user=request.user, redirect_uri=redirect_uri
        )
    except ImproperlyConfigured:
        logger.exception("Klaviyo OAuth is not configured")
        messages.error(
            request,
            "Klaviyo cannot be connected: this site's Klaviyo app is not set up "
            "yet. Ask an administrator to set KLAVIYO_CLIENT_ID and "
            "KLAVIYO_CLIENT_SECRET.",
        )
        return redirect("klaviyo:integration", slug=brand.slug)
    return redirect(url)


@login_required
@require_GET
def oauth_callback(request):
    form = OAuthCallbackForm(request.GET)
    # A field that fails validation (too long) is left out, as if missing.
    form.is_valid()
    answer = form.cleaned_data
    try:
        result = connection_authorize_complete(
            request.session,
            user=request.user,
            state=answer.get("state", ""),
            code=answer.get("code", ""),
            error=answer.get("error", ""),
        )
    except ConnectFailed as failure:
        messages.error(request, str(failure))
        if failure.brand is not None:
            return redirect("klaviyo:integration", slug=failure.brand.slug)
        return redirect("klaviyo:brand-list")
    messages.success(request, _connected_message(result))
    return redirect("klaviyo:integration", slug=result.connection.brand.slug)


@brand_view(methods=("POST",), manage=True)
def disconnect(request, brand):
    connection = selectors.brand_connection(brand)
    if connection is None or connection.state == ConnectionState.DISCONNECTED:
        messages.info(request, "Klaviyo is not connected; there is nothing to do.")
        return redirect("klaviyo:integration", slug=brand.slug)
    was_legacy = connection.is_legacy
    result = connection_disconnect(connection)
    if result.revoke_attempted and not result.revoked:
        messages.warning(
            request,
            "Klaviyo is disconnected here and nothing more will be sent, but "
            "Klaviyo could not be reached to revoke this site's access. Remove "
            "the app in your Klaviyo account's integration settings to revoke "
            "it there too.",
        )
    elif was_legacy:
        messages.success(
            request,
            "Klaviyo is disconnected and the private API key was deleted here. "
            "Delete the key in your Klaviyo account's settings too.",
        )
    else:
        messages.success(
            request, "Klaviyo is disconnected and its access was revoked at Klaviyo."
        )
    return redirect("klaviyo:integration", slug=brand.slug)


@brand_view(methods=("POST",), manage=True)
def export(request, brand):
    connection = selectors.brand_connection(brand)
    form = ExportSwitchForm(request.POST)
    if connection is None or not form.is_valid():
        messages.error(request, "The export switch could not be changed.")
        return redirect("klaviyo:integration", slug=brand.slug)
    enabled = form.cleaned_data["enabled"]
    if enabled is None:
        enabled = not connection.export_enabled
    try:
        connection_export_switch(connection, enabled=enabled)
    except ExportSwitchRefused as refused:
        messages.error(request, str(refused))
    else:
        if enabled:
            messages.success(
                request,
                "Message status export is on: statuses of messages sent from now "
                "on are exported to Klaviyo.",
            )
        else:
            messages.success(request, "Message status export is off.")
    return redirect("klaviyo:integration", slug=brand.slug)


def _connection_of(brand):
    # Loaded by select_related; a brand without one raises on access.
    try:
        return brand.klaviyo_connection
    except ObjectDoesNotExist:
        return None


def _connected_message(result):
    connection = result.connection
    account = (
        f"the Klaviyo account {connection.account_name}"
        if result.account_known and connection.account_name
        else "Klaviyo (the account's name could not be read yet)"
    )
    if result.outcome == ConnectOutcome.UPGRADED:
        return (
            f"Upgraded to OAuth and connected to {account}. Message status export "
            "is on from now; messages sent before are not exported."
        )
    if result.outcome == ConnectOutcome.RECONNECTED:
        waiting = (
            " Statuses that waited for the reconnection are being exported now."
            if connection.export_enabled
            else ""
        )
        return f"Reconnected to {account}.{waiting}"
    return (
        f"Connected to {account}. Message status export is on from now; "
        "messages sent before are not exported."
    )
