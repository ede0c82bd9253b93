"""Realistic message traffic for a brand: the demo, the end-to-end tests and
the benchmark use it.

Messages are created as the platform creates them and their statuses move
the way a provider's callbacks move them: through the status service, in
batches, sometimes out of order or twice, with some failures. Inbound
messages, live chat and messages that never leave are mixed in, since none
of them may ever reach Klaviyo.
"""

import random
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction

from integrations.messaging.choices import (
    Channel,
    Direction,
    MessageKind,
    MessageStatus,
)
from integrations.messaging.models import (
    Campaign,
    Customer,
    Message,
    StaffMember,
    Store,
)
from integrations.messaging.services import StatusUpdate, message_status_record_many

FAILURE_REASONS = {
    Channel.EMAIL: ["Mailbox does not exist", "Mailbox full", "Rejected as spam"],
    Channel.SMS: [
        "Unreachable destination handset",
        "Carrier violation: message filtered",
        "Landline or unreachable carrier",
    ],
    Channel.WHATSAPP: [
        "Recipient is not a WhatsApp user",
        "Re-engagement message outside the 24-hour window",
    ],
}
_FIRST_NAMES = [
    "Ada",
    "Grace",
    "Alan",
    "Linus",
    "Margaret",
    "Katherine",
    "Tim",
    "Barbara",
]
_LAST_NAMES = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Hamilton",
    "Johnson",
    "Liskov",
    "Berners",
]
_NATIONAL_NUMBERS = {
    "US": "(415) 555-{:04d}",
    "GB": "07400 1{:05d}",
    "FR": "06 12 {:02d} {:02d} {:02d}",
    "DE": "0151 2{:07d}",
}


@dataclass
class TrafficMix:
    """How much of each kind of traffic one simulation round makes."""

    one_to_one: int = 20
    campaign_recipients: int = 0
    campaign_channel: str = Channel.SMS
    inbound: int = 5
    live_chat: int = 3
    never_sent: int = 3
    failure_rate: float = 0.05
    undelivered_rate: float = 0.05
    out_of_order_rate: float = 0.05
    duplicate_rate: float = 0.03
    bad_phone_rate: float = 0.02
    missing_email_rate: float = 0.02


@dataclass
class SimulationResult:
    messages: int = 0
    status_updates: int = 0
    events_recorded: int = 0
    campaign_ids: list = field(default_factory=list)


def traffic_simulate(
    brand, mix, *, start, end, rng=None, batch_size=1000, progress=None
):
    """Create ``mix`` worth of messages for ``brand`` whose statuses happen
    between ``start`` and ``end``, and report them as provider callbacks;
    ``progress`` is called with the number of status updates of each batch."""
    rng = rng or random.Random()
    messages, callbacks = traffic_plan(brand, mix, start=start, end=end, rng=rng)
    result = callbacks_report(callbacks, batch_size=batch_size, progress=progress)
    result.messages = messages.messages
    result.campaign_ids = messages.campaign_ids
    return result


def callbacks_report(callbacks, *, batch_size=1000, progress=None):
    """Report ``callbacks`` ((arrival, StatusUpdate) pairs) in order of
    arrival, in batches, through the status service."""
    result = SimulationResult()
    ordered = sorted(callbacks, key=lambda pair: pair[0])
    for offset in range(0, len(ordered), batch_size):
        batch = [update for _, update in ordered[offset : offset + batch_size]]
        recorded = message_status_record_many(batch)
        result.status_updates += len(batch)
        result.events_recorded += recorded.events_recorded
        if progress is not None:
            progress(len(batch))
    return result


