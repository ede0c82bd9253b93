"""Connecting a brand to Klaviyo: the OAuth flow, the upgrade of a legacy
API-key connection, disconnecting, and the message status export switch.

The OAuth flow is bound to the person's session: ``state`` is one-time and
names the brand, and the PKCE verifier never leaves the server. Export starts
at the moment a brand first connects (or upgrades): a brand connects to get
events, and nothing sent before that moment is exported. A reconnect after
Klaviyo refused the grant keeps the moment it was switched on, so the events
that waited meanwhile are exported.
"""

import logging
import re
import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import models, transaction
from django.utils import timezone

from integrations.klaviyo import oauth, secrets, selectors
from integrations.klaviyo.choices import AuthType, ConnectionState
from integrations.klaviyo.client import Credentials, KlaviyoClient
from integrations.klaviyo.errors import (
    KlaviyoError,
    KlaviyoRateLimited,
    KlaviyoRetryableError,
)
from integrations.klaviyo.models import KlaviyoConnection
from integrations.klaviyo.outbox import export_request
from integrations.messaging.models import Brand

logger = logging.getLogger(__name__)

# The session key of the authorizations started and not yet finished.
PENDING_AUTHORIZATIONS_KEY = "klaviyo_oauth_pending"
# An authorization not finished within this time is refused.
AUTHORIZATION_MAX_AGE = timedelta(minutes=10)
# A session keeps at most this many unfinished authorizations (tabs).
MAX_PENDING_AUTHORIZATIONS = 5
# GET /api/accounts allows one call a second; a wait this short is waited.
ACCOUNT_LOOKUP_MAX_WAIT_SECONDS = 2.0
# The encrypted columns of a connection, re-encrypted when keys rotate.
SECRET_FIELDS = (
    "access_token_ciphertext",
    "refresh_token_ciphertext",
    "legacy_api_key_ciphertext",
)
# The RFC 6749 error codes are short ASCII words; anything else is not shown.
_ERROR_CODE = re.compile(r"[a-z_]{1,64}", re.ASCII)


class ConnectOutcome(models.TextChoices):
    CONNECTED = "connected", "Connected"  # a first connection, or after disconnecting
    RECONNECTED = "reconnected", "Reconnected"  # new tokens for an OAuth connection
    UPGRADED = "upgraded", "Upgraded"  # a legacy API-key connection now uses OAuth


class ConnectFailed(Exception):
    """The OAuth flow connected nothing. The message is for the person;
    ``brand`` is set once the state has named it."""

    def __init__(self, message, *, brand=None):
        super().__init__(message)
        self.brand = brand


class ExportSwitchRefused(Exception):
    """The export switch cannot be turned on for this connection."""


@dataclass(frozen=True)
class ConnectResult:
    connection: KlaviyoConnection
    outcome: ConnectOutcome
    # False when GET /api/accounts failed and the account is not known yet.
    account_known: bool


@dataclass(frozen=True)
class DisconnectResult:
    connection: KlaviyoConnection
    # Whether a grant was sent to Klaviyo's revoke endpoint, and whether
    # Klaviyo confirmed it. A legacy connection has no grant to revoke.
    revoke_attempted: bool
    revoked: bool


def connection_authorize_start(session, *, brand, user, redirect_uri):
    """Begin the OAuth flow for ``brand``; the URL of Klaviyo's consent page.

    The state and PKCE verifier are kept in ``session`` (server-side) until
    the callback spends them.
    """
    request = oauth.authorization_request(redirect_uri)
    now = time.time()
    pending = {
        state: started
        for state, started in (session.get(PENDING_AUTHORIZATIONS_KEY) or {}).items()
        if _is_recent(started, now)
    }
    pending[request.state] = {
        "brand_id": brand.pk,
        "user_id": user.pk,
        "code_verifier": request.code_verifier,
        "redirect_uri": request.redirect_uri,
        "started_at": now,
    }
    newest = sorted(pending.items(), key=lambda item: item[1].get("started_at", 0))
    session[PENDING_AUTHORIZATIONS_KEY] = dict(newest[-MAX_PENDING_AUTHORIZATIONS:])
    logger.info(
        "Klaviyo authorization started for brand %s",
        brand.pk,
        extra={"brand_id": brand.pk, "user_id": user.pk},
    )
    return request.url


