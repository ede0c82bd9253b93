"""A brand's Klaviyo connection and the outbox of events exported to it."""

from django.db import models
from django.db.models import Q

from integrations.klaviyo import secrets
from integrations.klaviyo.choices import AuthType, ConnectionState, Endpoint, SyncState
from integrations.messaging.choices import Channel, MessageKind, MessageStatus
from integrations.messaging.models import Brand, Message


class KlaviyoConnection(models.Model):
    """How one brand reaches its Klaviyo account.

    Secrets are stored encrypted (see ``secrets``) and read through the
    ``access_token``, ``refresh_token`` and ``legacy_api_key`` properties.
    """

    brand = models.OneToOneField(
        Brand, on_delete=models.CASCADE, related_name="klaviyo_connection"
    )
    auth_type = models.CharField(max_length=16, choices=AuthType.choices)
    state = models.CharField(
        max_length=16, choices=ConnectionState.choices, default=ConnectionState.ACTIVE
    )
    state_changed_at = models.DateTimeField(null=True, blank=True)
    account_id = models.CharField("Klaviyo account id", max_length=64, blank=True)
    account_name = models.CharField("Klaviyo account name", max_length=200, blank=True)
    connected_at = models.DateTimeField(null=True, blank=True)
    scopes = models.CharField(max_length=500, blank=True)
    access_token_ciphertext = models.TextField(blank=True, editable=False)
    refresh_token_ciphertext = models.TextField(blank=True, editable=False)
    legacy_api_key_ciphertext = models.TextField(blank=True, editable=False)
    token_expires_at = models.DateTimeField(null=True, blank=True)
    token_refreshed_at = models.DateTimeField(null=True, blank=True)
    # While set and in the future, one worker is refreshing the tokens.
    token_refresh_claimed_until = models.DateTimeField(null=True, blank=True)
    export_enabled = models.BooleanField("message status export", default=False)
    export_enabled_at = models.DateTimeField(null=True, blank=True)
    # Set when an export task is queued for this connection and cleared when
    # it starts, so that a burst of status changes queues one task.
    export_requested_at = models.DateTimeField(null=True, blank=True)
    # One worker at a time drains the campaign backlog (see exporter); it
    # holds this lease, renewed as it goes and lapsing if it dies.
    backlog_lease_until = models.DateTimeField(null=True, blank=True)
    backlog_lease_holder = models.CharField(max_length=64, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Klaviyo connection"

    def __str__(self):
        return f"{self.brand} ({self.get_auth_type_display()})"

    @property
    def access_token(self):
        return secrets.decrypt(self.access_token_ciphertext)

    @access_token.setter
    def access_token(self, value):
        self.access_token_ciphertext = secrets.encrypt(value)

    @property
    def refresh_token(self):
        return secrets.decrypt(self.refresh_token_ciphertext)

    @refresh_token.setter
    def refresh_token(self, value):
        self.refresh_token_ciphertext = secrets.encrypt(value)

    @property
    def legacy_api_key(self):
        return secrets.decrypt(self.legacy_api_key_ciphertext)

    @legacy_api_key.setter
    def legacy_api_key(self, value):
        self.legacy_api_key_ciphertext = secrets.encrypt(value)

    @property
    def is_oauth(self):
        return self.auth_type == AuthType.OAUTH

    @property
    def is_legacy(self):
        return self.auth_type == AuthType.LEGACY_API_KEY


class KlaviyoQuota(models.Model):
    """Klaviyo's rate limit for one account and endpoint, as every worker
    sees it: the current steady window, its use, the spacing of bursts and
    any pause Klaviyo asked for with ``Retry-After``."""

    account_key = models.CharField(max_length=80)
    endpoint = models.CharField(max_length=16, choices=Endpoint.choices)
    steady_limit = models.PositiveIntegerField()
    window_ends_at = models.DateTimeField(null=True, blank=True)
    window_used = models.PositiveIntegerField(default=0)
    next_slot_at = models.DateTimeField(null=True, blank=True)
    paused_until = models.DateTimeField(null=True, blank=True)
    requests = models.PositiveBigIntegerField(default=0)
    rate_limited = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "Klaviyo quota"
        constraints = [
            models.UniqueConstraint(
                fields=["account_key", "endpoint"],
                name="one_quota_per_account_endpoint",
            )
        ]

    def __str__(self):
        return f"{self.account_key} {self.endpoint}"


class OutboundMessageEventQuerySet(models.QuerySet):
    def pending(self):
        return self.filter(state=SyncState.PENDING)


class OutboundMessageEvent(models.Model):
    """The outbox: one exported status of one message, and how its export went.

    Written in the transaction that records the status; everything the
    request needs is copied here, so an export reads no other table.
    """

    # Both columns lead a composite index below (the unique one for the
    # message); separate indexes would only slow the insert of every event.
    connection = models.ForeignKey(
        KlaviyoConnection,
        on_delete=models.CASCADE,
        related_name="events",
        db_index=False,
    )
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="klaviyo_events", db_index=False
    )
    status = models.CharField(max_length=16, choices=MessageStatus.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    kind = models.CharField(max_length=16, choices=MessageKind.choices)
    metric_name = models.CharField(max_length=128)
    # The email address for email events, the E.164 number for SMS/WhatsApp.
    profile_identifier = models.CharField(max_length=254, blank=True)
    occurred_at = models.DateTimeField(help_text="When the message reached the status.")
    unique_id = models.CharField(max_length=64)
    properties = models.JSONField(default=dict)
    state = models.CharField(
        max_length=16, choices=SyncState.choices, default=SyncState.PENDING
    )
    state_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    # A worker's lease: until this time no other worker sends the event.
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=64, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    endpoint = models.CharField(max_length=16, choices=Endpoint.choices, blank=True)
    exported_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    objects = OutboundMessageEventQuerySet.as_manager()

    class Meta:
        verbose_name = "outbound message event"
        constraints = [
            models.UniqueConstraint(
                fields=["message", "status"], name="one_event_per_message_status"
            ),
        ]
        indexes = [
            # What the exporter claims: a connection's due pending events.
            models.Index(
                fields=["connection", "kind", "next_attempt_at"],
                condition=Q(state=SyncState.PENDING),
                name="klaviyo_event_due",
            ),
            models.Index(
                fields=["connection", "exported_at"],
                condition=Q(state=SyncState.EXPORTED),
                name="klaviyo_event_exported",
            ),
            models.Index(fields=["connection", "state", "created_at"]),
        ]

    def __str__(self):
        return f"{self.metric_name} for {self.unique_id}"
