"""Fixtures and helpers for tests that export to the sandbox: the product
pointed at it, and connections holding real sandbox grants."""

import datetime

import pytest
from django.utils import timezone

from integrations.messaging.choices import MessageStatus
from integrations.messaging.services import StatusUpdate, message_status_record_many
from tests.factories import KlaviyoConnectionFactory, MessageFactory

SCOPES = ["accounts:read", "events:write", "profiles:write"]


@pytest.fixture
def klaviyo(sandbox, settings):
    """The product pointed at the sandbox, with Klaviyo's real limits."""
    settings.KLAVIYO_API_URL = sandbox.url
    settings.KLAVIYO_CLIENT_ID = "sandbox-client-id"
    settings.KLAVIYO_CLIENT_SECRET = "sandbox-client-secret"
    settings.KLAVIYO_READ_TIMEOUT = 5.0
    return sandbox


def connect(sandbox, account_id, **kwargs):
    """A connection holding a real sandbox grant for ``account_id``."""
    grant = sandbox.issue_grant(account_id=account_id, scopes=SCOPES)
    return KlaviyoConnectionFactory(
        account_id=account_id,
        access_token=grant["access_token"],
        refresh_token=grant["refresh_token"],
        token_expires_at=timezone.now()
        + datetime.timedelta(seconds=grant["expires_in"]),
        **kwargs,
    )


@pytest.fixture
def connection(klaviyo):
    return connect(klaviyo, "DEMO01")


def send_messages(connection, count, *, status=MessageStatus.SENT, **message_fields):
    """``count`` messages of the connection's brand reaching ``status`` now."""
    messages = MessageFactory.create_batch(
        count, brand=connection.brand, **message_fields
    )
    message_status_record_many(
        StatusUpdate(message.pk, status, timezone.now()) for message in messages
    )
    return messages