def traffic_plan(brand, mix, *, start, end, rng):
    """Create the messages of ``mix`` for ``brand``, leaving from ``start``
    until two minutes before ``end`` (or within a second of ``start`` for a
    shorter span); return a SimulationResult counting them and the provider
    callbacks to come, as (arrival, StatusUpdate) pairs, which may arrive
    after ``end``."""
    result = SimulationResult()
    staff = _staff(brand)
    span = max(1.0, (end - start).total_seconds() - 120)
    plans = []

    channels = list(Channel)
    conversation_customers = _customers(
        brand, mix.one_to_one + mix.inbound + mix.live_chat, mix, rng
    )
    for index in range(mix.one_to_one):
        associate = rng.choice(staff)
        plans.append(
            _Plan(
                Message(
                    brand=brand,
                    customer=conversation_customers[index],
                    channel=rng.choice(channels),
                    kind=MessageKind.ONE_TO_ONE,
                    staff_member=associate,
                    store=associate.store,
                    status=MessageStatus.QUEUED,
                ),
                start + timedelta(seconds=rng.uniform(0, span)),
            )
        )
    for index in range(mix.one_to_one, mix.one_to_one + mix.inbound):
        plans.append(
            _Plan(
                Message(
                    brand=brand,
                    customer=conversation_customers[index],
                    channel=rng.choice([Channel.SMS, Channel.WHATSAPP]),
                    direction=Direction.INBOUND,
                    kind=MessageKind.ONE_TO_ONE,
                    status=MessageStatus.CREATED,
                ),
                start + timedelta(seconds=rng.uniform(0, span)),
                inbound=True,
            )
        )
    for index in range(mix.one_to_one + mix.inbound, len(conversation_customers)):
        plans.append(
            _Plan(
                Message(
                    brand=brand,
                    customer=conversation_customers[index],
                    channel=Channel.EMAIL,
                    kind=MessageKind.LIVE_CHAT,
                    status=MessageStatus.QUEUED,
                ),
                start + timedelta(seconds=rng.uniform(0, span)),
            )
        )
    for customer in _customers(brand, mix.never_sent, mix, rng):
        plans.append(
            _Plan(
                Message(
                    brand=brand,
                    customer=customer,
                    channel=Channel.SMS,
                    kind=MessageKind.ONE_TO_ONE,
                    status=MessageStatus.AWAITING_OPT_IN,
                ),
                start + timedelta(seconds=rng.uniform(0, span)),
                never_sent=True,
            )
        )
    if mix.campaign_recipients:
        campaign = Campaign.objects.create(
            brand=brand,
            name=f"{rng.choice(['Winter', 'Spring', 'Weekend', 'VIP'])} "
            f"{rng.choice(['Sale', 'Preview', 'Drop', 'Restock'])}",
            channel=mix.campaign_channel,
        )
        result.campaign_ids.append(campaign.public_id)
        send_at = start + timedelta(seconds=rng.uniform(0, span / 2))
        for customer in _customers(brand, mix.campaign_recipients, mix, rng):
            plans.append(
                _Plan(
                    Message(
                        brand=brand,
                        customer=customer,
                        channel=mix.campaign_channel,
                        kind=MessageKind.CAMPAIGN,
                        campaign=campaign,
                        status=MessageStatus.QUEUED,
                    ),
                    send_at + timedelta(seconds=rng.uniform(0, 60)),
                )
            )

    Message.objects.bulk_create([plan.message for plan in plans], batch_size=1000)
    result.messages = len(plans)
    callbacks = []
    for plan in plans:
        callbacks.extend(_callbacks(plan, mix, rng))
    return result, callbacks


@dataclass
class _Plan:
    message: Message
    at: object
    inbound: bool = False
    never_sent: bool = False


def _callbacks(plan, mix, rng):
    """(arrival order, StatusUpdate) pairs for one message, as a provider
    reports them."""
    message, at = plan.message, plan.at
    if plan.inbound:
        return [(at, StatusUpdate(message.pk, MessageStatus.DELIVERED, at))]
    if plan.never_sent:
        expired_at = at + timedelta(hours=rng.choice([1, 2]))
        return [
            (expired_at, StatusUpdate(message.pk, MessageStatus.EXPIRED, expired_at))
        ]
    sent_at = at + timedelta(seconds=rng.uniform(1, 5))
    final_at = sent_at + timedelta(seconds=rng.uniform(2, 60))
    callbacks = []
    roll = rng.random()
    if roll < mix.failure_rate:
        reason = rng.choice(FAILURE_REASONS[message.channel])
        callbacks.append(
            (sent_at, StatusUpdate(message.pk, MessageStatus.SENT, sent_at))
        )
        callbacks.append(
            (final_at, StatusUpdate(message.pk, MessageStatus.FAILED, final_at, reason))
        )
    elif roll < mix.failure_rate + mix.undelivered_rate:
        callbacks.append(
            (sent_at, StatusUpdate(message.pk, MessageStatus.SENT, sent_at))
        )
    else:
        delivered = StatusUpdate(message.pk, MessageStatus.DELIVERED, final_at)
        sent = StatusUpdate(message.pk, MessageStatus.SENT, sent_at)
        if rng.random() < mix.out_of_order_rate:
            # The delivery receipt overtakes the send report.
            callbacks.append((sent_at, delivered))
            callbacks.append((final_at, sent))
        else:
            callbacks.append((sent_at, sent))
            callbacks.append((final_at, delivered))
    if rng.random() < mix.duplicate_rate:
        arrival, update = rng.choice(callbacks)
        callbacks.append((arrival + timedelta(seconds=1), update))
    return callbacks


def _staff(brand):
    staff = list(StaffMember.objects.filter(brand=brand).select_related("store"))
    if staff:
        return staff
    with transaction.atomic():
        store = Store.objects.create(brand=brand, name="Flagship")
        return [
            StaffMember.objects.create(brand=brand, store=store, name=name)
            for name in ("Jordan", "Sam", "Riley")
        ]


def _customers(brand, count, mix, rng):
    """``count`` new customers of ``brand``: mostly reachable, a few with a
    phone that does not parse or no email, as real imports have."""
    pattern = _NATIONAL_NUMBERS.get(brand.default_country, _NATIONAL_NUMBERS["US"])
    customers = []
    for _ in range(count):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        digits = [rng.randrange(100) for _ in range(3)] if "{:02d}" in pattern else None
        national = (
            pattern.format(*digits) if digits else pattern.format(rng.randrange(10_000))
        )
        customer = Customer(
            brand=brand,
            first_name=first,
            last_name=last,
            email=f"{first}.{last}.{rng.randrange(10**9)}@example.com".lower(),
            phone_input=national,
        )
        if rng.random() < mix.bad_phone_rate:
            customer.phone_input = rng.choice(["12", "555-CALL-NOW", "+1 415 555"])
        if rng.random() < mix.missing_email_rate:
            customer.email = ""
        # bulk_create skips save(), which normalises the phone.
        customer.phone = customer.normalized_phone()
        customers.append(customer)
    return Customer.objects.bulk_create(customers, batch_size=1000)
