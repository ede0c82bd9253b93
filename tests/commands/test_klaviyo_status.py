import datetime
import json

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from integrations.klaviyo.choices import ConnectionState, SyncState
from integrations.klaviyo.models import OutboundMessageEvent
from integrations.messaging.choices import MessageStatus
from integrations.messaging.services import StatusUpdate, message_status_record_many
from tests.commands.conftest import run_command
from tests.factories import BrandFactory, KlaviyoConnectionFactory, MessageFactory

pytestmark = pytest.mark.django_db

LAST_ERROR_AT = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.UTC)
LONG_ERROR = (
    "Klaviyo answered 503 Service Unavailable: upstream connect error or "
    "disconnect/reset before headers"
)


def _events(connection, count, state, *, created_ago, exported_ago=None):
    """``count`` events of the connection, recorded ``created_ago`` seconds
    ago and now in ``state``."""
    now = timezone.now()
    messages = MessageFactory.create_batch(count, brand=connection.brand)
    message_status_record_many(
        StatusUpdate(message.pk, MessageStatus.SENT, now) for message in messages
    )
    OutboundMessageEvent.objects.filter(message__in=messages).update(
        state=state,
        created_at=now - datetime.timedelta(seconds=created_ago),
        exported_at=(
            None
            if exported_ago is None
            else now - datetime.timedelta(seconds=exported_ago)
        ),
    )


@pytest.fixture
def connections():
    acme = KlaviyoConnectionFactory(
        brand=BrandFactory(name="Acme", slug="acme"),
        account_id="ACME01",
        account_name="Acme Klaviyo",
        last_error=LONG_ERROR,
        last_error_at=LAST_ERROR_AT,
    )
    _events(acme, 1, SyncState.PENDING, created_ago=3725)
    _events(acme, 2, SyncState.PENDING, created_ago=90)
    _events(acme, 2, SyncState.FAILED, created_ago=7200)
    _events(acme, 4, SyncState.EXPORTED, created_ago=900, exported_ago=600)
    _events(acme, 1, SyncState.EXPORTED, created_ago=9000, exported_ago=7200)
    _events(acme, 3, SyncState.SKIPPED, created_ago=60)
    bolt = KlaviyoConnectionFactory(
        brand=BrandFactory(name="Bolt", slug="bolt"),
        legacy=True,
        account_id="BOLT01",
        account_name="Bolt Legacy",
        export_enabled=False,
        export_enabled_at=None,
    )
    cask = KlaviyoConnectionFactory(
        brand=BrandFactory(name="Cask", slug="cask"),
        account_id="CASK01",
        account_name="Cask Wines",
        last_error="Klaviyo refused the grant: invalid_grant",
        last_error_at=LAST_ERROR_AT,
    )
    _events(cask, 1, SyncState.PENDING, created_ago=30)
    # Events recorded while the grant worked wait for the reconnection.
    cask.state = ConnectionState.NEEDS_RECONNECT
    cask.save(update_fields=["state"])
    dune = KlaviyoConnectionFactory(
        brand=BrandFactory(name="Dune", slug="dune"),
        export_off=True,
        account_id="DUNE01",
        account_name="",
    )
    return acme, bolt, cask, dune


def test_klaviyo_status_prints_one_line_per_connection(connections):
    output = run_command("klaviyo_status")

    assert output.splitlines() == [
        "BRAND  AUTH        STATE               ACCOUNT       EXPORT              "
        "PENDING  OLDEST  EXPORTED 1H  FAILED  LAST ERROR",
        "acme   OAuth       active              Acme Klaviyo  on                  "
        "      3   1h02m            4       2  Klaviyo answered 503 Service "
        "Unavailable: upstream connect…",
        "bolt   legacy key  active              Bolt Legacy   never: needs OAuth  "
        "      0       -            0       0  -",
        "cask   OAuth       needs reconnecting  Cask Wines    on, waiting         "
        "      1     30s            0       0  Klaviyo refused the grant: "
        "invalid_grant",
        "dune   OAuth       active              DUNE01        off                 "
        "      0       -            0       0  -",
        "1 connection(s) use a legacy private API key and export nothing until "
        "the brand connects with OAuth: bolt.",
    ]


def test_klaviyo_status_json_carries_the_same_fields_with_ages_in_seconds(
    connections,
):
    rows = json.loads(run_command("klaviyo_status", "--json"))

    assert rows == [
        {
            "brand": "acme",
            "brand_name": "Acme",
            "auth_type": "oauth",
            "state": "active",
            "account_id": "ACME01",
            "account_name": "Acme Klaviyo",
            "export_enabled": True,
            "exporting": True,
            "needs_oauth_upgrade": False,
            "pending": 3,
            "oldest_pending_age_seconds": 3725,
            "exported_last_hour": 4,
            "failed": 2,
            "last_error": LONG_ERROR,
            "last_error_at": "2025-03-01T12:00:00+00:00",
        },
        {
            "brand": "bolt",
            "brand_name": "Bolt",
            "auth_type": "legacy_api_key",
            "state": "active",
            "account_id": "BOLT01",
            "account_name": "Bolt Legacy",
            "export_enabled": False,
            "exporting": False,
            "needs_oauth_upgrade": True,
            "pending": 0,
            "oldest_pending_age_seconds": None,
            "exported_last_hour": 0,
            "failed": 0,
            "last_error": "",
            "last_error_at": None,
        },
        {
            "brand": "cask",
            "brand_name": "Cask",
            "auth_type": "oauth",
            "state": "needs_reconnect",
            "account_id": "CASK01",
            "account_name": "Cask Wines",
            "export_enabled": True,
            "exporting": False,
            "needs_oauth_upgrade": False,
            "pending": 1,
            "oldest_pending_age_seconds": 30,
            "exported_last_hour": 0,
            "failed": 0,
            "last_error": "Klaviyo refused the grant: invalid_grant",
            "last_error_at": "2025-03-01T12:00:00+00:00",
        },
        {
            "brand": "dune",
            "brand_name": "Dune",
            "auth_type": "oauth",
            "state": "active",
            "account_id": "DUNE01",
            "account_name": "",
            "export_enabled": False,
            "exporting": False,
            "needs_oauth_upgrade": False,
            "pending": 0,
            "oldest_pending_age_seconds": None,
            "exported_last_hour": 0,
            "failed": 0,
            "last_error": "",
            "last_error_at": None,
        },
    ]


def test_klaviyo_status_for_one_brand(connections):
    output = run_command("klaviyo_status", "--brand", "cask")

    assert output.splitlines() == [
        "BRAND  AUTH   STATE               ACCOUNT     EXPORT       PENDING  OLDEST  "
        "EXPORTED 1H  FAILED  LAST ERROR",
        "cask   OAuth  needs reconnecting  Cask Wines  on, waiting        1     30s  "
        "          0       0  Klaviyo refused the grant: invalid_grant",
    ]


def test_klaviyo_status_reads_every_connection_in_three_queries(
    connections, django_assert_num_queries
):
    with django_assert_num_queries(3):
        run_command("klaviyo_status")


def test_klaviyo_status_refuses_an_unknown_brand():
    with pytest.raises(CommandError) as raised:
        run_command("klaviyo_status", "--brand", "nowhere")

    assert str(raised.value) == "No brand has the slug 'nowhere'."


def test_klaviyo_status_without_connections():
    BrandFactory()

    assert run_command("klaviyo_status") == "No Klaviyo connections.\n"
    assert run_command("klaviyo_status", "--json") == "[]\n"
