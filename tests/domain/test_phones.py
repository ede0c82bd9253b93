import re

import pytest

from integrations.messaging.phones import InvalidPhoneNumber, phone_to_e164


@pytest.mark.parametrize(
    ("text", "country", "expected"),
    [
        ("+1 415-555-0100", "US", "+14155550100"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("06 12 34 56 78", "FR", "+33612345678"),
    ],
)
def test_numbers_are_stored_in_e164_reading_national_formats_in_the_brand_country(
    text, country, expected
):
    assert phone_to_e164(text, country) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("12", "'12' is not a valid phone number in US"),
        ("not a phone", "'not a phone' is not a phone number"),
        ("+1 415 555", "'+1 415 555' is not a valid phone number in US"),
    ],
)
def test_unreadable_numbers_are_refused_with_the_reason(text, message):
    with pytest.raises(InvalidPhoneNumber, match=re.escape(message)):
        phone_to_e164(text, "US")
