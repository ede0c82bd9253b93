"""The messaging vocabulary: every channel, direction, kind and status."""

from django.db import models


class Channel(models.TextChoices):
    EMAIL = "email", "Email"  # an email to the customer's address
    SMS = "sms", "SMS"  # a text message to the customer's phone
    WHATSAPP = "whatsapp", "WhatsApp"  # a WhatsApp message to the customer's phone


class Direction(models.TextChoices):
    OUTBOUND = "outbound", "Outbound"  # sent by the brand to a customer
    INBOUND = "inbound", "Inbound"  # received by the brand from a customer


class MessageKind(models.TextChoices):
    ONE_TO_ONE = "one_to_one", "1-on-1"  # a store associate's conversation
    CAMPAIGN = "campaign", "Campaign"  # one recipient of a campaign send
    LIVE_CHAT = "live_chat", "Live chat"  # a website chat reply, never exported


class MessageStatus(models.TextChoices):
    CREATED = "created", "Created"  # written, not yet handed to a provider
    AWAITING_OPT_IN = "awaiting_opt_in", "Awaiting opt-in"  # held for consent
    EXPIRED = "expired", "Expired"  # consent never came; never sent
    QUEUED = "queued", "Queued"  # accepted by the provider, not yet sent
    SENT = "sent", "Sent"  # the provider sent it
    DELIVERED = "delivered", "Delivered"  # the provider confirmed delivery
    FAILED = "failed", "Failed"  # the provider gave up; see the failure reason


class MembershipRole(models.TextChoices):
    ADMIN = "admin", "Admin"  # manages the brand's integrations
    MEMBER = "member", "Member"  # sees the brand's data, changes nothing
