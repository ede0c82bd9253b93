"""Public identifiers: a prefix and a sortable, unguessable token."""

import os
import time

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


def public_id(prefix):
    """Return ``<prefix>_`` and 26 characters: 48 bits of time, 80 random.

    Identifiers made later sort later, which keeps index inserts local.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10))
    characters = []
    for _ in range(26):
        value, remainder = divmod(value, 32)
        characters.append(_CROCKFORD[remainder])
    return f"{prefix}_{''.join(reversed(characters))}"


def new_message_id():
    return public_id("msg")


def new_customer_id():
    return public_id("cus")


def new_campaign_id():
    return public_id("cmp")
