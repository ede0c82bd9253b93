import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from integrations.klaviyo.choices import ConnectionState
from integrations.klaviyo.exporter import is_exporting
from integrations.klaviyo.models import KlaviyoConnection
from integrations.klaviyo.sync_state import sync_statuses
from integrations.messaging.models import Brand

LAST_ERROR_WIDTH = 60
COLUMNS = (
    "BRAND",
    "AUTH",
    "STATE",
    "ACCOUNT",
    "EXPORT",
    "PENDING",
    "OLDEST",
    "EXPORTED 1H",
    "FAILED",
    "LAST ERROR",
)
# Columns of counts and ages, aligned to the right.
NUMERIC_COLUMNS = frozenset({"PENDING", "OLDEST", "EXPORTED 1H", "FAILED"})


class Command(BaseCommand):
    help = (
        "Show each Klaviyo connection's sync state, one line per connection: "
        "brand, auth type, state, account, whether it exports, pending "
        "events and the age of the oldest, events exported in the last hour, "
        "failed events and the last error."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--brand",
            metavar="SLUG",
            help="Only this brand's connection (its slug).",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            dest="as_json",
            help="Print a JSON list with the same fields instead; ages are in "
            "whole seconds, times in ISO 8601.",
        )

    def handle(self, *args, brand, as_json, **options):
        connections = KlaviyoConnection.objects.select_related("brand").order_by(
            "brand__name", "pk"
        )
        if brand is not None:
            if not Brand.objects.filter(slug=brand).exists():
                raise CommandError(f"No brand has the slug {brand!r}.")
            connections = connections.filter(brand__slug=brand)
        connections = list(connections)
        now = timezone.now()
        statuses = sync_statuses([connection.pk for connection in connections], now=now)
        rows = [
            connection_status(connection, statuses[connection.pk], now)
            for connection in connections
        ]
        if as_json:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No Klaviyo connections.")
            return
        self.stdout.write(_table([_text_cells(row) for row in rows]))
        legacy = [row["brand"] for row in rows if row["needs_oauth_upgrade"]]
        if legacy:
            self.stdout.write(
                f"{len(legacy)} connection(s) use a legacy private API key and "
                f"export nothing until the brand connects with OAuth: "
                f"{', '.join(legacy)}."
            )


def connection_status(connection, status, now):
    """The fields shown for one connection, as JSON-ready values."""
    lag = status.lag(now)
    return {
        "brand": connection.brand.slug,
        "brand_name": connection.brand.name,
        "auth_type": connection.auth_type,
        "state": connection.state,
        "account_id": connection.account_id,
        "account_name": connection.account_name,
        "export_enabled": connection.export_enabled,
        "exporting": is_exporting(connection),
        "needs_oauth_upgrade": connection.is_legacy,
        "pending": status.pending,
        "oldest_pending_age_seconds": None if lag is None else int(lag.total_seconds()),
        "exported_last_hour": status.exported_last_hour,
        "failed": status.failed,
        "last_error": connection.last_error,
        "last_error_at": (
            None
            if connection.last_error_at is None
            else connection.last_error_at.isoformat()
        ),
    }


def _text_cells(row):
    return {
        "BRAND": row["brand"],
        "AUTH": "legacy key" if row["needs_oauth_upgrade"] else "OAuth",
        "STATE": ConnectionState(row["state"]).label.lower(),
        "ACCOUNT": row["account_name"] or row["account_id"] or "-",
        "EXPORT": _export_text(row),
        "PENDING": str(row["pending"]),
        "OLDEST": _age_text(row["oldest_pending_age_seconds"]),
        "EXPORTED 1H": str(row["exported_last_hour"]),
        "FAILED": str(row["failed"]),
        "LAST ERROR": _truncated(row["last_error"]) or "-",
    }


def _export_text(row):
    if row["needs_oauth_upgrade"]:
        return "never: needs OAuth"
    if row["exporting"]:
        return "on"
    # Switched on, but the grant was refused: events wait for a reconnection.
    if row["export_enabled"] and row["state"] == ConnectionState.NEEDS_RECONNECT:
        return "on, waiting"
    return "off"


def _age_text(seconds):
    """A short age: 42s, 4m05s, 2h03m, 3d04h; "-" for none."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _truncated(text):
    text = " ".join(text.split())
    if len(text) <= LAST_ERROR_WIDTH:
        return text
    return text[: LAST_ERROR_WIDTH - 1].rstrip() + "…"


def _table(cell_rows):
    widths = {
        column: max(len(column), *(len(cells[column]) for cells in cell_rows))
        for column in COLUMNS
    }

    def line(cells):
        parts = [
            cells[column].rjust(widths[column])
            if column in NUMERIC_COLUMNS
            else cells[column].ljust(widths[column])
            for column in COLUMNS
        ]
        return "  ".join(parts).rstrip()

    return "\n".join(
        [line({column: column for column in COLUMNS})]
        + [line(cells) for cells in cell_rows]
    )
