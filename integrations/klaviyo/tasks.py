"""Background tasks: thin doors from the queue into the services."""

from integrations.klaviyo.exporter import connection_export_run
from integrations.klaviyo.sweep import outbox_sweep


def export_connection(connection_id):
    """Export a connection's due events; safe to run twice or concurrently."""
    s = connection_export_run(connection_id)
    return f"exported {s.exported}, failed {s.failed}, retried {s.retried}"


def sweep_outbox():
    """Every minute: expire old events and wake connections with due ones."""
    expired, requested = outbox_sweep()
    return f"expired {expired}, exports requested {requested}"
