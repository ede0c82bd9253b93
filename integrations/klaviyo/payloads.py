"""Klaviyo request bodies, built from plain values: no I/O, no settings.

The shapes follow the request schemas of ``POST /api/events`` and
``POST /api/event-bulk-create-jobs`` in Klaviyo's OpenAPI spec; a test
validates every shape built here against that spec.
"""

import datetime
import json
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from integrations.messaging.choices import Channel, MessageKind

# Klaviyo's documented ceilings for one bulk request.
BULK_MAX_EVENTS = 1000
BULK_MAX_BYTES = 5 * 1024 * 1024

_PROFILE_KEYS = {
    Channel.EMAIL: "email",
    Channel.SMS: "phone_number",
    Channel.WHATSAPP: "phone_number",
}
_MESSAGE_TYPES = {MessageKind.ONE_TO_ONE: "1-on-1", MessageKind.CAMPAIGN: "Campaign"}


class InvalidContact(ValueError):
    """The customer cannot be identified on the message's channel."""


@dataclass(frozen=True)
class EventData:
    """One event as Klaviyo receives it."""

    metric_name: str
    channel: str
    profile_identifier: str
    occurred_at: datetime.datetime
    unique_id: str
    properties: dict

    @property
    def profile_key(self):
        return _PROFILE_KEYS[self.channel]


def profile_identifier(channel, *, email, phone, phone_input):
    """The identifier of the customer's Klaviyo profile on ``channel``.

    Only the channel's own identifier is sent, so that Klaviyo never merges
    an email profile into a phone profile. Raise InvalidContact with the
    reason when the customer has none that Klaviyo would accept.
    """
    if channel == Channel.EMAIL:
        if not email:
            raise InvalidContact("The customer has no email address.")
        try:
            validate_email(email)
        except ValidationError:
            raise InvalidContact(f"{email!r} is not a valid email address.") from None
        return email
    if phone:
        return phone
    if phone_input:
        raise InvalidContact(f"{phone_input!r} is not a valid phone number.")
    raise InvalidContact("The customer has no phone number.")


def event_properties(
    *,
    channel,
    kind,
    message_id,
    customer_url,
    campaign_id="",
    campaign_name="",
    store_name="",
    staff_member_name="",
    failure_reason="",
):
    """The event properties segments and flows filter on; empty ones are left
    out so that "is set" filters mean something."""
    properties = {
        "Channel": Channel(channel).label,
        "Message Type": _MESSAGE_TYPES[kind],
        "Message ID": message_id,
        "Customer URL": customer_url,
        "Campaign ID": campaign_id,
        "Campaign Name": campaign_name,
        "Store": store_name,
        "Staff Member": staff_member_name,
        "Failure Reason": failure_reason,
    }
    return {key: value for key, value in properties.items() if value}


def klaviyo_time(moment):
    """ISO 8601 in UTC, to the second, as Klaviyo keeps it."""
    return (
        moment.astimezone(datetime.UTC).replace(microsecond=0, tzinfo=None).isoformat()
        + "Z"
    )


def _event_attributes(event):
    return {
        "properties": event.properties,
        "time": klaviyo_time(event.occurred_at),
        "unique_id": event.unique_id,
        "metric": {
            "data": {"type": "metric", "attributes": {"name": event.metric_name}}
        },
    }


def _profile(event):
    return {
        "data": {
            "type": "profile",
            "attributes": {event.profile_key: event.profile_identifier},
        }
    }


def create_event_body(event):
    """The body of ``POST /api/events`` for one event."""
    attributes = _event_attributes(event)
    attributes["profile"] = _profile(event)
    return {"data": {"type": "event", "attributes": attributes}}


def group_by_profile(events):
    """``events`` grouped by profile, in the order profiles first appear.

    Raise ValueError if two events share a profile, metric and
    ``unique_id``: Klaviyo fails a whole bulk request for that.
    """
    groups = {}
    seen = set()
    for event in events:
        key = (event.profile_key, event.profile_identifier)
        identity = (*key, event.metric_name, event.unique_id)
        if identity in seen:
            raise ValueError(
                f"unique_id {event.unique_id!r} repeats for one profile and metric"
            )
        seen.add(identity)
        groups.setdefault(key, []).append(event)
    return list(groups.values())


def bulk_create_events_body(groups):
    """The body of ``POST /api/event-bulk-create-jobs`` for events already
    grouped by ``group_by_profile``."""
    return {
        "data": {
            "type": "event-bulk-create-job",
            "attributes": {
                "events-bulk-create": {
                    "data": [
                        {
                            "type": "event-bulk-create",
                            "attributes": {
                                "profile": _profile(group[0]),
                                "events": {
                                    "data": [_event_item(event) for event in group]
                                },
                            },
                        }
                        for group in groups
                    ]
                }
            },
        }
    }


def _event_item(event):
    return {"type": "event", "attributes": _event_attributes(event)}


def encoded_size(body):
    """Bytes of ``body`` as the client sends it."""
    return len(json.dumps(body, separators=(",", ":")).encode())
