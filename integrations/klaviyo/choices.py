"""The Klaviyo integration's vocabulary: connections and export states."""

from django.db import models


class AuthType(models.TextChoices):
    OAUTH = "oauth", "OAuth"  # connected through the OAuth app; exports events
    LEGACY_API_KEY = "legacy_api_key", "Private API key (legacy)"  # exports nothing


class ConnectionState(models.TextChoices):
    ACTIVE = "active", "Active"  # tokens work; events flow
    NEEDS_RECONNECT = (
        "needs_reconnect",
        "Needs reconnecting",
    )  # grant revoked; events wait
    DISCONNECTED = "disconnected", "Disconnected"  # the brand disconnected


class SyncState(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting to be sent, or to be retried
    EXPORTED = "exported", "Exported"  # accepted by Klaviyo (202)
    FAILED = "failed", "Failed"  # refused for good, or too old; can be re-synced
    SKIPPED = "skipped", "Skipped"  # cannot be sent (no email, bad phone)


class Endpoint(models.TextChoices):
    EVENTS = "events", "Create event"  # POST /api/events, one event a request
    BULK = "bulk", "Bulk create events"  # POST /api/event-bulk-create-jobs
