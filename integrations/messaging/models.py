"""Brands, their people and customers, and the messages sent between them."""

import contextlib
import contextvars

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from integrations.messaging.choices import (
    Channel,
    Direction,
    MembershipRole,
    MessageKind,
    MessageStatus,
)
from integrations.messaging.identifiers import (
    new_campaign_id,
    new_customer_id,
    new_message_id,
)
from integrations.messaging.phones import InvalidPhoneNumber, phone_to_e164

# The column that records when a message reached each status.
STATUS_TIME_FIELDS = {
    MessageStatus.CREATED: "created_at",
    MessageStatus.AWAITING_OPT_IN: "awaiting_opt_in_at",
    MessageStatus.EXPIRED: "expired_at",
    MessageStatus.QUEUED: "queued_at",
    MessageStatus.SENT: "sent_at",
    MessageStatus.DELIVERED: "delivered_at",
    MessageStatus.FAILED: "failed_at",
}
# Statuses a message may be created with outside the status service: none of
# them is ever exported, so nothing can be missed.
INITIAL_STATUSES = frozenset(
    {
        MessageStatus.CREATED,
        MessageStatus.AWAITING_OPT_IN,
        MessageStatus.QUEUED,
        MessageStatus.EXPIRED,
    }
)
# Written by the status service only: the status and the time of each change.
GUARDED_FIELDS = ("status", *sorted(set(STATUS_TIME_FIELDS.values()) - {"created_at"}))
# A new message must not arrive with these set, or the status service would
# take its first real "sent" for a repeat and export nothing.
_EXPORTED_TIME_FIELDS = ("sent_at", "delivered_at", "failed_at")

_status_writes_allowed = contextvars.ContextVar("status_writes_allowed", default=False)


class StatusBypassError(RuntimeError):
    """A message status was written around the status service."""


@contextlib.contextmanager
def status_writes_allowed():
    """Let the status service write statuses; nothing else should use this."""
    token = _status_writes_allowed.set(True)
    try:
        yield
    finally:
        _status_writes_allowed.reset(token)


def _refuse_status_write(how):
    if not _status_writes_allowed.get():
        raise StatusBypassError(
            f"{how} would change a message status without recording its export "
            "events. Use integrations.messaging.services.message_status_record "
            "or message_status_record_many."
        )


class Brand(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    default_country = models.CharField(
        max_length=2,
        default="US",
        help_text="ISO 3166 country used to read national phone numbers.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class BrandMembershipQuerySet(models.QuerySet):
    def for_user(self, user):
        return self.filter(user=user)


class BrandMembership(models.Model):
    """Grants a user access to one brand, and only to that brand."""

    brand = models.ForeignKey(
        Brand, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="brand_memberships",
    )
    role = models.CharField(
        max_length=16, choices=MembershipRole.choices, default=MembershipRole.ADMIN
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BrandMembershipQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["brand", "user"], name="one_membership_per_user"
            )
        ]

    def __str__(self):
        return f"{self.user} in {self.brand} ({self.get_role_display()})"


class Store(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="stores")
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class StaffMember(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="staff")
    store = models.ForeignKey(
        Store, on_delete=models.SET_NULL, null=True, blank=True, related_name="staff"
    )
    name = models.CharField(max_length=200)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Customer(models.Model):
    """A brand's customer. ``phone`` is E.164, or empty when the number given
    could not be read; ``phone_input`` keeps what was given."""

    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="customers")
    public_id = models.CharField(max_length=32, unique=True, default=new_customer_id)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=16, blank=True, editable=False)
    phone_input = models.CharField("phone number", max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["brand", "email"]),
            models.Index(fields=["brand", "phone"]),
        ]

    def __str__(self):
        return self.full_name or self.email or self.phone or self.public_id

    def save(self, *args, **kwargs):
        self.phone = self.normalized_phone()
        super().save(*args, **kwargs)

    @property
    def full_name(self):
        return f"{self.first_name} {self.last_name}".strip()

    def clean(self):
        super().clean()
        if self.phone_input:
            try:
                phone_to_e164(self.phone_input, self.brand.default_country)
            except InvalidPhoneNumber as error:
                raise ValidationError({"phone_input": str(error)}) from None

    def normalized_phone(self):
        """The E.164 form of ``phone_input``, or ``""`` when it does not parse."""
        if not self.phone_input:
            return ""
        try:
            return phone_to_e164(self.phone_input, self.brand.default_country)
        except InvalidPhoneNumber:
            return ""


class Campaign(models.Model):
    brand = models.ForeignKey(Brand, on_delete=models.CASCADE, related_name="campaigns")
    public_id = models.CharField(max_length=32, unique=True, default=new_campaign_id)
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name


class MessageQuerySet(models.QuerySet):
    """Refuses status writes that would skip the export outbox."""

    def update(self, **kwargs):
        if not set(GUARDED_FIELDS).isdisjoint(kwargs):
            _refuse_status_write("QuerySet.update()")
        return super().update(**kwargs)

    def bulk_update(self, objs, fields, batch_size=None):
        if not set(GUARDED_FIELDS).isdisjoint(fields):
            _refuse_status_write("bulk_update()")
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        if not all(obj.is_initial() for obj in objs):
            _refuse_status_write("bulk_create() of a sent, delivered or failed message")
        return super().bulk_create(objs, *args, **kwargs)


class Message(models.Model):
    """One message of a conversation or campaign, with its delivery status.

    The status and its times change only through the status service, which
    records the export events in the same transaction; ``save()``,
    ``update()`` and ``bulk_update()`` raise StatusBypassError otherwise.
    """

    # The brand and campaign columns lead composite indexes below, which
    # serve their lookups; separate indexes would only slow every write.
    brand = models.ForeignKey(
        Brand, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="messages"
    )
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
    )
    store = models.ForeignKey(
        Store, on_delete=models.SET_NULL, null=True, blank=True, related_name="messages"
    )
    staff_member = models.ForeignKey(
        StaffMember,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
    )
    public_id = models.CharField(max_length=32, unique=True, default=new_message_id)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    direction = models.CharField(
        max_length=16, choices=Direction.choices, default=Direction.OUTBOUND
    )
    kind = models.CharField(
        max_length=16, choices=MessageKind.choices, default=MessageKind.ONE_TO_ONE
    )
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.CREATED
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    awaiting_opt_in_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    objects = MessageQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["brand", "-created_at"]),
            models.Index(fields=["campaign", "status"]),
        ]

    def __str__(self):
        return self.public_id

    def save(self, *args, **kwargs):
        if self._state.adding:
            if not self.is_initial():
                _refuse_status_write("Creating a sent, delivered or failed message")
        elif self._changed_status_fields():
            _refuse_status_write("Message.save() with a new status or status time")
        super().save(*args, **kwargs)
        self._loaded_status_values = self._status_values()

    @classmethod
    def from_db(cls, db, field_names, values):
        message = super().from_db(db, field_names, values)
        message._loaded_status_values = message._status_values()
        return message

    def _status_values(self):
        # Deferred fields are absent from __dict__ until read from the row.
        return {
            name: self.__dict__[name]
            for name in GUARDED_FIELDS
            if name in self.__dict__
        }

    def _changed_status_fields(self):
        loaded = getattr(self, "_loaded_status_values", {})
        return [
            name
            for name, value in loaded.items()
            if self.__dict__.get(name, value) != value
        ]

    def is_initial(self):
        """Whether this message could be created without the status service."""
        return self.status in INITIAL_STATUSES and not any(
            getattr(self, name) for name in _EXPORTED_TIME_FIELDS
        )
