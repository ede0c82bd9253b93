"""The Klaviyo settings, read when used so that overrides take effect.

Each accessor names exactly what to set when a value is missing.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _required(name):
    value = getattr(settings, name, "")
    if not value:
        raise ImproperlyConfigured(
            f"Set {name} in the environment: the Klaviyo OAuth app's "
            f"{name.removeprefix('KLAVIYO_').replace('_', ' ').lower()}."
        )
    return value


def client_id():
    return _required("KLAVIYO_CLIENT_ID")


def client_secret():
    return _required("KLAVIYO_CLIENT_SECRET")


def api_url():
    return settings.KLAVIYO_API_URL.rstrip("/")


def authorize_url():
    return settings.KLAVIYO_AUTHORIZE_URL


def token_url():
    return f"{api_url()}/oauth/token"


def revoke_url():
    return f"{api_url()}/oauth/revoke"


def revision():
    return settings.KLAVIYO_REVISION


def scopes():
    return list(settings.KLAVIYO_SCOPES)


def timeouts():
    """(connect, read) seconds for every request to Klaviyo."""
    return (settings.KLAVIYO_CONNECT_TIMEOUT, settings.KLAVIYO_READ_TIMEOUT)


def platform_name():
    return settings.PLATFORM_NAME


def customer_url(customer_public_id):
    return f"{settings.PLATFORM_BASE_URL.rstrip('/')}/customers/{customer_public_id}"


def export_max_age():
    return timedelta(hours=settings.KLAVIYO_EXPORT_MAX_AGE_HOURS)
