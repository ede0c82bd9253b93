"""Start-up checks for settings that would lose or repeat events."""

from django.conf import settings
from django.core import checks


@checks.register()
def check_task_retry_exceeds_timeout(app_configs, **kwargs):
    cluster = settings.Q_CLUSTER
    timeout = cluster.get("timeout")
    retry = cluster.get("retry")
    if timeout is not None and retry is not None and retry <= timeout:
        return [
            checks.Error(
                f"Q_CLUSTER retry ({retry} s) must be longer than its timeout "
                f"({timeout} s).",
                hint=(
                    "With retry at or below timeout, the broker hands a task that "
                    "is still running to a second worker. Raise Q_RETRY or lower "
                    "Q_TIMEOUT."
                ),
                id="klaviyo.E001",
            )
        ]
    return []


@checks.register()
def check_encryption_keys(app_configs, **kwargs):
    if settings.DEBUG or settings.ENCRYPTION_KEYS:
        return []
    return [
        checks.Error(
            "ENCRYPTION_KEYS is not set.",
            hint=(
                "Stored Klaviyo tokens and keys are encrypted with it. Generate a "
                "key with `python manage.py generate_encryption_key`."
            ),
            id="klaviyo.E002",
        )
    ]


@checks.register()
def check_oauth_client(app_configs, **kwargs):
    if settings.DEBUG or (
        settings.KLAVIYO_CLIENT_ID and settings.KLAVIYO_CLIENT_SECRET
    ):
        return []
    return [
        checks.Warning(
            "KLAVIYO_CLIENT_ID or KLAVIYO_CLIENT_SECRET is not set.",
            hint="Brands cannot connect Klaviyo until both are set.",
            id="klaviyo.W001",
        )
    ]
