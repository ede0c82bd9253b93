from django.apps import AppConfig


class KlaviyoConfig(AppConfig):
    name = "integrations.klaviyo"
    label = "klaviyo"
    verbose_name = "Klaviyo"

    def ready(self):
        from integrations.klaviyo import checks, receivers  # noqa: F401
