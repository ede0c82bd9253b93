"""Phone numbers in E.164, as Klaviyo and every SMS provider want them."""

import phonenumbers


class InvalidPhoneNumber(ValueError):
    """The text cannot be read as a valid phone number."""


def phone_to_e164(text, default_country):
    """Return ``text`` as an E.164 number, reading national formats in
    ``default_country`` (ISO 3166 alpha-2); raise InvalidPhoneNumber otherwise.
    """
    try:
        number = phonenumbers.parse(text, default_country or None)
    except phonenumbers.NumberParseException as error:
        raise InvalidPhoneNumber(f"{text!r} is not a phone number: {error}") from None
    if not phonenumbers.is_valid_number(number):
        where = default_country or "any country"
        raise InvalidPhoneNumber(f"{text!r} is not a valid phone number in {where}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
