"""OAuth access tokens for calls to Klaviyo: fresh, and refreshed by one
worker at a time.

Whether Klaviyo rotates refresh tokens is unverified, so this assumes it
does: a refresh token is presented once, and two workers must never refresh
the same connection at the same time (a replayed refresh token may revoke the
whole grant). On PostgreSQL the worker that refreshes holds the connection's
row lock; SQLite has no row locks, so there the worker holds a claim written
with a compare-and-swap on ``token_refresh_claimed_until``. Either way the
expiry is checked again once the lock or claim is held.

Call these outside any transaction: the lock and the claim must commit for
the other workers to see them.
"""

import logging
import time
from datetime import timedelta

from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from integrations.klaviyo import conf, oauth
from integrations.klaviyo.choices import ConnectionState
from integrations.klaviyo.client import Credentials
from integrations.klaviyo.errors import KlaviyoReconnectRequired, KlaviyoRetryableError
from integrations.klaviyo.models import KlaviyoConnection

logger = logging.getLogger(__name__)

# An access token with less than this left is refreshed before use.
REFRESH_MARGIN = timedelta(minutes=5)
# How often a worker waiting for another one's refresh looks at the row.
CLAIM_POLL_SECONDS = 0.05
# A claim outlives the longest refresh call by this much, so that it never
# lapses while its holder still waits for Klaviyo.
CLAIM_SLACK = timedelta(seconds=10)

# What a refresh writes, and what a caller's copy of the row is brought up
# to date with afterwards.
TOKEN_FIELDS = (
    "access_token_ciphertext",
    "refresh_token_ciphertext",
    "token_expires_at",
    "token_refreshed_at",
    "scopes",
    "token_refresh_claimed_until",
)
STATE_FIELDS = ("state", "state_changed_at", "last_error", "last_error_at")


class ReconnectRequired(Exception):
    """The brand must reconnect Klaviyo: the connection is not an active
    OAuth connection, or Klaviyo refused its grant (``invalid_grant``)."""

    def __init__(self, message, *, connection_id=None):
        super().__init__(message)
        self.connection_id = connection_id


def connection_credentials(connection):
    """The access token of an active OAuth connection, refreshed first
    (by one worker) when less than REFRESH_MARGIN of it remains."""
    _require_active_oauth(connection)
    if not _expires_soon(connection):
        return Credentials(access_token=connection.access_token)

    def still_needed(current):
        return _expires_soon(current)

    return _refresh_single_flight(connection, still_needed)


def connection_credentials_after_unauthorized(connection, rejected):
    """Fresh credentials after Klaviyo answered 401 to ``rejected``.

    Refreshes once, unless the stored access token already differs from the
    rejected one because another worker refreshed meanwhile. Raises
    ReconnectRequired, after marking the connection, on ``invalid_grant``.
    """
    _require_active_oauth(connection)

    def still_needed(current):
        return current.access_token == rejected.access_token

    return _refresh_single_flight(connection, still_needed)


def connection_needs_reconnect(connection, reason):
    """Mark the connection as needing the brand to reconnect; its events
    stay pending and flow again once it does."""
    now = timezone.now()
    connection.state = ConnectionState.NEEDS_RECONNECT
    connection.state_changed_at = now
    connection.last_error = reason
    connection.last_error_at = now
    connection.token_refresh_claimed_until = None
    connection.save(
        update_fields=[*STATE_FIELDS, "token_refresh_claimed_until", "updated_at"]
    )
    logger.warning(
        "Klaviyo connection %s needs reconnecting",
        connection.pk,
        extra={
            "connection_id": connection.pk,
            "brand_id": connection.brand_id,
            "reason": reason,
        },
    )


def _require_active_oauth(connection):
    if not connection.is_oauth:
        raise ReconnectRequired(
            "The connection uses a private API key; reconnect it with OAuth.",
            connection_id=connection.pk,
        )
    if connection.state != ConnectionState.ACTIVE:
        raise ReconnectRequired(
            f"The connection is {connection.get_state_display().lower()}.",
            connection_id=connection.pk,
        )