def connection_authorize_complete(session, *, user, state, code="", error=""):
    """Finish the OAuth flow from Klaviyo's answer on the callback.

    A forged, reused, expired or missing ``state``, a lost verifier or an
    ``error`` from Klaviyo raises ConnectFailed before any token exchange,
    and nothing is stored. Otherwise the code is exchanged, the tokens are
    stored encrypted with the account ``GET /api/accounts`` names, and the
    waiting events are asked to flow.
    """
    if not state:
        raise ConnectFailed(
            "Klaviyo's answer did not say which connection attempt it belongs "
            "to, so it was ignored. Nothing was connected; start again with "
            "Connect."
        )
    pending = dict(session.get(PENDING_AUTHORIZATIONS_KEY) or {})
    started = pending.pop(state, None)
    # The state is spent whatever happens next.
    session[PENDING_AUTHORIZATIONS_KEY] = pending
    if not isinstance(started, dict) or started.get("user_id") != user.pk:
        raise ConnectFailed(
            "This answer from Klaviyo does not match a connection attempt you "
            "started here, or it was already used. Nothing was connected; "
            "start again with Connect."
        )
    brand = Brand.objects.filter(pk=started.get("brand_id")).first()
    if brand is None or not selectors.brand_is_manageable_by(user, brand):
        raise ConnectFailed(
            "You cannot manage this brand's Klaviyo connection. Nothing was connected."
        )
    if not _is_recent(started, time.time()):
        raise ConnectFailed(
            "The connection attempt took too long and expired. Nothing was "
            "connected; start again with Connect.",
            brand=brand,
        )
    if error:
        error_code = error if _ERROR_CODE.fullmatch(error) else "unknown"
        logger.info(
            "Klaviyo authorization for brand %s ended with %s",
            brand.pk,
            error_code,
            extra={"brand_id": brand.pk, "error": error_code},
        )
        raise ConnectFailed(_authorization_error_message(error_code), brand=brand)
    code_verifier = started.get("code_verifier")
    redirect_uri = started.get("redirect_uri")
    if not code_verifier or not redirect_uri:
        raise ConnectFailed(
            "The connection attempt lost its PKCE verifier, so Klaviyo's code "
            "cannot be used safely. Nothing was connected; start again with "
            "Connect.",
            brand=brand,
        )
    if not code:
        raise ConnectFailed(
            "Klaviyo's answer carried no authorization code. Nothing was "
            "connected; start again with Connect.",
            brand=brand,
        )
    try:
        tokens = oauth.token_exchange(
            code=code, code_verifier=code_verifier, redirect_uri=redirect_uri
        )
    except KlaviyoRetryableError:
        logger.warning(
            "Klaviyo could not be reached to exchange a code",
            exc_info=True,
            extra={"brand_id": brand.pk},
        )
        raise ConnectFailed(
            "Klaviyo could not be reached to finish connecting. Nothing was "
            "connected; try again in a moment.",
            brand=brand,
        ) from None
    except KlaviyoError as refused:
        logger.warning(
            "Klaviyo refused to exchange a code for brand %s: %s",
            brand.pk,
            refused,
            extra={"brand_id": brand.pk, "status_code": refused.status_code},
        )
        reason = (
            f"{refused.error or 'refused'}: {refused.description}"
            if isinstance(refused, oauth.OAuthErrorAnswer)
            else str(refused)
        )
        raise ConnectFailed(
            f"Klaviyo refused to finish connecting ({reason}). Nothing was "
            "connected; start again with Connect.",
            brand=brand,
        ) from None
    account = _account_lookup(tokens.access_token, brand)
    connection, outcome = _connection_store(brand, tokens, account)
    export_request(connection.pk)
    logger.info(
        "Klaviyo connection %s %s",
        connection.pk,
        outcome.label.lower(),
        extra={
            "connection_id": connection.pk,
            "brand_id": brand.pk,
            "account_id": connection.account_id,
            "outcome": outcome.value,
        },
    )
    return ConnectResult(
        connection=connection, outcome=outcome, account_known=account is not None
    )


def connection_disconnect(connection):
    """Disconnect: clear the secrets, switch export off, then revoke the
    grant at Klaviyo. A failed revoke still leaves the brand disconnected
    here; the result says whether Klaviyo confirmed it."""
    now = timezone.now()
    with transaction.atomic():
        current = KlaviyoConnection.objects.select_for_update().get(pk=connection.pk)
        refresh_token = current.refresh_token
        current.state = ConnectionState.DISCONNECTED
        current.state_changed_at = now
        current.access_token = ""
        current.refresh_token = ""
        current.legacy_api_key = ""
        current.token_expires_at = None
        current.token_refresh_claimed_until = None
        current.scopes = ""
        current.export_enabled = False
        current.export_enabled_at = None
        current.last_error = ""
        current.last_error_at = None
        current.save()
    _copy_fields(current, connection)
    revoked = False
    if refresh_token:
        try:
            oauth.token_revoke(refresh_token)
        except KlaviyoError as failure:
            logger.warning(
                "Klaviyo did not revoke the grant of connection %s: %s",
                connection.pk,
                failure,
                extra={
                    "connection_id": connection.pk,
                    "brand_id": connection.brand_id,
                    "status_code": failure.status_code,
                },
            )
        else:
            revoked = True
    logger.info(
        "Klaviyo connection %s disconnected",
        connection.pk,
        extra={
            "connection_id": connection.pk,
            "brand_id": connection.brand_id,
            "revoked": revoked,
        },
    )
    return DisconnectResult(
        connection=connection, revoke_attempted=bool(refresh_token), revoked=revoked
    )


