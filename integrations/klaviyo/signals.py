"""The signal that asks for an export, sent after the recording transaction
commits."""

from django.dispatch import Signal

# Sent with ``connection_id`` once new outbox rows of that connection are
# committed and no export task is already queued for it.
export_requested = Signal()