def _expires_soon(connection):
    expires_at = connection.token_expires_at
    return expires_at is None or expires_at - timezone.now() < REFRESH_MARGIN


def _refresh_single_flight(connection, still_needed):
    database = connections[KlaviyoConnection.objects.db]
    if database.features.has_select_for_update:
        return _refresh_under_row_lock(connection, still_needed)
    return _refresh_under_claim(connection, still_needed)


def _refresh_under_row_lock(connection, still_needed):
    refused = None
    with transaction.atomic():
        current = KlaviyoConnection.objects.select_for_update().get(pk=connection.pk)
        if _is_active_oauth(current) and still_needed(current):
            try:
                _tokens_refresh(current)
            except KlaviyoReconnectRequired as error:
                # Recorded in this transaction; raised once it has committed.
                refused = error
                connection_needs_reconnect(current, str(error))
    return _credentials_of(current, connection, refused)


def _refresh_under_claim(connection, still_needed):
    claim_length = sum(conf.timeouts(), CLAIM_SLACK.total_seconds())
    give_up_at = time.monotonic() + 2 * claim_length
    while True:
        current = KlaviyoConnection.objects.get(pk=connection.pk)
        if not _is_active_oauth(current) or not still_needed(current):
            return _credentials_of(current, connection)
        claimed_until = _claim(current, timedelta(seconds=claim_length))
        if claimed_until is not None:
            break
        if time.monotonic() > give_up_at:
            raise KlaviyoRetryableError(
                "Another worker is still refreshing this connection's tokens"
            )
        time.sleep(CLAIM_POLL_SECONDS)
    refused = None
    try:
        # Another worker may have finished its refresh between the read
        # above and the claim.
        current = KlaviyoConnection.objects.get(pk=connection.pk)
        if _is_active_oauth(current) and still_needed(current):
            try:
                _tokens_refresh(current)
            except KlaviyoReconnectRequired as error:
                refused = error
                connection_needs_reconnect(current, str(error))
    finally:
        KlaviyoConnection.objects.filter(
            pk=connection.pk, token_refresh_claimed_until=claimed_until
        ).update(token_refresh_claimed_until=None)
    return _credentials_of(current, connection, refused)


def _claim(connection, length):
    """Claim the refresh of ``connection``; the claim's end when this worker
    won it, None when another worker holds a live claim."""
    now = timezone.now()
    claimed_until = now + length
    won = (
        KlaviyoConnection.objects.filter(pk=connection.pk)
        .filter(
            Q(token_refresh_claimed_until__isnull=True)
            | Q(token_refresh_claimed_until__lte=now)
        )
        .update(token_refresh_claimed_until=claimed_until)
    )
    return claimed_until if won else None


def _tokens_refresh(connection):
    tokens = oauth.token_refresh(connection.refresh_token)
    connection.access_token = tokens.access_token
    # Always the refresh token that came back: the one sent may be spent.
    connection.refresh_token = tokens.refresh_token
    connection.token_expires_at = tokens.expires_at
    connection.token_refreshed_at = timezone.now()
    connection.scopes = tokens.scopes
    connection.token_refresh_claimed_until = None
    connection.save(update_fields=[*TOKEN_FIELDS, "updated_at"])
    logger.info(
        "Klaviyo tokens refreshed for connection %s",
        connection.pk,
        extra={"connection_id": connection.pk, "brand_id": connection.brand_id},
    )


def _is_active_oauth(connection):
    return connection.is_oauth and connection.state == ConnectionState.ACTIVE


def _credentials_of(current, connection, refused=None):
    """Bring the caller's ``connection`` up to date with the row just read,
    and hand over its access token, or raise ReconnectRequired."""
    for name in (*TOKEN_FIELDS, *STATE_FIELDS, "auth_type"):
        setattr(connection, name, getattr(current, name))
    if refused is not None:
        raise ReconnectRequired(str(refused), connection_id=connection.pk)
    _require_active_oauth(connection)
    return Credentials(access_token=connection.access_token)