def connection_export_switch(connection, *, enabled):
    """Switch message status export on (from now) or off; whether it changed.

    Only an OAuth connection exports; a legacy API-key connection must be
    reconnected with OAuth first.
    """
    if enabled and (
        not connection.is_oauth or connection.state == ConnectionState.DISCONNECTED
    ):
        raise ExportSwitchRefused(
            "Message status export needs a Klaviyo connection made with OAuth; "
            "connect (or reconnect) with OAuth first."
        )
    if connection.export_enabled == enabled:
        return False
    connection.export_enabled = enabled
    connection.export_enabled_at = timezone.now() if enabled else None
    connection.save(update_fields=["export_enabled", "export_enabled_at", "updated_at"])
    logger.info(
        "Klaviyo export switched %s for connection %s",
        "on" if enabled else "off",
        connection.pk,
        extra={
            "connection_id": connection.pk,
            "brand_id": connection.brand_id,
            "export_enabled": enabled,
        },
    )
    return True


def connection_secrets_reencrypt(connection, *, apply):
    """Re-encrypt the connection's stored secrets with the first key of
    ENCRYPTION_KEYS, writing them only with ``apply``.

    Returns (secrets re-encrypted, whether the row was written). A row whose
    secrets changed since it was read (a token refresh) is left as it is:
    what the refresh wrote is already under the first key. Raises
    SecretDecryptionError when a secret cannot be read with any key.
    """
    stored = {name: getattr(connection, name) for name in SECRET_FIELDS}
    rotated = {}
    for name, ciphertext in stored.items():
        if ciphertext:
            # Raises SecretDecryptionError, naming the setting to fix.
            secrets.decrypt(ciphertext)
            rotated[name] = secrets.reencrypt(ciphertext)
    if not apply or not rotated:
        return len(rotated), False
    written = KlaviyoConnection.objects.filter(pk=connection.pk, **stored).update(
        **rotated, updated_at=timezone.now()
    )
    return len(rotated), bool(written)


def _is_recent(started, now):
    started_at = started.get("started_at") if isinstance(started, dict) else None
    if not isinstance(started_at, int | float):
        return False
    return 0 <= now - started_at <= AUTHORIZATION_MAX_AGE.total_seconds()


def _authorization_error_message(error):
    if error == "access_denied":
        return (
            "Access to Klaviyo was denied on Klaviyo's page, so nothing was "
            "connected. Connect again and choose Allow to connect."
        )
    code = "unknown error" if error == "unknown" else error
    return (
        f"Klaviyo did not authorize the connection ({code}). Nothing was "
        "connected; start again with Connect."
    )


@dataclass(frozen=True)
class _Account:
    id: str
    name: str


def _account_lookup(access_token, brand):
    """The account the tokens belong to, or None when Klaviyo would not say;
    the connection is stored either way, so the grant is not lost."""
    client = KlaviyoClient(Credentials(access_token=access_token))
    try:
        try:
            answer = client.get_accounts()
        except KlaviyoRateLimited as limited:
            wait = limited.retry_after
            if wait is None or wait > ACCOUNT_LOOKUP_MAX_WAIT_SECONDS:
                raise
            time.sleep(wait)
            answer = client.get_accounts()
    except KlaviyoError as failure:
        logger.warning(
            "Klaviyo did not name the account of brand %s: %s",
            brand.pk,
            failure,
            extra={"brand_id": brand.pk, "status_code": failure.status_code},
        )
        return None
    try:
        resource = answer.data["data"][0]
        contact = resource.get("attributes", {}).get("contact_information") or {}
        return _Account(
            id=str(resource["id"]),
            name=str(contact.get("organization_name") or resource["id"]),
        )
    except (KeyError, IndexError, TypeError, AttributeError):
        logger.warning(
            "Klaviyo's account answer for brand %s could not be read",
            brand.pk,
            extra={"brand_id": brand.pk},
        )
        return None


def _connection_store(brand, tokens, account):
    now = timezone.now()
    with transaction.atomic():
        connection = (
            KlaviyoConnection.objects.select_for_update().filter(brand=brand).first()
        )
        if connection is None:
            connection = KlaviyoConnection(brand=brand)
            outcome = ConnectOutcome.CONNECTED
        elif connection.is_legacy:
            outcome = ConnectOutcome.UPGRADED
        elif connection.state == ConnectionState.DISCONNECTED:
            outcome = ConnectOutcome.CONNECTED
        else:
            outcome = ConnectOutcome.RECONNECTED
        if outcome != ConnectOutcome.RECONNECTED:
            # Export starts now: nothing sent before this moment is exported.
            connection.export_enabled = True
            connection.export_enabled_at = now
        if (
            outcome != ConnectOutcome.RECONNECTED
            or connection.state != ConnectionState.ACTIVE
        ):
            connection.state_changed_at = now
        connection.auth_type = AuthType.OAUTH
        connection.state = ConnectionState.ACTIVE
        connection.legacy_api_key = ""
        connection.access_token = tokens.access_token
        connection.refresh_token = tokens.refresh_token
        connection.token_expires_at = tokens.expires_at
        connection.token_refreshed_at = now
        connection.token_refresh_claimed_until = None
        connection.scopes = tokens.scopes
        connection.connected_at = now
        connection.last_error = ""
        connection.last_error_at = None
        if account is not None:
            connection.account_id = account.id
            connection.account_name = account.name
        connection.save()
    return connection, outcome


def _copy_fields(source, target):
    for field in KlaviyoConnection._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
